"""An `agent.call` task calls a real agent written with the SDK, over gRPC with mutual
TLS, as the flow itself: a certificate of entity type `flow` the platform's CA issued,
checked by the agent against the platform's relation graph (`access: relations`, a
`RelationCache` following the platform over HTTP) and its CRL. The answer is the task's
result, read by the next task; a refusal, an agent down, a deadline and an error the
agent answered fail the task with their codes, after its retries."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
import uvicorn

from shopfloor.app import create_app
from shopfloor.core import Platform
from shopfloor.flows import FlowRunError
from shopfloor.flows._agent_calls import PlatformAgentCalls, agent_address
from shopfloor.pki import Entity, EntityType
from shopfloor.pki.capability import PkiService
from shopfloor.sdk import Agent, AgentContext, CallFailed, agent_dns_name, current_caller
from tests.agents.agentkit import engineer_of_new_org, eventually
from tests.serving import free_port, served_app

SERVICES = "api,agents,flows,relations"


def calling(flow_id: str, address: str, **task: Any) -> dict[str, Any]:
    """A flow without triggers (each `start` runs it once): `stop` of mill-1, whose
    answer the next task reads."""
    parameters = {"agent": "mill-1", "method": "stop", "address": address,
                  "arguments": {"speed": "variables.speed"},
                  **task.pop("parameters", {})}  # fmt: skip
    return {
        "id": flow_id, "name": flow_id,
        "tasks": [
            {"id": "stop", "type": "agent.call", "next": ["check"], "parameters": parameters,
             **task},
            {"id": "check", "type": "set_variable", "condition": "results.stop.stopped == true",
             "parameters": {"name": "seen", "value": "results.stop.speed * 2"}},
        ],
        "variables": {"speed": 7},
    }  # fmt: skip


class Mill(Agent):
    async def setup(self) -> None:
        self.callers: list[tuple[str, str]] = []
        self.release = asyncio.Event()
        self.register("stop", self.stop)
        self.register("slow", self.slow)
        self.register("jam", self.jam)

    async def stop(self, speed: int) -> dict[str, Any]:
        caller = current_caller()
        assert caller is not None
        self.callers.append((caller.kind, caller.subject))
        return {"stopped": True, "speed": speed}

    async def slow(self, speed: int) -> None:
        await self.release.wait()

    async def jam(self, speed: int) -> None:
        raise CallFailed("the spindle is jammed", code="spindle_jammed")


@asynccontextmanager
async def served(make_settings: Callable[..., Any]) -> AsyncIterator[tuple[str, Platform]]:
    """The platform with agents, flows and relations over real HTTP (the agent follows
    the relation graph's feed and fetches the CRL): its base URL and the platform."""
    app = create_app(make_settings(services=SERVICES, flows_poll=3600))
    config = uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=1)
    async with served_app(config) as port:
        yield f"http://127.0.0.1:{port}", app.state.platform


async def agent_files(platform: Platform, org_id: str, name: str, folder: Path) -> Path:
    """The files the agents service writes for agent `name`, its certificate issued as
    the agents service issues it (the platform's CA, `<name>.<org>.agents`)."""
    issued = await platform.get(PkiService).certs.issue(
        Entity(EntityType.AGENT, f"{org_id}/{name}"), ttl=timedelta(days=1), org_id=org_id,
        hostnames=[agent_dns_name(org_id, name)],
    )  # fmt: skip
    files = folder / name
    files.mkdir()
    assert issued.key_pem is not None
    for file, text in (("cert.pem", issued.cert_pem), ("key.pem", issued.key_pem),
                       ("ca.pem", issued.ca_pem)):  # fmt: skip
        (files / file).write_text(text)
    return files


@asynccontextmanager
async def mill(platform: Platform, base: str, org_id: str, folder: Path) -> AsyncIterator[Mill]:
    """Agent mill-1 run by the test, its certificate from the platform, checking every
    call against the platform's relation graph and CRL."""
    files = await agent_files(platform, org_id, "mill-1", folder)
    config = {"grpc_host": "127.0.0.1", "grpc_port": 0, "access": "relations",
              "platform_url": base, "report_state": False}  # fmt: skip
    (files / "config.json").write_text(json.dumps(config))
    agent = Mill(AgentContext(files_dir=files, config=config))
    async with agent:
        try:
            yield agent
        finally:
            agent.release.set()


