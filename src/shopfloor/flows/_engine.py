"""The engine: one run of a flow per trigger event, task by task.

    engine = FlowEngine(publisher=publisher, http=client, workers=4)
    boundary = engine.begin(doc, payload={"t": 81}, trigger={"type": "message"})
    record = RunRecord.starting(doc, boundary)
    await engine.run(org_id, doc, boundary, record, on_boundary=save)

A run starts at the trigger's `start` task (the document's first when unset) and goes
on with a task's `next` when it succeeded or was skipped (its `condition` was not
true), with its `on_failure` when it failed after its retries; a failed task without
`on_failure` fails the run. A task runs at most once per run, even when two tasks name
it. Each attempt is bounded by the task's `timeout`; between attempts the engine waits
`backoff · multiplier^(attempt-1)` seconds, at most `max_backoff`. A refusal of the
platform (a channel that is not there, a thing not allowed to publish) keeps its code.

After every task the run's *boundary* (the tasks still to run, those done, the
variables and results) is handed to `on_boundary`, so that the flow manager can write
it down and a restarted platform go on from there: a task is run again only if the
platform stopped while it ran. The engine knows the platform only through a
`Publisher`, an HTTP client and, where those services run beside it, an
`OperationInvoker` and an `AgentCaller` (`_context.py`), so it runs the same in an
edge process.
Blocking work goes to a bounded thread pool of its own.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import marshal
import secrets
from collections import deque
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import httpx

from shopfloor.core import ShopfloorError

from ._clock import now_iso
from ._context import AgentCaller, OperationInvoker, Publisher, Step, TaskContext
from ._document import FlowDocument, Retries, Task
from ._errors import FlowRunError
from ._types import TaskType

__all__ = ["Boundary", "FlowEngine", "RunRecord", "TaskOutcome"]

logger = logging.getLogger(__name__)

TaskStatus = Literal["succeeded", "failed", "skipped", "cancelled"]
RunStatus = Literal["running", "completed", "failed", "cancelled"]


@dataclass(slots=True)
class TaskOutcome:
    task_id: str
    status: TaskStatus
    attempts: int
    started: str
    finished: str
    error: dict[str, str] | None = None


@dataclass(slots=True)
class Boundary:
    """Where a run stands between two tasks: what a restarted platform goes on from."""

    run_id: str
    rev: int | None
    payload: Any
    trigger: dict[str, Any]
    variables: dict[str, Any]
    pending: list[str]
    done: list[str] = field(default_factory=list)
    results: dict[str, Any] = field(default_factory=dict)
    started: str = field(default_factory=now_iso)

    def as_dict(self) -> dict[str, Any]:
        """A shallow copy: the run's values by reference, for a state saved (serialised)
        at once."""
        return {
            "run_id": self.run_id, "rev": self.rev, "payload": self.payload,
            "trigger": self.trigger, "variables": self.variables,
            "pending": list(self.pending), "done": list(self.done),
            "results": self.results, "started": self.started,
        }  # fmt: skip

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Boundary:
        return cls(**data)


@dataclass(slots=True)
class RunRecord:
    """One run as the status routes answer it: each task's outcome, in order."""

    run_id: str
    flow_id: str
    rev: int | None
    status: RunStatus
    started: str
    trigger: dict[str, Any]
    finished: str | None = None
    tasks: list[TaskOutcome] = field(default_factory=list)
    error: dict[str, str] | None = None

    @classmethod
    def starting(cls, doc: FlowDocument, boundary: Boundary) -> RunRecord:
        return cls(
            run_id=boundary.run_id, flow_id=doc.id, rev=boundary.rev, status="running",
            started=boundary.started, trigger=boundary.trigger,
        )  # fmt: skip

    def end(self, status: RunStatus, error: dict[str, str] | None = None) -> None:
        self.status = status
        self.finished = now_iso()
        if error is not None:
            self.error = error

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def packed(self) -> bytes:
        """The record as `marshal` bytes: how a finished run is kept. Bytes are one
        object the garbage collector never looks into; a record of objects is dozens,
        and a thousand flows keeping their runs made every full collection take a fifth
        of a second. `marshal` (kept in memory only, never written) takes 2 µs where
        `json.dumps` took 15."""
        tasks = [
            {"task_id": t.task_id, "status": t.status, "attempts": t.attempts,
             "started": t.started, "finished": t.finished, "error": t.error}
            for t in self.tasks
        ]  # fmt: skip
        data = {
            "run_id": self.run_id, "flow_id": self.flow_id, "rev": self.rev,
            "status": self.status, "started": self.started, "trigger": self.trigger,
            "finished": self.finished, "tasks": tasks, "error": self.error,
        }  # fmt: skip
        try:
            return marshal.dumps(data)
        except ValueError:  # a value marshal does not take: its JSON text, marked
            return b"J" + json.dumps(data, default=str).encode()

    @classmethod
    def unpacked(cls, packed: bytes) -> RunRecord:
        # Only bytes this process made itself by `packed`, never read from outside.
        data = json.loads(packed[1:]) if packed[:1] == b"J" else marshal.loads(packed)  # noqa: S302
        data["tasks"] = [TaskOutcome(**task) for task in data["tasks"]]
        return cls(**data)


