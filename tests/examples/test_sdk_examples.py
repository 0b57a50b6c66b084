"""The agent SDK examples end to end, through the API alone: two simulated OPC UA
machines (`examples/sdk/opcua_machine_sim.py`, real asyncua servers), an agent for each
(`examples/sdk/opcua_machine_agent.py`) and a cell coordinator over both
(`examples/sdk/cell_coordinator.py`), deployed with `POST /api/v1/agents` and run under
the process runtime by a real platform served by uvicorn.

The machines' values reach the readers API on each agent's provisioned channel; a
machine stopped through its agent's gRPC `stop` changes the coordinator's aggregate,
read over gRPC with a client certificate issued by the platform's certificates API;
the coordinator's `stop_all` stops the other one; a machine whose OPC UA server goes
away is `unknown` to the cell until it is back. The agents check every call against
their certificates, the platform's revocation list and its relation graph (`access:
relations`): the cell controls its machines, the observer controls all three, through a
group the machines are members of.
"""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator, Callable
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
from examples.sdk.opcua_machine_sim import RUNNING, STOPPED, SimulatedMachine

from shopfloor.sdk import Agent, AgentContext, AgentError
from tests.agents.agentkit import agent_files, engineer_of_new_org, eventually, served_platform
from tests.serving import free_port

MACHINE_AGENT = "examples.sdk.opcua_machine_agent:main"
COORDINATOR = "examples.sdk.cell_coordinator:main"
MACHINES = ("mill-1", "mill-2")
#: Quick to notice a machine gone; 5 s for a method call, which a loaded machine may need.
FAST = "timeout=5&heartbeat=0.5&reconnect_delay=0.05&reconnect_max=0.5"


@pytest.fixture
async def platform_url(make_settings: Callable[..., Any]) -> AsyncIterator[str]:
    async with served_platform(make_settings) as base:
        yield base


@pytest.fixture
async def machines(tmp_path: Path) -> AsyncIterator[dict[str, SimulatedMachine]]:
    shelf = tmp_path / "standard-address-space"  # made once, loaded by both servers
    started: dict[str, SimulatedMachine] = {}
    try:
        for name in MACHINES:
            machine = SimulatedMachine(free_port(), tick_seconds=0.1, part_seconds=0.3)
            machine.shelf_file = shelf
            await machine.start()
            shelf.touch()  # asyncua's dbm writes .dat/.dir beside it; it looks for the name
            started[name] = machine
        yield started
    finally:
        for machine in started.values():
            await machine.stop()


