"""Agents signing in with their certificates, and the states they report: `PUT|GET
/api/v1/agents/{name}/state` and its followed feed, on a platform served by uvicorn
(a followed feed needs real HTTP). The agents here are stopped records: the states
are reported by the test, signed as each agent would sign them."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from shopfloor.core import SseParser
from shopfloor.pki import mint_assertion

from .agentkit import agent_files, engineer_of_new_org, served_platform

STOPPED_AGENT = {"command": ["true"], "desired_state": "stopped"}


@pytest.fixture
async def platform_url(make_settings: Callable[..., Any]) -> AsyncIterator[str]:
    async with served_platform(make_settings) as base:
        yield base


def signed_in(files: Path) -> dict[str, str]:
    """What `shopfloor.sdk.AgentAssertion` sends, from the agent's files."""
    certificate = x509.load_pem_x509_certificate((files / "cert.pem").read_bytes())
    key = serialization.load_pem_private_key((files / "key.pem").read_bytes(), password=None)
    return {"Authorization": f"Bearer {mint_assertion(certificate, key)}"}  # type: ignore[arg-type]


async def stopped_agents(http: httpx.AsyncClient, auth: dict[str, str], *names: str) -> None:
    for name in names:
        created = await http.post(
            "/api/v1/agents", json={"name": name, **STOPPED_AGENT}, headers=auth
        )
        assert created.status_code == 201, created.text


def report(run: str, sequence: int, **state: Any) -> dict[str, Any]:
    return {"run": run, "sequence": sequence, "state": state,
            "published_at": "2026-12-01T12:00:00+00:00"}  # fmt: skip


async def test_an_agent_reports_its_own_state_and_nobody_else_does(
    platform_url: str, tmp_path: Path
) -> None:
    async with httpx.AsyncClient(base_url=platform_url, timeout=30) as http:
        org_id, engineer = await engineer_of_new_org(http)
        await stopped_agents(http, engineer, "press-01", "cell-1")
        press = signed_in(await agent_files(http, engineer, org_id, "press-01", tmp_path))
        cell = signed_in(await agent_files(http, engineer, org_id, "cell-1", tmp_path))
        url = "/api/v1/agents/press-01/state"

        empty = (await http.get(url, headers=engineer)).json()
        assert (empty["agent"], empty["reported"]) == ("press-01", None)
        assert empty["status"] in ("pending", "sleeping")

        put = await http.put(url, json=report("r1", 2, state="running"), headers=press)
        assert put.status_code == 200, put.text
        assert put.json()["accepted"] is True
        held = (await http.get(url, headers=engineer)).json()["reported"]
        assert (held["run"], held["sequence"], held["state"]) == ("r1", 2, {"state": "running"})

        # Late: the same run with a lower sequence is not kept; a new run starts again.
        late = (await http.put(url, json=report("r1", 1, state="starting"), headers=press)).json()
        assert late["accepted"] is False and late["reported"]["sequence"] == 2
        again = (await http.put(url, json=report("r2", 1, state="idle"), headers=press)).json()
        assert again["accepted"] is True
        assert (await http.get(url, headers=engineer)).json()["reported"]["state"] == {
            "state": "idle"
        }

        # Only the agent itself reports: not another agent, not an engineer.
        for who in (cell, engineer):
            refused = await http.put(url, json=report("x", 9, state="forged"), headers=who)
            assert refused.status_code == 403, refused.text
            assert refused.json()["error"]["code"] == "not_this_agent"

        too_large = report("r2", 2, blob="x" * 70_000)
        answer = await http.put(url, json=too_large, headers=press)
        assert answer.status_code == 413, answer.text
        assert answer.json()["error"]["code"] == "agent_state_too_large"
        bad = await http.put(url, json={"run": "", "sequence": 0, "state": []}, headers=press)
        assert bad.status_code == 422

        # An agent may read what the platform grants agents, and manage nothing.
        assert (await http.get("/api/v1/things", headers=press)).status_code == 200
        made = await http.post("/api/v1/agents", json={"name": "x", **STOPPED_AGENT},
                               headers=press)  # fmt: skip
        assert made.status_code == 403, made.text

        # A certificate whose agent has no record reports nothing.
        ghost = signed_in(await agent_files(http, engineer, org_id, "ghost", tmp_path))
        lost = await http.put("/api/v1/agents/ghost/state", json=report("g", 1), headers=ghost)
        assert lost.status_code == 404, lost.text


