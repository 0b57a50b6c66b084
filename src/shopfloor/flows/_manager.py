"""The FlowManager: which flows run, their commands, their state kept in files.

    manager = FlowManager(configs, data_dir / "flows", engine, subscriber=subscriber)
    await manager.open()                      # flows that were running go on
    await manager.command(org_id, "line-3", "start")
    manager.status(org_id, "line-3")          # state, current task, counters, times
    await manager.close()                     # running flows stay running on disk

A flow is `stopped`, `running`, `paused`, `completed` (a flow without triggers ran its
one run) or `failed` (its document is gone, a trigger cannot go on, its state
cannot be written). Every
command takes the flow's own lock, so concurrent commands see one state after another.

Trigger events wait in a bounded queue (`queue_size`) and are run one at a time, in
order; an event that finds the queue full is dropped and counted (`dropped`). `pause`
keeps the triggers firing into the queue and runs nothing; `resume` runs what waited,
in order. `stop` is a drain: no new events, the run in progress may finish within
`drain_timeout` seconds, then it is cancelled (recorded `cancelled`); what waited is
dropped. A run that fails goes to the flow's dead letters (the newest
`dead_letters_kept`), from where `replay` queues it again.

Each flow's state is saved in `<root>/state.db` (`StateStore`: SQLite, the saves of
flows that change together in one commit) on every change, committed before a command
answers, and at every task boundary of a run, committed while the next task runs: a
platform stopped (or killed) and started again starts the flows that were running (or
paused) and goes on with an unfinished run from the last boundary saved (the task that
followed it runs again: it had not ended, or its end was not saved yet).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from shopfloor.core import ErrorKind

from ._clock import now_iso
from ._config import ConfigManager
from ._context import Subscriber
from ._document import FlowDocument
from ._engine import Boundary, FlowEngine, RunRecord, error_of
from ._errors import FlowError, FlowNotFound, FlowStateError
from ._states import StateStore
from ._triggers import CronClock, TriggerEvent, events
from ._types import CronTrigger

__all__ = ["COMMANDS", "FlowManager", "FlowState"]

logger = logging.getLogger(__name__)

State = Literal["stopped", "running", "paused", "completed", "failed"]
Command = Literal["start", "stop", "pause", "resume"]
COMMANDS: tuple[Command, ...] = ("start", "stop", "pause", "resume")
STATE_DB = "state.db"
Key = tuple[str, str]


@dataclass(slots=True)
class FlowState:
    """What `GET /flows/{flow_id}/status` answers, and what the state database holds."""

    org_id: str
    flow_id: str
    state: State = "stopped"
    started: str | None = None
    updated: str = field(default_factory=now_iso)
    current_task: str | None = None
    counters: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys(
            ("runs", "completed", "failed", "cancelled", "dropped", "queued"), 0
        )
    )
    last_error: dict[str, str] | None = None
    #: The unfinished run's boundary (where a restarted platform goes on from).
    boundary: dict[str, Any] | None = None
    dead_letters: list[dict[str, Any]] = field(default_factory=list)

    def saved(self) -> dict[str, Any]:
        """What the state database keeps (the boundary and dead letters by reference:
        serialised at once)."""
        return {
            "org_id": self.org_id, "flow_id": self.flow_id, "state": self.state,
            "started": self.started, "updated": self.updated,
            "current_task": self.current_task, "counters": dict(self.counters),
            "last_error": self.last_error, "boundary": self.boundary,
            "dead_letters": self.dead_letters,
        }  # fmt: skip

    def public(self) -> dict[str, Any]:
        data = self.saved()
        data.pop("boundary")
        data.pop("dead_letters")
        data["last_error"] = None if self.last_error is None else dict(self.last_error)
        data["run_in_progress"] = None if self.boundary is None else self.boundary["run_id"]
        return data


@dataclass(slots=True)
class _Flow:
    state: FlowState
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    queue: deque[TriggerEvent] = field(default_factory=deque)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    triggers: list[asyncio.Task[None]] = field(default_factory=list)
    worker: asyncio.Task[None] | None = None
    #: The newest runs: the one in progress as itself, the finished ones packed.
    runs: deque[RunRecord | bytes] = field(default_factory=lambda: deque(maxlen=50))
    #: Set when the worker is to end after the run in progress.
    draining: bool = False
    #: Set when the platform stops: the state on disk stays as it is.
    closing: bool = False


class FlowManager:
    """Runs the flows of every organisation of one data dir (one process at a time)."""

    def __init__(
        self,
        configs: ConfigManager,
        root: Path,
        engine: FlowEngine,
        *,
        subscriber: Subscriber | None = None,
        queue_size: int = 1000,
        drain_timeout: float = 10.0,
        runs_kept: int = 50,
        dead_letters_kept: int = 100,
    ) -> None:
        self.configs = configs
        self.root = root
        self.engine = engine
        self.subscriber = subscriber
        self.queue_size = queue_size
        self.drain_timeout = drain_timeout
        self.runs_kept = runs_kept
        self.dead_letters_kept = dead_letters_kept
        self.states = StateStore(root / STATE_DB)
        self.clock = CronClock()
        self._flows: dict[Key, _Flow] = {}
        self._background: set[asyncio.Task[None]] = set()

    # -- lifetime ----------------------------------------------------------------------

    async def open(self) -> None:
        """Read the flows' states; start the flows that were running or paused."""
        saved = await self.states.open()
        for key, data in sorted(saved.items()):
            try:
                state = FlowState(**data)
            except TypeError as exc:
                logger.warning("flow state of %s/%s not read: %s", *key, exc)
                continue
            flow = self._flows[key] = _Flow(state)
            flow.runs = deque(maxlen=self.runs_kept)
            if state.state in ("running", "paused"):
                async with flow.lock:
                    await self._launch(flow)

    async def close(self) -> None:
        """End every flow's tasks; their state on disk stays (running flows go on when
        the platform starts again)."""
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        for flow in self._flows.values():
            flow.closing = True
            await self._halt(flow, drain=0.0)
        await self.states.close()

    # -- commands ----------------------------------------------------------------------

    async def command(self, org_id: str, flow_id: str, command: str) -> FlowState:
        """Apply `command` to the flow; `FlowNotFound`, or `FlowStateError` when its
        state does not allow it."""
        self.configs.get(org_id, flow_id)  # FlowNotFound
        flow = self._flow(org_id, flow_id)
        async with flow.lock:
            state = flow.state.state
            if command == "start":
                if state in ("running", "paused"):
                    raise _refused("flow_already_running", flow_id, state)
                flow.state.started = now_iso()
                flow.state.last_error = None
                flow.state.boundary = None
                await self._launch(flow, state="running")
            elif command == "stop":
                if state not in ("running", "paused"):
                    raise _refused("flow_not_running", flow_id, state)
                await self._halt(flow, drain=self.drain_timeout)
                await self._set(flow, "stopped")
            elif command == "pause":
                if state != "running":
                    code = "flow_already_paused" if state == "paused" else "flow_not_running"
                    raise _refused(code, flow_id, state)
                await self._set(flow, "paused")
            elif command == "resume":
                if state != "paused":
                    raise _refused("flow_not_paused", flow_id, state)
                await self._set(flow, "running")
                flow.wake.set()
            else:
                raise FlowError(
                    f"no command {command!r}", code="flow_unknown_command", kind=ErrorKind.INVALID
                )
            return flow.state

    async def replay(self, org_id: str, flow_id: str, letter_id: str) -> dict[str, Any]:
        """Queue a dead letter's event again (the flow must be running or paused)."""
        flow = self._flows.get((org_id, flow_id))
        if flow is None:
            raise FlowNotFound(f"no flow {flow_id!r}", code="flow_not_found")
        async with flow.lock:
            letters = flow.state.dead_letters
            letter = next((item for item in letters if item["id"] == letter_id), None)
            if letter is None:
                raise FlowNotFound(
                    f"no dead letter {letter_id!r}", code="flow_dead_letter_not_found"
                )
            if flow.state.state not in ("running", "paused"):
                raise _refused("flow_not_running", flow_id, flow.state.state)
            letters.remove(letter)
            self._offer(flow, (letter["payload"], letter["trigger"]))
            await self._save(flow)
            return letter

    def changed(self, org_id: str, flow_id: str) -> None:
        """The document changed: runs take it at their next start; triggers are set
        up again from it (a running flow)."""
        flow = self._flows.get((org_id, flow_id))
        if flow is not None and flow.state.state in ("running", "paused") and not flow.draining:
            task = asyncio.get_running_loop().create_task(self._retrigger(flow))
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    # -- reading -----------------------------------------------------------------------

    def status(self, org_id: str, flow_id: str) -> FlowState:
        flow = self._flows.get((org_id, flow_id))
        return flow.state if flow is not None else FlowState(org_id, flow_id)

    def statuses(self, org_id: str) -> list[FlowState]:
        return [flow.state for (org, _), flow in sorted(self._flows.items()) if org == org_id]

    def runs(self, org_id: str, flow_id: str) -> list[RunRecord]:
        flow = self._flows.get((org_id, flow_id))
        if flow is None:
            return []
        return [
            run if isinstance(run, RunRecord) else RunRecord.unpacked(run)
            for run in reversed(flow.runs)
        ]

    def dead_letters(self, org_id: str, flow_id: str) -> list[dict[str, Any]]:
        flow = self._flows.get((org_id, flow_id))
        return [] if flow is None else list(flow.state.dead_letters)

    # -- inside ------------------------------------------------------------------------

    def _flow(self, org_id: str, flow_id: str) -> _Flow:
        flow = self._flows.get((org_id, flow_id))
        if flow is None:
            flow = self._flows[(org_id, flow_id)] = _Flow(FlowState(org_id, flow_id))
            flow.runs = deque(maxlen=self.runs_kept)
        return flow

    async def _launch(self, flow: _Flow, *, state: State | None = None) -> None:
        """Set up the triggers and the worker (the flow's lock held)."""
        org_id, flow_id = flow.state.org_id, flow.state.flow_id
        if flow.worker is not None or flow.triggers:  # what a failed flow left, ending
            await self._halt(flow, drain=self.drain_timeout)
        flow.draining = flow.closing = False
        try:
            doc = self.configs.get(org_id, flow_id)
        except FlowNotFound as exc:
            flow.state.last_error = error_of(exc)
            await self._set(flow, "failed")
            return
        if state is not None:
            await self._set(flow, state)
        if flow.state.boundary is None and not doc.triggers:
            self._offer(flow, (None, {"type": "start", "at": now_iso()}))
        flow.worker = asyncio.get_running_loop().create_task(
            self._work(flow, once=not doc.triggers), name=f"flow-{flow_id}"
        )
        self._start_triggers(flow, doc)

    def _start_triggers(self, flow: _Flow, doc: FlowDocument) -> None:
        org_id, flow_id = flow.state.org_id, flow.state.flow_id
        loop = asyncio.get_running_loop()
        for index, trigger in enumerate(doc.triggers):
            if trigger.type == "cron":
                parameters = CronTrigger.Parameters.model_validate(trigger.parameters)
                task = loop.create_task(
                    self._on_clock(flow, parameters, index, trigger.start),
                    name=f"flow-{flow_id}-cron",
                )  # fmt: skip
            else:
                source = events(trigger, index, org_id, flow_id, self.subscriber, doc.variables)
                task = loop.create_task(
                    self._feed(flow, source, trigger.start), name=f"flow-{flow_id}-trigger"
                )
            flow.triggers.append(task)

    async def _on_clock(
        self, flow: _Flow, parameters: CronTrigger.Parameters, index: int, start: str | None
    ) -> None:
        """A cron trigger: subscribed to the clock of its schedule while this runs."""

        def deliver(event: TriggerEvent) -> None:
            if not flow.draining:
                payload, trigger = event
                self._offer(flow, (payload, {**trigger, "start": start}))

        unsubscribe = self.clock.subscribe(parameters, index, deliver)
        try:
            await asyncio.get_running_loop().create_future()  # until cancelled
        finally:
            unsubscribe()

    async def _retrigger(self, flow: _Flow) -> None:
        async with flow.lock:
            if flow.state.state not in ("running", "paused") or flow.draining:
                return
            for task in flow.triggers:
                task.cancel()
            await asyncio.gather(*flow.triggers, return_exceptions=True)
            flow.triggers.clear()
            try:
                doc = self.configs.get(flow.state.org_id, flow.state.flow_id)
            except FlowNotFound as exc:
                flow.state.last_error = error_of(exc)
                await self._halt(flow, drain=self.drain_timeout)
                await self._set(flow, "failed")
                return
            self._start_triggers(flow, doc)

    async def _feed(
        self, flow: _Flow, source: AsyncIterator[TriggerEvent], start: str | None
    ) -> None:
        try:
            async for payload, trigger in source:
                if flow.draining:
                    return
                self._offer(flow, (payload, {**trigger, "start": start}))
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            # A trigger that cannot go on (its channel is not the organisation's, the bus
            # refused the subscription): the flow cannot run as its document says.
            logger.warning("flow %s: a trigger ended: %s", flow.state.flow_id, exc)
            await self._fail(flow, exc)

    async def _fail(self, flow: _Flow, exc: BaseException) -> None:
        """The flow cannot run: `failed`, its worker ends after the run in progress."""
        if flow.draining:
            return
        flow.draining = True
        flow.wake.set()
        flow.state.last_error = error_of(exc)
        await self._set(flow, "failed")

    def _offer(self, flow: _Flow, event: TriggerEvent) -> None:
        if len(flow.queue) >= self.queue_size:
            flow.state.counters["dropped"] += 1
            return
        flow.queue.append(event)
        flow.state.counters["queued"] = len(flow.queue)
        flow.wake.set()

    async def _work(self, flow: _Flow, *, once: bool) -> None:
        try:
            await self._work_through(flow, once=once)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the state cannot be saved …
            logger.exception("flow %s: its worker ended", flow.state.flow_id)
            with contextlib.suppress(Exception):
                await self._fail(flow, exc)

    async def _work_through(self, flow: _Flow, *, once: bool) -> None:
        if flow.state.boundary is not None:  # a run the platform stopped in
            await self._run(flow, Boundary.from_dict(flow.state.boundary))
        while not flow.draining:
            if flow.state.state == "paused" or not flow.queue:
                if once and not flow.queue and flow.state.state == "running":
                    await self._set(flow, "completed")
                    return
                flow.wake.clear()
                await flow.wake.wait()
                continue
            payload, trigger = flow.queue.popleft()
            flow.state.counters["queued"] = len(flow.queue)
            try:
                doc = self.configs.get(flow.state.org_id, flow.state.flow_id)
            except FlowNotFound as exc:
                flow.state.last_error = error_of(exc)
                await self._set(flow, "failed")
                return
            start = trigger.get("start")
            boundary = self.engine.begin(doc, payload=payload, trigger=trigger, start=start)
            await self._run(flow, boundary, doc)

    async def _run(self, flow: _Flow, boundary: Boundary, doc: FlowDocument | None = None) -> None:
        org_id, flow_id = flow.state.org_id, flow.state.flow_id
        if doc is None:
            try:
                doc = self.configs.get(org_id, flow_id)
            except FlowNotFound:
                flow.state.boundary = None
                return
        record = RunRecord.starting(doc, boundary)
        flow.runs.append(record)
        flow.state.counters["runs"] += 1

        async def reached(at: Boundary) -> None:
            flow.state.boundary = at.as_dict()
            flow.state.current_task = at.pending[0] if at.pending else None
            # Not waited for: the next task starts while the commit runs. Killed before
            # it, the run goes on from the boundary before (at least once, as always).
            self._save_soon(flow)

        await reached(boundary)
        try:
            await self.engine.run(org_id, doc, boundary, record, on_boundary=reached)
        except asyncio.CancelledError:
            if flow.closing:  # the boundary stays: the run goes on after a restart
                raise
            flow.state.counters["cancelled"] += 1
            flow.state.last_error = record.error
            flow.state.boundary = flow.state.current_task = None
            _pack(flow, record)
            await asyncio.shield(self._save(flow))
            raise
        flow.state.boundary = flow.state.current_task = None
        _pack(flow, record)
        if record.status == "completed":
            flow.state.counters["completed"] += 1
        else:
            flow.state.counters["failed"] += 1
            flow.state.last_error = record.error
            letters = flow.state.dead_letters
            letters.append(
                {
                    "id": secrets.token_hex(6), "run_id": record.run_id, "at": now_iso(),
                    "error": record.error, "payload": boundary.payload,
                    "trigger": boundary.trigger,
                }
            )  # fmt: skip
            del letters[: max(0, len(letters) - self.dead_letters_kept)]
            await self._save(flow)  # a dead letter is kept for sure
            return
        self._save_soon(flow)

    async def _halt(self, flow: _Flow, *, drain: float) -> None:
        """End the triggers, then the worker: its run may finish within `drain`."""
        flow.draining = True
        for task in flow.triggers:
            task.cancel()
        await asyncio.gather(*flow.triggers, return_exceptions=True)
        flow.triggers.clear()
        worker, flow.worker = flow.worker, None
        if worker is not None:
            flow.wake.set()
            done, _ = await asyncio.wait({worker}, timeout=drain)
            if not done:
                worker.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await worker
        if not flow.closing:
            flow.state.counters["dropped"] += len(flow.queue)
            flow.queue.clear()
            flow.state.counters["queued"] = 0

    async def _set(self, flow: _Flow, state: State) -> None:
        flow.state.state = state
        await self._save(flow)

    async def _save(self, flow: _Flow) -> None:
        flow.state.updated = now_iso()
        await self.states.save((flow.state.org_id, flow.state.flow_id), flow.state.saved)

    def _save_soon(self, flow: _Flow) -> asyncio.Future[None]:
        flow.state.updated = now_iso()
        return self.states.save_soon((flow.state.org_id, flow.state.flow_id), flow.state.saved)


def _pack(flow: _Flow, record: RunRecord) -> None:
    """The finished run, kept packed (it is the newest: a flow's runs take turns)."""
    if flow.runs and flow.runs[-1] is record:
        flow.runs[-1] = record.packed()


def _refused(code: str, flow_id: str, state: str) -> FlowStateError:
    return FlowStateError(f"flow {flow_id!r} is {state}", code=code)