async def test_machines_publish_and_the_cell_follows_them(
    platform_url: str, machines: dict[str, SimulatedMachine], tmp_path: Path
) -> None:
    async with httpx.AsyncClient(base_url=platform_url, timeout=30) as http:
        org_id, engineer = await engineer_of_new_org(http)

        grants = ("agent:mill-1 member group:cell-a", "agent:mill-2 member group:cell-a",
                  "agent:cell-1 controls group:cell-a", "agent:observer controls group:cell-a",
                  "agent:observer controls agent:cell-1")  # fmt: skip
        tuples = [dict(zip(("subject", "relation", "object"), g.split(), strict=True))
                  for g in grants]  # fmt: skip
        added = await http.post("/api/v1/relations", json={"tuples": tuples}, headers=engineer)
        assert added.status_code == 200, added.text

        ports = {name: free_port() for name in (*MACHINES, "cell-1")}
        peers = {name: f"127.0.0.1:{port}" for name, port in ports.items()}
        common = {"access": "relations", "platform_url": platform_url,
                  "grpc_host": "127.0.0.1", "crl_refresh_seconds": 5}  # fmt: skip
        specs = [
            {"name": name, "module": MACHINE_AGENT,
             "config": {**common, "grpc_port": ports[name], "interval": 0.2,
                        "machine_url": f"{machine.url}?{FAST}"},
             "labels": {"shopfloor.agent": "true",
                        "shopfloor.provision.mqtt": f"{name} telemetry"}}
            for name, machine in machines.items()
        ] + [
            {"name": "cell-1", "module": COORDINATOR,
             "config": {**common, "grpc_port": ports["cell-1"], "members": list(MACHINES),
                        "peers": {name: peers[name] for name in MACHINES}},
             "labels": {"shopfloor.agent": "true"}},
        ]  # fmt: skip
        for spec in specs:
            spec["env"] = {"PYTHONPATH": os.pathsep.join(sys.path)}
            created = await http.post("/api/v1/agents", json=spec, headers=engineer)
            assert created.status_code == 201, created.text

        async def all_running() -> bool:
            answer = (await http.get("/api/v1/agents", headers=engineer)).json()
            states = {a["name"]: a["status"]["state"] for a in answer["items"]}
            return states == dict.fromkeys((*MACHINES, "cell-1"), "running")

        await eventually(all_running)

        # Each machine's values are readable on its agent's channel.
        channels = (await http.get("/api/v1/channels", headers=engineer)).json()["items"]
        for name in MACHINES:
            channel = next(c for c in channels if c["name"] == f"{name} telemetry")
            messages = await eventually(partial(_messages, http, engineer, channel["id"]))
            names = {m["name"] for m in messages}
            assert {f"{name}:temperature", f"{name}:spindle-speed", f"{name}:state",
                    f"{name}:parts"} <= names  # fmt: skip
            speeds = [m["value"] for m in messages if m["name"] == f"{name}:spindle-speed"]
            assert 1200 in speeds

        # An observer agent of the organisation, its certificate issued by the platform.
        observer = await _observer(http, engineer, org_id, tmp_path, platform_url, peers)
        async with observer:

            async def cell_state(holds: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
                async def check() -> dict[str, Any] | None:
                    try:
                        state = (await observer.get_state("cell-1")).state
                    except AgentError:
                        return None  # not serving yet, or no revocation list yet
                    return state if state and holds(state) else None

                found: dict[str, Any] = await eventually(check)
                return found

            state = await cell_state(lambda s: s["running"] == 2)
            assert state == {
                "state": "running", "availability": 1.0, "running": 2, "members": 2,
                "machines": {"mill-1": "running", "mill-2": "running"},
            }  # fmt: skip

            read = await observer.call("mill-1", "read")
            assert read["state"] == RUNNING and read["spindle_speed"] == 1200

            # mill-1 stops, through its agent's gRPC `stop` calling the OPC UA method.
            assert await observer.call("mill-1", "stop") == {"machine_state": STOPPED}
            assert machines["mill-1"].state == STOPPED
            state = await cell_state(lambda s: s["running"] == 1)
            assert state == {
                "state": "degraded", "availability": 0.5, "running": 1, "members": 2,
                "machines": {"mill-1": "stopped", "mill-2": "running"},
            }  # fmt: skip
            member = (await observer.get_state("mill-1")).state
            assert member == {"state": "stopped", "machine_state": STOPPED,
                              "connected": True, "connector": "connected"}  # fmt: skip

            # The coordinator stops the rest of the cell.
            answers = await observer.call("cell-1", "stop_all")
            expected = {name: {"machine_state": STOPPED} for name in MACHINES}
            assert answers == expected, f"{answers}\n" + await _what_happened(http, engineer)
            assert machines["mill-2"].state == STOPPED
            state = await cell_state(lambda s: s["running"] == 0)
            assert (state["state"], state["availability"]) == ("down", 0.0)

            # A machine whose server goes away is unknown, and known again when it is back.
            await machines["mill-2"].stop()
            state = await cell_state(lambda s: s["machines"]["mill-2"] == "unknown")
            member = (await observer.get_state("mill-2")).state
            assert (member["state"], member["connected"]) == ("unknown", False)
            await machines["mill-2"].start()
            await cell_state(lambda s: s["machines"]["mill-2"] == "stopped")

        logs = await http.get("/api/v1/agents/cell-1/logs", params={"tail": 200},
                              headers=engineer)  # fmt: skip
        assert logs.status_code == 200, logs.text
        assert "'availability': 0.5" in logs.text

        for name in (*MACHINES, "cell-1"):
            deleted = await http.delete(f"/api/v1/agents/{name}", headers=engineer)
            assert deleted.status_code == 204, deleted.text


async def _what_happened(http: httpx.AsyncClient, auth: dict[str, str]) -> str:
    """The agents' restarts and last lines, for a failure's message."""
    agents = (await http.get("/api/v1/agents", headers=auth)).json()["items"]
    told = []
    for agent in agents:
        logs = await http.get(f"/api/v1/agents/{agent['name']}/logs", params={"tail": 30},
                              headers=auth)  # fmt: skip
        lines = "\n    ".join(line["text"] for line in logs.json().get("items", []))
        told.append(f"{agent['name']}: {agent['status']}\n    {lines}")
    return "\n".join(told)


async def _messages(
    http: httpx.AsyncClient, auth: dict[str, str], channel_id: str
) -> list[dict[str, Any]]:
    answer = await http.get(
        f"/api/v1/channels/{channel_id}/messages", params={"limit": 100}, headers=auth
    )
    assert answer.status_code == 200, answer.text
    messages: list[dict[str, Any]] = answer.json()["messages"]
    return messages if len({m["name"] for m in messages}) >= 4 else []


async def _observer(
    http: httpx.AsyncClient,
    auth: dict[str, str],
    org_id: str,
    folder: Path,
    platform_url: str,
    peers: dict[str, str],
) -> Agent:
    """An agent of the organisation, run in the test, to call the deployed ones."""
    files = await agent_files(http, auth, org_id, "observer", folder)
    config = {"access": "relations", "platform_url": platform_url, "peers": peers,
              "grpc_host": "127.0.0.1", "call_timeout": 5}  # fmt: skip
    return Agent(AgentContext(files_dir=files, config=config))