def error_of(exc: BaseException) -> dict[str, str]:
    code = getattr(exc, "code", None) or "flow_task_failed"
    about = exc.about if isinstance(exc, FlowRunError) else {}
    return {**about, "code": str(code), "message": str(exc) or type(exc).__name__}


def retry_delay(retries: Retries, attempt: int) -> float:
    """Seconds to wait after failed attempt `attempt` (1 is the first)."""
    exponent = min(attempt - 1, 64)
    return float(min(retries.max_backoff, retries.backoff * retries.multiplier**exponent))


OnBoundary = Callable[[Boundary], Awaitable[None]]

#: Parsed tasks kept by an engine before it starts again from none.
PARSED_KEPT = 65_536

#: Run ids: 16 hex digits, a random half per process and a count (a thousand runs a
#: second would spend a tenth of their time in `secrets`' system call).
_RUN_PREFIX = secrets.token_hex(4)
_RUN_COUNT = itertools.count()


def _run_id() -> str:
    return f"{_RUN_PREFIX}{next(_RUN_COUNT) & 0xFFFFFFFF:08x}"


class FlowEngine:
    """Runs flows; one engine serves every flow of a process (its thread pool too)."""

    def __init__(
        self,
        *,
        publisher: Publisher | None = None,
        http: httpx.AsyncClient | None = None,
        operations: OperationInvoker | None = None,
        agents: AgentCaller | None = None,
        workers: int = 4,
        log: logging.Logger | None = None,
    ) -> None:
        self.publisher = publisher
        self.http = http
        self.operations = operations
        self.agents = agents
        self.log = log or logging.getLogger("shopfloor.flows.run")
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="flows")
        #: Each task's type and parameters, parsed at its first run, by the task read
        #: (held, so that its id names it); a changed document is new task objects.
        self._parsed: dict[int, tuple[Task, TaskType, Any]] = {}

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    async def _blocking(self, function: Callable[[], Any]) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._pool, function)

    @staticmethod
    def begin(
        doc: FlowDocument,
        *,
        payload: Any = None,
        trigger: dict[str, Any] | None = None,
        start: str | None = None,
    ) -> Boundary:
        """The boundary before the first task of a new run."""
        return Boundary(
            run_id=_run_id(), rev=doc.rev, payload=payload,
            trigger=dict(trigger or {}), variables=dict(doc.variables),
            pending=[start or doc.tasks[0].id],
        )  # fmt: skip

    async def run(
        self,
        org_id: str,
        doc: FlowDocument,
        boundary: Boundary,
        record: RunRecord,
        *,
        on_boundary: OnBoundary | None = None,
    ) -> RunRecord:
        """Run from `boundary` to the end, filling `record` (also when cancelled: the
        task that was running is recorded `cancelled` and the cancellation goes on)."""
        tasks = {task.id: task for task in doc.tasks}
        context = TaskContext(
            org_id=org_id, flow_id=doc.id, run_id=boundary.run_id,
            payload=boundary.payload, trigger=boundary.trigger,
            variables=boundary.variables, results=boundary.results, logger=self.log,
            publisher=self.publisher, http=self.http, operations=self.operations,
            agents=self.agents, blocking=self._blocking,
        )  # fmt: skip
        pending = deque(boundary.pending)
        done = set(boundary.done)
        while pending:
            task_id = pending.popleft()
            if task_id in done:
                continue
            task = tasks.get(task_id)
            if task is None:  # the document changed under a resumed run
                record.end("failed", {"code": "flow_unknown_task", "message": task_id})
                return record
            outcome, step = await self._task(task, context, record)
            done.add(task_id)
            if outcome.status == "failed":
                if not task.on_failure:
                    record.end("failed", outcome.error)
                    return record
                following = list(task.on_failure)
            elif step is not None and step.next is not None:
                following = step.next
            else:
                following = list(task.next)
            if step is not None:
                context.results[task_id] = step.result
            pending.extend(following)
            boundary.pending = list(pending)
            boundary.done = sorted(done)
            if on_boundary is not None:
                await on_boundary(boundary)
        record.end("completed")
        return record

    async def _task(
        self, task: Task, context: TaskContext, record: RunRecord
    ) -> tuple[TaskOutcome, Step | None]:
        started = now_iso()
        outcome = TaskOutcome(task.id, "succeeded", 0, started, started)
        record.tasks.append(outcome)
        try:
            return outcome, await self._attempts(task, context, outcome)
        except FlowRunError as exc:
            outcome.status, outcome.error = "failed", error_of(exc)
            return outcome, None
        except asyncio.CancelledError:
            outcome.status = "cancelled"
            record.end("cancelled", {"code": "flow_run_cancelled", "message": task.id})
            raise
        finally:
            outcome.finished = now_iso()

    async def _attempts(
        self, task: Task, context: TaskContext, outcome: TaskOutcome
    ) -> Step | None:
        if task.condition is not None and context.evaluate(task.condition) is not True:
            outcome.status = "skipped"
            return None
        held = self._parsed.get(id(task))
        if held is None or held[0] is not task:
            if len(self._parsed) >= PARSED_KEPT:  # documents replaced many times over
                self._parsed.clear()
            kind = TaskType.backends.get(task.type)()
            held = self._parsed[id(task)] = (
                task,
                kind,
                kind.Parameters.model_validate(task.parameters),
            )
        _, kind, parameters = held
        while True:
            outcome.attempts += 1
            try:
                if task.timeout is None:  # no timeout context to set up, a run saved
                    step: Step = await kind.run(parameters, context)
                    return step
                async with asyncio.timeout(task.timeout):
                    step = await kind.run(parameters, context)
                return step
            except TimeoutError:
                error = FlowRunError(
                    f"task {task.id!r} took more than {task.timeout} s", code="flow_task_timeout"
                )
            except FlowRunError as exc:
                error = exc
            except ShopfloorError as exc:  # the platform refused: keep its code
                error = FlowRunError(str(exc), code=exc.code)
            except Exception as exc:  # a task type's bug is this task's failure
                logger.exception("flow %s: task %s raised", context.flow_id, task.id)
                error = FlowRunError(f"{type(exc).__name__}: {exc}", code="flow_task_failed")
            final = error.code == "flow_task_not_supported"
            if final or outcome.attempts > task.retries.attempts:
                raise error
            self.log.info(
                "flow %s: task %s failed (%s), try %d of %d", context.flow_id, task.id,
                error.code, outcome.attempts + 1, task.retries.attempts + 1,
            )  # fmt: skip
            await asyncio.sleep(retry_delay(task.retries, outcome.attempts))