async def test_an_agent_reads_another_ones_state_only_with_reads(
    platform_url: str, tmp_path: Path
) -> None:
    async with httpx.AsyncClient(base_url=platform_url, timeout=30) as http:
        org_id, engineer = await engineer_of_new_org(http)
        await stopped_agents(http, engineer, "press-01", "cell-1")
        cell = signed_in(await agent_files(http, engineer, org_id, "cell-1", tmp_path))
        url = "/api/v1/agents/press-01/state"

        denied = await http.get(url, headers=cell)
        assert denied.status_code == 403, denied.text
        assert denied.json()["error"]["code"] == "relation_denied"
        tuple_ = {"subject": "agent:cell-1", "relation": "controls", "object": "agent:press-01"}
        added = await http.post("/api/v1/relations", json=tuple_, headers=engineer)
        assert added.status_code == 200, added.text
        assert (await http.get(url, headers=cell)).status_code == 200  # controls ⇒ reads
        # Its own state an agent reads without a relation.
        assert (await http.get("/api/v1/agents/cell-1/state", headers=cell)).status_code == 200


async def test_a_revoked_certificate_signs_in_no_more(platform_url: str, tmp_path: Path) -> None:
    async with httpx.AsyncClient(base_url=platform_url, timeout=30) as http:
        org_id, engineer = await engineer_of_new_org(http)
        files = await agent_files(http, engineer, org_id, "press-01", tmp_path)
        press = signed_in(files)
        assert (await http.get("/api/v1/things", headers=press)).status_code == 200
        serial = x509.load_pem_x509_certificate((files / "cert.pem").read_bytes()).serial_number
        revoked = await http.delete(
            f"/api/v1/certs/{serial:x}", params={"reason": "key_compromise"}, headers=engineer
        )
        assert revoked.status_code == 200, revoked.text
        refused = await http.get("/api/v1/things", headers=press)
        assert refused.status_code == 401, refused.text
        assert refused.json()["error"]["code"] == "certificate_revoked"


async def test_the_followed_feed_tells_states_and_status(platform_url: str, tmp_path: Path) -> None:
    async with httpx.AsyncClient(base_url=platform_url, timeout=30) as http:
        org_id, engineer = await engineer_of_new_org(http)
        await stopped_agents(http, engineer, "press-01")
        press = signed_in(await agent_files(http, engineer, org_id, "press-01", tmp_path))
        url = "/api/v1/agents/press-01/state"
        await http.put(url, json=report("r1", 1, parts=1), headers=press)

        events: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()

        async def follow() -> None:
            async with http.stream("GET", url, params={"follow": "true"},
                                   headers=engineer) as answer:  # fmt: skip
                assert answer.status_code == 200
                parser = SseParser()
                async for line in answer.aiter_lines():
                    if (event := parser.line(line)) is not None:
                        await events.put((event.event, json.loads(event.data)))

        following = asyncio.create_task(follow())
        try:
            first = await asyncio.wait_for(events.get(), 10)
            assert first[0] == "status" and first[1]["state"] in ("pending", "sleeping")
            last = await asyncio.wait_for(events.get(), 10)
            assert last[0] == "state" and last[1]["state"] == {"parts": 1}

            await http.put(url, json=report("r1", 2, parts=2), headers=press)
            await http.put(url, json=report("r1", 1, parts=0), headers=press)  # late: dropped
            await http.put(url, json=report("r1", 3, parts=3), headers=press)
            seen = [await asyncio.wait_for(events.get(), 10) for _ in range(2)]
            assert [(kind, data["state"]["parts"]) for kind, data in seen] == [
                ("state", 2),
                ("state", 3),
            ]

            deleted = await http.delete("/api/v1/agents/press-01", headers=engineer)
            assert deleted.status_code == 204
            while True:  # the reconciler's own status changes on the way, then the end
                kind, data = await asyncio.wait_for(events.get(), 30)
                if kind == "status" and data["state"] == "deleted":
                    break
            await asyncio.wait_for(following, 10)  # the feed ends with the agent
        finally:
            following.cancel()
