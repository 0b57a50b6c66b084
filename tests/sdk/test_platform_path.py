"""An agent's state through the platform, beside gRPC: agents deployed by a real
platform (served by uvicorn, the process runtime) sign in to its API with their
certificates, check calls against its relation graph (`access: relations`) and report
each state they publish; a follower that cannot reach an agent follows it through the
platform, and takes it as gone when the platform sees it stop."""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest

from shopfloor.sdk import Agent, AgentContext, AgentRefused, AgentUnreachable, StateChange
from tests.agents.agentkit import agent_files, engineer_of_new_org, eventually, served_platform
from tests.serving import free_port

PUBLISHER = "tests.sdk.grpc_targets:Publisher.main"
READS = {"subject": "agent:cell-1", "relation": "reads", "object": "agent:press-01"}


@pytest.fixture
async def platform_url(make_settings: Callable[..., Any]) -> AsyncIterator[str]:
    async with served_platform(make_settings) as base:
        yield base


async def _changes(agent: Agent, target: str, count: int) -> list[StateChange]:
    seen: list[StateChange] = []
    async for change in agent.follow(target):
        seen.append(change)
        if len(seen) == count:
            break
    return seen


async def test_a_follower_that_cannot_reach_an_agent_follows_it_through_the_platform(
    platform_url: str, tmp_path: Path
) -> None:
    async with httpx.AsyncClient(base_url=platform_url, timeout=30) as http:
        org_id, engineer = await engineer_of_new_org(http)
        added = await http.post("/api/v1/relations", json=READS, headers=engineer)
        assert added.status_code == 200, added.text
        press_port = free_port()
        spec = {
            "name": "press-01", "module": PUBLISHER,
            "config": {"access": "relations", "grpc_host": "127.0.0.1",
                       "grpc_port": press_port, "interval": 0.2, "crl_refresh_seconds": 5},
            "env": {"PYTHONPATH": os.pathsep.join(sys.path)},
        }  # fmt: skip
        created = await http.post("/api/v1/agents", json=spec, headers=engineer)
        assert created.status_code == 201, created.text

        async def reported() -> dict[str, Any] | None:
            answer = (await http.get("/api/v1/agents/press-01/state", headers=engineer)).json()
            return answer if answer["status"] == "running" and answer["reported"] else None

        held = (await eventually(reported))["reported"]
        assert held["state"]["state"] == "running" and held["sequence"] >= 1

        files = await agent_files(http, engineer, org_id, "cell-1", tmp_path)
        config = {
            "access": "relations",
            "platform_url": platform_url,
            "grpc_host": "127.0.0.1",
            "call_timeout": 2,
            "direct_retry_seconds": 1,
        }
        direct = {**config, "peers": {"press-01": f"127.0.0.1:{press_port}"}}
        # Nothing listens there: the agent cannot be reached directly.
        cut_off = {**config, "peers": {"press-01": f"127.0.0.1:{free_port()}"}}

        # Reachable: over gRPC from the agent, which checked `reads` in its relation cache.
        async with Agent(AgentContext(files_dir=files, config=direct)) as cell:
            seen = await eventually(lambda: _direct(cell))
            assert {change.via for change in seen} == {"agent"}

        # Cut off: through the platform, the same states in order, nothing twice.
        async with Agent(AgentContext(files_dir=files, config=cut_off)) as cell:
            seen = await _changes(cell, "press-01", 4)
            assert {change.via for change in seen} == {"platform"}
            counts = [change.state["count"] for change in seen]
            assert counts == sorted(set(counts)) and len({c.run for c in seen}) == 1

            # The platform sees it stop: the follower is told it is gone.
            stopped = await http.patch(
                "/api/v1/agents/press-01", json={"desired_state": "stopped"}, headers=engineer
            )
            assert stopped.status_code == 200, stopped.text
            with pytest.raises(AgentUnreachable, match="press-01"):
                async for _ in cell.follow("press-01"):
                    pass

            # Without `reads` the platform refuses the feed as the agent would the call.
            removed = await http.request(
                "DELETE", "/api/v1/relations", json=READS, headers=engineer
            )
            assert removed.status_code == 200, removed.text
            with pytest.raises(AgentRefused) as refused:
                async for _ in cell.follow("press-01"):
                    pass
            assert refused.value.status is grpc.StatusCode.PERMISSION_DENIED


async def _direct(cell: Agent) -> list[StateChange] | None:
    """Two changes over gRPC, once press-01 takes calls (its CRL and relations loaded)."""
    try:
        return await _changes(cell, "press-01", 2)
    except AgentRefused:
        return None
