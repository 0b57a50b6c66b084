"""The FlowManager: triggers, stop as a drain, pause and resume, dead letters, and a
running flow kept across a restart."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from shopfloor.flows import ConfigManager, FlowStateError, read_flow
from shopfloor.flows._context import Message
from shopfloor.flows._engine import FlowEngine
from shopfloor.flows._manager import FlowManager
from tests.messaging.bus_testkit import eventually

from .test_engine import Recorder

ORG = "plant"


class Channel:
    """A Subscriber whose messages the test sends."""

    def __init__(self) -> None:
        self.queues: list[asyncio.Queue[Any]] = []

    def send(self, payload: Any) -> None:
        for queue in self.queues:
            queue.put_nowait(payload)

    @asynccontextmanager
    async def subscribe(
        self, org_id: str, channel_id: str, subtopic: str | None
    ) -> AsyncIterator[AsyncIterator[Message]]:
        queue: asyncio.Queue[Any] = asyncio.Queue()
        self.queues.append(queue)

        async def messages() -> AsyncIterator[Message]:
            while True:
                payload = await queue.get()
                yield Message(channel_id, "", "thing-1", payload, "application/json", 0)

        try:
            yield messages()
        finally:
            self.queues.remove(queue)


class Setup:
    def __init__(self, root: Path, recorder: Recorder, channel: Channel) -> None:
        self.root, self.recorder, self.channel = root, recorder, channel
        self.configs = ConfigManager(root)
        self.configs.load()
        self.engine = FlowEngine(publisher=recorder)

    def manager(self, **options: Any) -> FlowManager:
        options = {"drain_timeout": 2.0, **options}
        return FlowManager(self.configs, self.root, self.engine, subscriber=self.channel, **options)

    def put(self, flow_id: str, tasks: list[dict[str, Any]], **extra: Any) -> None:
        doc = read_flow({"id": flow_id, "name": flow_id, "tasks": tasks, **extra})
        try:
            current = self.configs.get(ORG, flow_id)
        except Exception:
            self.configs.create(ORG, doc)
        else:
            assert current.rev is not None
            self.configs.update(ORG, doc, rev=current.rev)


@pytest.fixture
def setup(tmp_path: Path) -> AsyncIterator[Setup]:
    s = Setup(tmp_path / "flows", Recorder(), Channel())
    yield s
    s.engine.close()


@pytest.fixture
async def manager(setup: Setup) -> AsyncIterator[FlowManager]:
    manager = setup.manager()
    await manager.open()
    try:
        yield manager
    finally:
        await manager.close()


def saved_state(root: Path, flow_id: str) -> dict[str, Any]:
    """The flow's state as the state database on disk has it (read with sqlite3 itself,
    in a connection of its own)."""
    with contextlib.closing(sqlite3.connect(root / "state.db")) as db:
        row = db.execute(
            "SELECT data FROM flow_states WHERE org_id = ? AND flow_id = ?", (ORG, flow_id)
        ).fetchone()
    assert row is not None, f"no saved state of {flow_id}"
    data: dict[str, Any] = json.loads(row[0])
    return data


def published(setup: Setup) -> list[Any]:
    return [payload for _, _, payload, _ in setup.recorder.messages]


INTERVAL = [{"type": "interval", "parameters": {"seconds": 0.02}}]


async def test_an_interval_flow_runs_its_tasks_in_order(setup: Setup, manager: FlowManager) -> None:
    setup.put(
        "counter",
        [
            {"id": "double", "type": "set_variable",
             "parameters": {"name": "twice", "value": "variables.base * 2"}, "next": ["gate"]},
            {"id": "gate", "type": "condition",
             "parameters": {"expression": "variables.twice == 6", "otherwise": ["never"]},
             "next": ["out"]},
            {"id": "out", "type": "publish",
             "parameters": {"channel_id": "c", "payload": "{'v': variables.twice}"}},
            {"id": "never", "type": "publish", "parameters": {"channel_id": "c", "payload": "0"}},
        ],
        triggers=INTERVAL, variables={"base": 3},
    )  # fmt: skip
    state = await manager.command(ORG, "counter", "start")
    assert state.state == "running" and state.started is not None
    await eventually(lambda: len(setup.recorder.messages) >= 3)
    assert set(map(json.dumps, published(setup))) == {'{"v": 6}'}
    runs = manager.runs(ORG, "counter")
    assert [t.task_id for t in runs[-1].tasks] == ["double", "gate", "out"]
    await manager.command(ORG, "counter", "stop")
    status = manager.status(ORG, "counter")
    assert status.state == "stopped" and status.counters["completed"] >= 3
    assert saved_state(setup.root, "counter")["state"] == "stopped"
    # Finished runs are kept packed (one object each for the garbage collector).
    assert all(isinstance(run, bytes) for run in manager._flows[(ORG, "counter")].runs)
    count = len(setup.recorder.messages)
    with pytest.raises(FlowStateError) as refused:
        await manager.command(ORG, "counter", "stop")
    assert refused.value.code == "flow_not_running"
    await asyncio.sleep(0.1)  # an absence: a stopped flow publishes nothing more
    assert len(setup.recorder.messages) == count


SLOW = [
    {"id": "wait", "type": "delay", "parameters": {"seconds": 0.3}, "next": ["out"]},
    {"id": "out", "type": "publish", "parameters": {"channel_id": "c", "payload": "'done'"}},
]


async def test_stop_lets_the_running_task_finish_within_the_drain_timeout(
    setup: Setup, manager: FlowManager
) -> None:
    setup.put("slow", SLOW, triggers=[{"type": "interval", "parameters": {"seconds": 0.01}}])
    await manager.command(ORG, "slow", "start")
    await eventually(lambda: manager.status(ORG, "slow").current_task == "wait")
    await manager.command(ORG, "slow", "stop")
    assert published(setup) == ["done"]
    assert manager.runs(ORG, "slow")[0].status == "completed"
    assert manager.status(ORG, "slow").counters["cancelled"] == 0


async def test_stop_cancels_the_running_task_after_the_drain_timeout(setup: Setup) -> None:
    manager = setup.manager(drain_timeout=0.05)
    await manager.open()
    try:
        long = [{**SLOW[0], "parameters": {"seconds": 60}}, SLOW[1]]
        setup.put("slow", long, triggers=[{"type": "interval", "parameters": {"seconds": 0.01}}])
        await manager.command(ORG, "slow", "start")
        await eventually(lambda: manager.status(ORG, "slow").current_task == "wait")
        await asyncio.wait_for(manager.command(ORG, "slow", "stop"), 2)
        run = manager.runs(ORG, "slow")[0]
        assert run.status == "cancelled" and run.tasks[-1].status == "cancelled"
        status = manager.status(ORG, "slow")
        assert status.counters["cancelled"] == 1 and status.state == "stopped"
        assert status.last_error is not None
        assert status.last_error["code"] == "flow_run_cancelled"
        assert published(setup) == []
    finally:
        await manager.close()


async def test_pause_holds_a_burst_and_resume_runs_it_in_order(
    setup: Setup, manager: FlowManager
) -> None:
    setup.put(
        "relay",
        [
            {
                "id": "out",
                "type": "publish",
                "parameters": {"channel_id": "c", "payload": "payload.n"},
            }
        ],
        triggers=[{"type": "message", "parameters": {"channel_id": "in"}}],
    )
    await manager.command(ORG, "relay", "start")
    await eventually(lambda: len(setup.channel.queues) == 1)
    setup.channel.send({"n": 0})
    await eventually(lambda: published(setup) == [0])
    await manager.command(ORG, "relay", "pause")
    for n in range(1, 21):
        setup.channel.send({"n": n})
    await eventually(lambda: manager.status(ORG, "relay").counters["queued"] == 20)
    assert published(setup) == [0]
    with pytest.raises(FlowStateError) as refused:
        await manager.command(ORG, "relay", "pause")
    assert refused.value.code == "flow_already_paused"
    await manager.command(ORG, "relay", "resume")
    await eventually(lambda: len(published(setup)) == 21)
    assert published(setup) == list(range(21))


async def test_a_full_queue_drops_and_counts(setup: Setup) -> None:
    manager = setup.manager(queue_size=3)
    await manager.open()
    try:
        setup.put(
            "relay",
            [{"id": "out", "type": "log", "parameters": {"message": "payload.n"}}],
            triggers=[{"type": "message", "parameters": {"channel_id": "in"}}],
        )
        await manager.command(ORG, "relay", "start")
        await manager.command(ORG, "relay", "pause")
        await eventually(lambda: len(setup.channel.queues) == 1)
        for n in range(5):
            setup.channel.send({"n": n})
        await eventually(lambda: manager.status(ORG, "relay").counters["dropped"] == 2)
        await manager.command(ORG, "relay", "resume")
        await eventually(lambda: manager.status(ORG, "relay").counters["completed"] == 3)
    finally:
        await manager.close()


async def test_a_failed_run_is_a_dead_letter_and_replays(
    setup: Setup, manager: FlowManager
) -> None:
    setup.recorder.failures = 2
    setup.put(
        "once",
        [{"id": "out", "type": "publish", "retries": {"attempts": 1, "backoff": 0.01},
          "parameters": {"channel_id": "c", "payload": "payload.n"}}],
        triggers=[{"type": "message", "parameters": {"channel_id": "in"}}],
    )  # fmt: skip
    await manager.command(ORG, "once", "start")
    await eventually(lambda: len(setup.channel.queues) == 1)
    setup.channel.send({"n": 7})
    await eventually(lambda: len(manager.dead_letters(ORG, "once")) == 1)
    letter = manager.dead_letters(ORG, "once")[0]
    assert letter["error"]["code"] == "flow_task_failed" and letter["payload"] == {"n": 7}
    assert manager.status(ORG, "once").counters["failed"] == 1
    await manager.replay(ORG, "once", letter["id"])
    await eventually(lambda: published(setup) == [7])
    assert manager.dead_letters(ORG, "once") == []


async def test_a_flow_without_triggers_runs_once_and_completes(
    setup: Setup, manager: FlowManager
) -> None:
    setup.put(
        "one", [{"id": "out", "type": "publish", "parameters": {"channel_id": "c", "payload": "1"}}]
    )
    await manager.command(ORG, "one", "start")
    await eventually(lambda: manager.status(ORG, "one").state == "completed")
    assert published(setup) == [1]
    again = await manager.command(ORG, "one", "start")
    assert again.state in ("running", "completed")


async def test_a_restarted_manager_resumes_a_run_at_its_task_boundary(setup: Setup) -> None:
    tasks: Callable[[float], list[dict[str, Any]]] = lambda seconds: [  # noqa: E731
        {"id": "first", "type": "set_variable",
         "parameters": {"name": "x", "value": "41"}, "next": ["wait"]},
        {"id": "wait", "type": "delay", "parameters": {"seconds": seconds}, "next": ["out"]},
        {"id": "out", "type": "publish",
         "parameters": {"channel_id": "c", "payload": "variables.x + 1"}},
    ]  # fmt: skip
    setup.put(
        "resumed", tasks(60), triggers=[{"type": "interval", "parameters": {"seconds": 3600}}]
    )
    first = setup.manager()
    await first.open()
    await first.command(ORG, "resumed", "start")
    # the trigger fires in an hour: a replayed event starts the run now
    first._offer(first._flows[(ORG, "resumed")], (None, {"type": "interval"}))
    await eventually(lambda: first.status(ORG, "resumed").current_task == "wait")
    run_id = first.runs(ORG, "resumed")[0].run_id
    await first.close()
    assert published(setup) == []
    saved = saved_state(setup.root, "resumed")
    assert saved["state"] == "running" and saved["boundary"]["pending"] == ["wait"]

    setup.put(
        "resumed", tasks(0.01), triggers=[{"type": "interval", "parameters": {"seconds": 3600}}]
    )
    second = setup.manager()
    await second.open()
    try:
        await eventually(lambda: published(setup) == [42])
        run = second.runs(ORG, "resumed")[0]
        assert run.run_id == run_id and [t.task_id for t in run.tasks] == ["wait", "out"]
        assert second.status(ORG, "resumed").state == "running"
    finally:
        await second.close()


async def test_a_changed_document_applies_from_the_next_run(
    setup: Setup, manager: FlowManager
) -> None:
    def relay(value: str) -> list[dict[str, Any]]:
        return [{"id": "out", "type": "publish",
                 "parameters": {"channel_id": "c", "payload": value}}]  # fmt: skip

    trigger = [{"type": "message", "parameters": {"channel_id": "in"}}]
    setup.put("relay", relay("'old'"), triggers=trigger)
    await manager.command(ORG, "relay", "start")
    await eventually(lambda: len(setup.channel.queues) == 1)
    setup.channel.send({})
    await eventually(lambda: published(setup) == ["old"])
    before = setup.channel.queues[0]
    setup.put("relay", relay("'new'"), triggers=trigger)
    manager.changed(ORG, "relay")
    # the trigger is set up again from the new document: a new subscription
    await eventually(lambda: setup.channel.queues[:1] not in ([], [before]))
    setup.channel.send({})
    await eventually(lambda: published(setup)[-1:] == ["new"])

    setup.configs.delete(ORG, "relay")
    manager.changed(ORG, "relay")
    await eventually(lambda: manager.status(ORG, "relay").state == "failed")
    assert manager.status(ORG, "relay").last_error == {
        "code": "flow_not_found",
        "message": manager.status(ORG, "relay").last_error["message"],  # type: ignore[index]
    }


async def test_concurrent_commands_leave_one_consistent_state(
    setup: Setup, manager: FlowManager
) -> None:
    setup.put("busy", SLOW[1:], triggers=INTERVAL)
    commands = ["start", "pause", "resume", "stop", "start", "stop", "pause"] * 6
    answers = await asyncio.gather(
        *(manager.command(ORG, "busy", command) for command in commands), return_exceptions=True
    )
    assert all(not isinstance(a, Exception) or isinstance(a, FlowStateError) for a in answers)
    assert any(not isinstance(a, Exception) for a in answers)
    flow = manager._flows[(ORG, "busy")]
    state = manager.status(ORG, "busy").state
    saved = saved_state(setup.root, "busy")
    assert saved["state"] == state
    live_triggers = [task for task in flow.triggers if not task.done()]
    if state in ("running", "paused"):
        assert len(live_triggers) == 1 and flow.worker is not None and not flow.worker.done()
    else:
        assert live_triggers == [] and (flow.worker is None or flow.worker.done())


async def test_flows_on_one_cron_schedule_share_its_clock(
    setup: Setup, manager: FlowManager
) -> None:
    every_second = [{"type": "cron", "parameters": {"expression": "* * * * * *"}}]
    out = [{"id": "out", "type": "publish", "parameters": {"channel_id": "c", "payload": "1"}}]
    for flow_id in ("a", "b"):
        setup.put(flow_id, out, triggers=every_second)
        await manager.command(ORG, flow_id, "start")
    assert len(manager.clock._tasks) == 1  # one timer for both
    await eventually(lambda: all(len(manager.runs(ORG, f)) >= 2 for f in ("a", "b")), within=10)
    for flow_id in ("a", "b"):
        ats = [run.trigger["at"] for run in manager.runs(ORG, flow_id)]
        # each the second it was due at (UTC, the schedule's zone)
        assert all(datetime.fromisoformat(at).microsecond == 0 for at in ats), ats
    await manager.command(ORG, "a", "stop")
    runs_of_a = len(manager.runs(ORG, "a"))
    await eventually(lambda: len(manager.runs(ORG, "b")) >= runs_of_a + 2, within=10)
    assert len(manager.runs(ORG, "a")) == runs_of_a  # a stopped flow is not delivered to
    await manager.command(ORG, "b", "stop")
    assert manager.clock._tasks == {}  # the last one gone, the clock's timer ends
