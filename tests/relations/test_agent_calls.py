"""Agents calling agents over gRPC with mTLS, allowed by the relation graph: the callee
checks every call with a `RelationCache` of the platform's graph (real HTTP, the
change feed), so a relation deleted through the API refuses the next call within 1 s."""

from __future__ import annotations

import time
from contextlib import AsyncExitStack
from pathlib import Path

import grpc
import pytest

from shopfloor.sdk import AgentRefused, RelationCache
from tests.api.conftest import Api
from tests.sdk.agentkit import Fleet, agent_ca

from .conftest import BASE, Plant, add, served, t


async def test_a_relation_allows_calls_and_deleting_it_refuses_the_next_within_a_second(
    api: Api, plant: Plant, tmp_path: Path
) -> None:
    async with (
        served(api) as base,
        RelationCache(base, plant.viewer) as cache,
        agent_ca(tmp_path) as ca,
        AsyncExitStack() as stack,
    ):
        fleet = Fleet(ca, stack)
        press = await fleet.start("press-01", checker=cache.allows)
        press.register("speed", lambda: {"rpm": 1200})
        cell = await fleet.start("cell-1")

        with pytest.raises(AgentRefused) as refused:
            await cell.call("press-01", "speed")
        assert refused.value.status is grpc.StatusCode.PERMISSION_DENIED

        # `controls` implies `reads`, which implies `calls` (the default schema); a
        # relation on the group applies to its members.
        written = await add(
            api, plant.engineer,
            "agent:cell-1 controls group:line-a", "agent:press-01 member group:line-a",
        )  # fmt: skip
        assert await cache.wait_for(written["revision"], timeout=5)
        assert await cell.call("press-01", "speed") == {"rpm": 1200}

        deleted = await api.http.request(
            "DELETE", BASE, json=t("agent:cell-1 controls group:line-a"),
            headers=plant.engineer,
        )  # fmt: skip
        assert deleted.status_code == 200, deleted.text
        gone = time.monotonic()
        while True:
            try:
                await cell.call("press-01", "speed")
            except AgentRefused as exc:
                assert exc.status is grpc.StatusCode.PERMISSION_DENIED
                break
            assert time.monotonic() - gone < 1.0, "still allowed a second after the delete"
        assert time.monotonic() - gone < 1.0
