"""The engine: tasks in order with conditions, variables, retries, timeouts, failures."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from shopfloor.flows import read_flow
from shopfloor.flows._context import TaskContext
from shopfloor.flows._engine import Boundary, FlowEngine, RunRecord


class Recorder:
    """A Publisher that keeps what it was given."""

    def __init__(self, failures: int = 0) -> None:
        self.messages: list[tuple[str, str, Any, str | None]] = []
        self.failures = failures

    async def publish(
        self, org_id: str, flow_id: str, channel_id: str, subtopic: str, payload: bytes,
        content_type: str, *, thing_id: str | None = None,
    ) -> None:  # fmt: skip
        if self.failures:
            self.failures -= 1
            raise ConnectionError("the bus is away")
        self.messages.append((org_id, channel_id, json.loads(payload), thing_id))


@pytest.fixture
async def engine() -> AsyncIterator[FlowEngine]:
    engine = FlowEngine(publisher=Recorder())
    try:
        yield engine
    finally:
        engine.close()


def document(tasks: list[dict[str, Any]], **extra: Any) -> Any:
    return read_flow({"id": "f", "name": "f", "rev": 1, "tasks": tasks, **extra})


async def run(engine: FlowEngine, doc: Any, payload: Any = None) -> tuple[RunRecord, Boundary]:
    boundary = engine.begin(doc, payload=payload, trigger={"type": "manual"})
    record = RunRecord.starting(doc, boundary)
    await engine.run("org", doc, boundary, record)
    return record, boundary


async def test_tasks_run_in_order_with_conditions_and_variables(engine: FlowEngine) -> None:
    doc = document(
        [
            {"id": "hot", "type": "condition",
             "parameters": {"expression": "payload.t > variables.limit", "otherwise": ["cold"]},
             "next": ["convert"]},
            {"id": "convert", "type": "transform",
             "parameters": {"set": {"f": "payload.t * 9.0 / 5.0 + 32.0"}}, "next": ["count"]},
            {"id": "count", "type": "set_variable",
             "parameters": {"name": "n", "value": "variables.n + 1"}, "next": ["quiet", "out"]},
            {"id": "quiet", "type": "log", "condition": "variables.n > 5",
             "parameters": {"message": "'never'"}},
            {"id": "out", "type": "publish",
             "parameters": {"channel_id": "derived", "payload": "{'f': variables.f}"}},
            {"id": "cold", "type": "log", "parameters": {"message": "'cold'"}},
        ],
        variables={"limit": 80, "n": 0},
    )  # fmt: skip
    record, boundary = await run(engine, doc, {"t": 100.0})
    assert record.status == "completed"
    assert [(t.task_id, t.status) for t in record.tasks] == [
        ("hot", "succeeded"), ("convert", "succeeded"), ("count", "succeeded"),
        ("quiet", "skipped"), ("out", "succeeded"),
    ]  # fmt: skip
    assert boundary.variables == {"limit": 80, "n": 1, "f": 212.0}
    assert engine.publisher.messages == [("org", "derived", {"f": 212.0}, None)]  # type: ignore[union-attr]

    record, _ = await run(engine, doc, {"t": 20.0})
    assert [(t.task_id, t.status) for t in record.tasks] == [
        ("hot", "succeeded"), ("cold", "succeeded")
    ]  # fmt: skip
    assert record.tasks[0].status == "succeeded"


async def test_retries_then_on_failure_or_a_failed_run() -> None:
    engine = FlowEngine(publisher=Recorder(failures=2))
    try:
        retried = document(
            [{"id": "out", "type": "publish", "retries": {"attempts": 2, "backoff": 0.01},
              "parameters": {"channel_id": "c", "payload": "1"}}]
        )  # fmt: skip
        record, _ = await run(engine, retried)
        assert record.status == "completed" and record.tasks[0].attempts == 3

        engine.publisher.failures = 5  # type: ignore[union-attr]
        handled = document(
            [{"id": "out", "type": "publish", "retries": {"attempts": 1, "backoff": 0.01},
              "parameters": {"channel_id": "c", "payload": "1"}, "on_failure": ["say"]},
             {"id": "say", "type": "log", "parameters": {"message": "'failed'"}}]
        )  # fmt: skip
        record, _ = await run(engine, handled)
        assert record.status == "completed"
        assert [(t.task_id, t.status, t.attempts) for t in record.tasks] == [
            ("out", "failed", 2), ("say", "succeeded", 1)
        ]  # fmt: skip
        assert record.tasks[0].error is not None
        assert record.tasks[0].error["code"] == "flow_task_failed"

        failing = document([{"id": "bad", "type": "log", "parameters": {"message": "payload.x"}}])
        record, _ = await run(engine, failing, {})
        assert record.status == "failed"
        assert record.error is not None and record.error["code"] == "flow_expression_failed"
    finally:
        engine.close()


async def test_a_timeout_fails_the_task(engine: FlowEngine) -> None:
    doc = document(
        [{"id": "wait", "type": "delay", "timeout": 0.05, "parameters": {"seconds": 30}}]
    )
    record, _ = await asyncio.wait_for(run(engine, doc), 5)
    assert record.status == "failed"
    assert record.error is not None and record.error["code"] == "flow_task_timeout"


async def test_http_task_result_and_unsupported_types() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/missing":
            return httpx.Response(404)
        return httpx.Response(200, json={"echo": json.loads(request.content)})

    async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as client:
        engine = FlowEngine(http=client)
        try:
            doc = document(
                [{"id": "call", "type": "http", "next": ["keep"],
                  "parameters": {"method": "POST", "url": "http://mes.example/in",
                                 "body": "{'t': payload.t}"}},
                 {"id": "keep", "type": "set_variable",
                  "parameters": {"name": "echoed", "value": "results.call.body.echo.t"}}]
            )  # fmt: skip
            record, boundary = await run(engine, doc, {"t": 3})
            assert record.status == "completed", record
            assert boundary.variables["echoed"] == 3

            missing = document(
                [
                    {
                        "id": "call",
                        "type": "http",
                        "parameters": {"url": "http://mes.example/missing"},
                    }
                ]
            )
            record, _ = await run(engine, missing)
            assert record.error is not None and record.error["code"] == "flow_http_status"

            agent = document(
                [{"id": "ask", "type": "agent.call", "retries": {"attempts": 5},
                  "parameters": {"agent": "a", "method": "m"}}]
            )  # fmt: skip
            record, _ = await run(engine, agent)
            assert record.error is not None and record.error["code"] == "flow_task_not_supported"
            assert record.tasks[0].attempts == 1  # not retried
        finally:
            engine.close()


async def test_a_run_goes_on_from_its_boundary(engine: FlowEngine) -> None:
    doc = document(
        [{"id": "a", "type": "set_variable", "parameters": {"name": "x", "value": "1"},
          "next": ["b"]},
         {"id": "b", "type": "set_variable",
          "parameters": {"name": "y", "value": "variables.x + 1"}}]
    )  # fmt: skip
    seen: list[dict[str, Any]] = []
    boundary = engine.begin(doc)
    record = RunRecord.starting(doc, boundary)

    async def keep(b: Boundary) -> None:
        seen.append(b.as_dict())

    await engine.run("org", doc, boundary, record, on_boundary=keep)
    after_a = Boundary.from_dict(json.loads(json.dumps(seen[0])))
    assert after_a.pending == ["b"] and after_a.done == ["a"]
    resumed = RunRecord.starting(doc, after_a)
    await engine.run("org", doc, after_a, resumed)
    assert [t.task_id for t in resumed.tasks] == ["b"]
    assert after_a.variables["y"] == 2


async def test_blocking_work_runs_in_the_engines_bounded_pool() -> None:
    """What a task type hands `run_blocking` runs in the engine's threads, at most
    `workers` at once, while the loop goes on."""
    engine = FlowEngine(workers=2)
    running, most = 0, 0
    lock = threading.Lock()

    def work() -> str:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        time.sleep(0.05)
        with lock:
            running -= 1
        return threading.current_thread().name

    context = TaskContext(
        org_id="o", flow_id="f", run_id="r", payload=None, trigger={}, variables={},
        blocking=engine._blocking,
    )  # fmt: skip
    try:
        ticks = 0

        async def tick() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.005)
                ticks += 1

        ticker = asyncio.create_task(tick())
        names = await asyncio.gather(*(context.run_blocking(work) for _ in range(6)))
        ticker.cancel()
    finally:
        engine.close()
    assert most == 2 and all(name.startswith("flows") for name in names)
    assert ticks >= 5  # the loop was not blocked for the 0.15 s the work took
