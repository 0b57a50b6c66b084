"""`CoordinatorAgent`: its state follows its members' states, over real gRPC."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

from shopfloor.sdk import AgentContext, CoordinatorAgent, StateChange

from .agentkit import Fleet

ORGANISATION = {"access": "organisation"}


async def until(
    stream: AsyncIterator[StateChange], holds: Callable[[dict[str, Any]], bool]
) -> dict[str, Any]:
    """The first state of `stream` that `holds`, within 10 s."""
    async with asyncio.timeout(10):
        async for change in stream:
            if holds(change.state):
                return change.state
    raise AssertionError("the stream ended")


async def test_the_aggregate_changes_with_the_members_states(fleet: Fleet) -> None:
    mill = await fleet.start("mill-1", config=ORGANISATION)
    press = await fleet.start("press-1", config=ORGANISATION)
    await mill.publish_state({"state": "running", "parts": 10})
    await press.publish_state({"state": "setup"})
    members = ["mill-1", "press-1", "oven-1"]  # oven-1 never starts
    await fleet.start("line-1", cls=CoordinatorAgent, config={**ORGANISATION, "members": members})
    watcher = await fleet.start("watcher", config=ORGANISATION)
    stream = watcher.follow("line-1")

    state = await until(stream, lambda s: s["running"] == 1 and "setup" in s["groups"])
    assert state == {
        "state": "degraded", "members": 3, "running": 1, "availability": 1 / 3,
        "groups": {"running": ["mill-1"], "setup": ["press-1"], "unknown": ["oven-1"]},
    }  # fmt: skip

    await press.publish_state({"state": "running"})
    state = await until(stream, lambda s: s["running"] == 2)  # press-1 runs too
    assert state["groups"] == {"running": ["mill-1", "press-1"], "unknown": ["oven-1"]}
    assert state["availability"] == 2 / 3

    await mill.__aexit__(None, None, None)  # the mill stops: its stream ends
    state = await until(stream, lambda s: s["running"] == 1)  # mill-1 is unknown
    assert state["groups"] == {"unknown": ["mill-1", "oven-1"], "running": ["press-1"]}
    await stream.aclose()


async def test_a_coordinator_calls_its_members(fleet: Fleet) -> None:
    mill = await fleet.start("mill-1", config=ORGANISATION)
    mill.register("parts", lambda: 42)
    line = await fleet.start(
        "line-1", cls=CoordinatorAgent, config={**ORGANISATION, "members": ["mill-1"]}
    )
    assert await line.call("mill-1", "parts") == 42


def test_the_default_aggregate_of_no_members_is_down() -> None:
    coordinator = CoordinatorAgent(AgentContext(config={"members": []}))
    assert coordinator.aggregate({}) == {
        "state": "down", "members": 0, "running": 0, "availability": 0.0, "groups": {},
    }  # fmt: skip
