"""A Core deployed as an agent (`shopfloor.provision.aas`): the process runtime starts
the SDK example Core as a real process; the platform gives the shell a Manager, hands
the agent its topic, broker and definition, and removes that Manager with the agent. Over
real NATS JetStream, since a Core in its own process cannot reach a memory transport."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from shopfloor.aas.capability import AasService
from shopfloor.aas.part2 import encode_id

from ..agents.agentkit import eventually, remove_all_agents
from ..agents.test_service import SETTINGS as AGENT_SETTINGS
from .brokers import Broker
from .shells import AAS_ID, SUBMODEL_ID, Plant, plant

ROOT = Path(__file__).resolve().parents[2]
MANAGER = f"/api/v1/aas/managers/{encode_id(AAS_ID)}"
INVOKE = (
    f"/aas/api/v3.0/submodels/{encode_id(SUBMODEL_ID)}"
    "/submodel-elements/Controls.start/invoke/$value"
)


def core_agent(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "command": [sys.executable, "-m", "examples.aas.press_core"],
        "env": {"PRESS_SUBMODEL_ID": SUBMODEL_ID, "PYTHONPATH": str(ROOT)},
        "labels": {"shopfloor.provision.aas": AAS_ID},
    }


@asynccontextmanager
async def press_shop(
    make_settings: Callable[..., Any], transport_url: str, *, managed: bool
) -> AsyncIterator[Plant]:
    def with_agents(**more: Any) -> Any:  # the agents service runs by default: quicken it
        return make_settings(**AGENT_SETTINGS, **more)

    async with plant(with_agents, transport_url, managed=managed) as shop:
        try:
            yield shop
        finally:
            await remove_all_agents(shop.api.platform)


async def status(shop: Plant, name: str) -> dict[str, Any]:
    response = await shop.api.http.get(f"/api/v1/agents/{name}", headers=shop.headers)
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()["status"]
    return found


async def test_a_core_agent_gets_a_manager_runs_operations_and_takes_it_away(
    make_settings: Callable[..., Any],
) -> None:
    broker = Broker("nats")
    try:
        async with press_shop(make_settings, broker.url, managed=False) as shop:
            http, headers = shop.api.http, shop.headers
            created = await http.post("/api/v1/agents", json=core_agent("press-core"),
                                      headers=headers)  # fmt: skip
            assert created.status_code == 201, created.text

            async def running() -> Any:
                return (await status(shop, "press-core"))["state"] == "running"

            await eventually(running, seconds=60)
            manager = (await http.get(MANAGER, headers=headers)).json()
            broker.topics.append(manager["topic"])
            assert manager["core_agent"] == "press-core"

            async def invoked() -> Any:
                answer = await http.post(
                    INVOKE, json={"inputArguments": {"speed": 5}}, headers=headers
                )
                body = answer.json()
                return body if body.get("executionState") == "Completed" else None

            result = await eventually(invoked, seconds=60)
            assert result["outputArguments"] == {"rpm": 500}
            logs = await http.get("/api/v1/agents/press-core/logs", headers=headers)
            lines = [item["text"] for item in logs.json()["items"]]
            assert f"defined by aas.json: {AAS_ID} {SUBMODEL_ID}" in lines
            assert "running; the shell says Controls.speed is 10" in lines

            # One Core per shell: a second agent naming it is told so, and waits.
            second = await http.post("/api/v1/agents", json=core_agent("press-core-2"),
                                     headers=headers)  # fmt: skip
            assert second.status_code == 201, second.text

            async def refused() -> Any:
                found = await status(shop, "press-core-2")
                return found if found.get("error") else None

            told = await eventually(refused, seconds=30)
            assert told["state"] == "pending"
            assert told["error"] == (
                f"shopfloor.provision.aas: the agent 'press-core' is the Core of {AAS_ID!r} already"
            )

            # The Manager was made for the agent: it goes with it.
            gone = await http.delete("/api/v1/agents/press-core?wait=30", headers=headers)
            assert gone.status_code in (202, 204), gone.text

            async def removed() -> Any:
                return (await http.get(MANAGER, headers=headers)).status_code == 404

            await eventually(removed, seconds=60)
    finally:
        await broker.cleanup()


async def test_a_manager_made_through_the_api_stays_when_its_core_agent_goes(
    make_settings: Callable[..., Any],
) -> None:
    broker = Broker("nats")
    try:
        async with press_shop(make_settings, broker.url, managed=True) as shop:
            broker.topics.append(shop.topic)
            service = shop.api.platform.get(AasService)
            claimed = await service.managers.claim(shop.org_id, AAS_ID, "press-core")
            again = await service.managers.claim(shop.org_id, AAS_ID, "press-core")
            assert claimed.core_agent == again.core_agent == "press-core"
            await service.managers.release(shop.org_id, "press-core")
            kept = (await shop.api.http.get(MANAGER, headers=shop.headers)).json()
            assert kept["core_agent"] is None and kept["topic"] == shop.topic
    finally:
        await broker.cleanup()


async def test_a_core_agent_needs_a_transport_other_processes_reach(
    make_settings: Callable[..., Any],
) -> None:
    async with press_shop(make_settings, "memory://press", managed=False) as shop:
        refused = await shop.api.http.post(
            "/api/v1/agents", json=core_agent("press-core"), headers=shop.headers
        )
        assert refused.status_code == 400, refused.text
        assert refused.json()["error"]["code"] == "aas_transport_in_process"