async def run_once(http: httpx.AsyncClient, auth: dict[str, str], flow_id: str) -> dict[str, Any]:
    """Start the flow (it runs once) and answer its newest run once it ended."""
    before = (await http.get(f"/flows/{flow_id}/runs", headers=auth)).json()["runs"]
    started = await http.patch(
        "/flows/commands", json={"command": "start", "flow_ids": [flow_id]}, headers=auth
    )
    assert started.status_code == 200 and started.json()["results"][0]["ok"], started.text

    async def ended() -> Any:
        runs = (await http.get(f"/flows/{flow_id}/runs", headers=auth)).json()["runs"]
        fresh = [run for run in runs if run["status"] != "running"]
        return fresh[0] if len(fresh) > len(before) else None

    run: dict[str, Any] = await eventually(ended)
    return run


async def create(http: httpx.AsyncClient, auth: dict[str, str], doc: dict[str, Any]) -> None:
    created = await http.post("/flows", json=doc, headers=auth)
    assert created.status_code == 201, created.text


async def test_a_flow_calls_an_agent_once_the_graph_lets_it_and_the_next_task_reads_the_answer(
    make_settings: Callable[..., Any], tmp_path: Path
) -> None:
    async with (
        served(make_settings) as (base, platform),
        httpx.AsyncClient(base_url=base, timeout=30) as http,
    ):
        org_id, auth = await engineer_of_new_org(http)
        async with mill(platform, base, org_id, tmp_path) as agent:
            await create(http, auth, calling("line-3", f"127.0.0.1:{agent.port}"))

            # Without a tuple the agent refuses the flow: the run fails, a dead letter.
            refused = await run_once(http, auth, "line-3")
            assert refused["status"] == "failed", refused
            error = refused["tasks"][0]["error"]
            assert error["code"] == "flow_agent_refused", error
            assert "flow:line-3 has no relation 'calls' to agent:mill-1" in error["message"]
            assert error["agent_status"] == "PERMISSION_DENIED"
            letters = (await http.get("/flows/line-3/dead-letters", headers=auth)).json()
            assert [letter["run_id"] for letter in letters["dead_letters"]] == [refused["run_id"]]
            assert agent.callers == []

            written = await http.post(
                "/api/v1/relations", headers=auth,
                json={"subject": "flow:line-3", "relation": "calls", "object": "agent:mill-1"},
            )  # fmt: skip
            assert written.status_code == 200, written.text
            assert agent.relation_cache is not None
            assert await agent.relation_cache.wait_for(written.json()["revision"], timeout=10)

            allowed = await run_once(http, auth, "line-3")
            assert allowed["status"] == "completed", allowed
            assert [(t["task_id"], t["status"]) for t in allowed["tasks"]] == [
                ("stop", "succeeded"), ("check", "succeeded"),
            ]  # fmt: skip
            assert agent.callers == [("flow", "flow:line-3")]

            # The flow's certificate: issued by the platform's CA to the flow, in the
            # organisation's list; the API hands none out.
            certs = (
                await http.get("/api/v1/certs", params={"entity_id": f"{org_id}/line-3"},
                               headers=auth)
            ).json()["items"]  # fmt: skip
            assert [(c["entity_type"], c["revoked_at"]) for c in certs] == [("flow", None)]
            handed = await http.post(
                "/api/v1/certs", json={"entity_type": "flow", "entity_id": f"{org_id}/line-3"},
                headers=auth,
            )  # fmt: skip
            assert handed.status_code == 400 and handed.json()["error"]["code"] == (
                "invalid_entity_type"
            )

            # Revoked, it is refused by the agent (its CRL) and the flow makes another at
            # its next call: a flow's key never leaves the platform.
            revoked = await http.delete(f"/api/v1/certs/{certs[0]['serial']}", headers=auth)
            assert revoked.status_code == 200, revoked.text
            assert agent.revocations is not None
            await agent.revocations.refresh()
            assert agent.revocations.revoked(int(certs[0]["serial"], 16))
            again = await run_once(http, auth, "line-3")
            assert again["status"] == "completed", again
            certs = (
                await http.get("/api/v1/certs", params={"entity_id": f"{org_id}/line-3"},
                               headers=auth)
            ).json()["items"]  # fmt: skip
            assert sorted(c["revoked_at"] is None for c in certs) == [False, True]
            assert agent.callers == [("flow", "flow:line-3")] * 2


async def test_an_agent_down_a_deadline_and_an_agents_error_fail_the_task_with_their_codes(
    make_settings: Callable[..., Any], tmp_path: Path
) -> None:
    async with (
        served(make_settings) as (base, platform),
        httpx.AsyncClient(base_url=base, timeout=30) as http,
    ):
        org_id, auth = await engineer_of_new_org(http)
        async with mill(platform, base, org_id, tmp_path) as agent:
            for flow_id in ("slow", "jam"):
                written = await http.post(
                    "/api/v1/relations", headers=auth,
                    json={"subject": f"flow:{flow_id}", "relation": "controls",
                          "object": "agent:mill-1"},
                )  # fmt: skip
                assert written.status_code == 200, written.text
            assert agent.relation_cache is not None
            assert await agent.relation_cache.wait_for(written.json()["revision"], timeout=10)
            here = f"127.0.0.1:{agent.port}"
            retries = {"attempts": 2, "backoff": 0.05}
            await create(http, auth, calling("down", f"127.0.0.1:{free_port()}", retries=retries))
            await create(http, auth, calling("slow", here, parameters={
                "method": "slow", "timeout_seconds": 0.3}))  # fmt: skip
            await create(http, auth, calling("jam", here, parameters={"method": "jam"}))
            await create(http, auth, calling("nowhere", "", parameters={"address": None}))

            down = await run_once(http, auth, "down")
            slow = await run_once(http, auth, "slow")
            jam = await run_once(http, auth, "jam")
            nowhere = await run_once(http, auth, "nowhere")

    assert down["status"] == "failed"
    assert down["tasks"][0]["attempts"] == 3  # the first and two retries
    assert down["tasks"][0]["error"]["code"] == "flow_agent_unreachable"
    assert slow["tasks"][0]["error"]["code"] == "flow_call_timeout"
    failed = jam["tasks"][0]["error"]
    assert failed["code"] == "flow_agent_call_failed"
    assert (failed["agent_code"], failed["agent_message"]) == (
        "spindle_jammed", "the spindle is jammed",
    )  # fmt: skip
    assert "mill-1.jam answered spindle_jammed" in failed["message"]
    # mill-1 runs outside the agents service: without an address it is not found
    assert nowhere["tasks"][0]["error"]["code"] == "flow_agent_unreachable"
    assert "no agent 'mill-1' in this organisation" in nowhere["tasks"][0]["error"]["message"]


def record(endpoint: str, config: dict[str, Any]) -> Any:
    return SimpleNamespace(
        name="mill-1", spec=SimpleNamespace(config=config),
        status=SimpleNamespace(endpoint=endpoint),
    )  # fmt: skip


@pytest.mark.parametrize(
    ("endpoint", "address"),
    [
        ("", "127.0.0.1:7451"),  # the process runtime: agents run on this host
        ("shopfloor-agent-mill-1", "shopfloor-agent-mill-1:7451"),  # a Swarm service
        ("10.1.2.3", "10.1.2.3:7451"),  # a pod's address
        ("10.1.2.3:8080", "10.1.2.3:7451"),  # the gRPC port is the config's
        ("fd00::12", "[fd00::12]:7451"),
    ],
)
def test_without_an_address_the_agent_is_where_its_status_and_config_say(
    endpoint: str, address: str
) -> None:
    assert agent_address(record(endpoint, {"grpc_port": 7451})) == address


@pytest.mark.parametrize("config", [{}, {"grpc_port": 0}, {"grpc_port": "7451"}])
def test_an_agent_without_a_fixed_grpc_port_cannot_be_called(config: dict[str, Any]) -> None:
    with pytest.raises(FlowRunError) as failed:
        agent_address(record("", config))
    assert failed.value.code == "flow_agent_unreachable"
    assert "no fixed gRPC port: set grpc_port in its config, or the task's address" in str(
        failed.value
    )


async def test_the_address_is_looked_up_in_the_agents_service() -> None:
    async def lookup(org_id: str, name: str) -> Any:
        assert (org_id, name) == ("org1", "mill-1")
        return record("mill-1-pod", {"grpc_port": 7443})

    calls = PlatformAgentCalls(SimpleNamespace(), lookup)  # type: ignore[arg-type]
    assert await calls.address("org1", "mill-1") == "mill-1-pod:7443"
