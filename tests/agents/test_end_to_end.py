"""Through the API alone: the machine agent (`examples/agents/machine.py`) with the
`postgres` and `mqtt` labels starts under the process runtime, writes to its own
database and publishes to its channel; its records are readable through the readers
API. Deleting it ends its process and drops its database, role and thing.

A real platform served by uvicorn (the agent reaches its HTTP adapter over TCP), a
real PostgreSQL (the agent's database made by the provisioner on it).
"""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from shopfloor.agents import AgentRef
from tests.conftest import POSTGRES_ADMIN_URL

from .agentkit import eventually, served_platform

ROOT = Path(__file__).resolve().parents[2]
MACHINE = ROOT / "examples" / "agents" / "machine.py"


@pytest.fixture
async def platform_url(make_settings: Callable[..., Any]) -> AsyncIterator[str]:
    async with served_platform(make_settings, agent_postgres_url=POSTGRES_ADMIN_URL) as base:
        yield base


async def test_a_machine_agent_publishes_and_keeps_its_own_database(platform_url: str) -> None:
    async with httpx.AsyncClient(base_url=platform_url, timeout=30) as http:
        root = await _token(http, "root@plant.example", "root-password")
        org = (await http.post("/api/v1/orgs", json={"name": "Plant"}, headers=root)).json()
        user = {"email": "eng@plant.example", "password": "password-1", "org_id": org["id"],
                "role": "engineer"}  # fmt: skip
        assert (await http.post("/api/v1/users", json=user, headers=root)).status_code == 201
        engineer = await _token(http, "eng@plant.example", "password-1")

        spec = {
            "name": "press-7",
            "command": [sys.executable, str(MACHINE)],
            "config": {"interval": 0.2, "machine": "press-7"},
            "labels": {"shopfloor.agent": "true", "shopfloor.provision.postgres": "true",
                       "shopfloor.provision.mqtt": "press-7 telemetry"},
            "env": {"PYTHONPATH": os.pathsep.join(sys.path)},
        }  # fmt: skip
        created = await http.post("/api/v1/agents", json=spec, headers=engineer)
        assert created.status_code == 201, created.text

        async def running() -> dict[str, Any] | None:
            body: dict[str, Any] = (
                await http.get("/api/v1/agents/press-7", headers=engineer)
            ).json()
            return body if body["status"]["state"] == "running" else None

        await eventually(running)
        channels = (await http.get("/api/v1/channels", headers=engineer)).json()["items"]
        channel = next(c for c in channels if c["name"] == "press-7 telemetry")

        async def stored() -> list[dict[str, Any]]:
            answer = await http.get(
                f"/api/v1/channels/{channel['id']}/messages", params={"limit": 100},
                headers=engineer,
            )  # fmt: skip
            assert answer.status_code == 200, answer.text
            messages: list[dict[str, Any]] = answer.json()["messages"]
            return messages if len(messages) >= 3 else []

        messages = await eventually(stored)
        things = (await http.get("/api/v1/things", headers=engineer)).json()["items"]
        thing = next(t for t in things if t["name"] == "agent press-7")
        assert {m["publisher"] for m in messages} == {thing["id"]}
        assert all(m["name"].startswith("press-7") for m in messages)

        # Its own database, reachable with its own role only.
        agent = AgentRef(org["id"], "press-7")
        role, database = await _agent_database(agent)
        assert (role, database) == (agent.slug("sf_agent"), agent.slug("sf_db"))
        assert database is not None

        async def rows() -> int:
            conn = await asyncpg.connect(_url(database))
            try:
                count: int = await conn.fetchval("SELECT count(*) FROM readings")
                owner = await conn.fetchval(
                    "SELECT tableowner FROM pg_tables WHERE tablename = 'readings'"
                )
            except asyncpg.UndefinedTableError:
                return 0
            finally:
                await conn.close()
            assert owner == role
            return count

        await eventually(rows)
        body = (await http.get("/api/v1/agents/press-7", headers=engineer)).text
        assert "PGPASSWORD" not in body and thing["key"] not in body

        deleted = await http.delete("/api/v1/agents/press-7", headers=engineer)
        assert deleted.status_code == 204, deleted.text
        assert await _agent_database(agent) == (None, None)
        things = (await http.get("/api/v1/things", headers=engineer)).json()["items"]
        assert all(t["name"] != "agent press-7" for t in things)


async def _token(http: httpx.AsyncClient, email: str, password: str) -> dict[str, str]:
    answer = await http.post("/api/v1/auth/token", json={"email": email, "password": password})
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


def _url(database: str) -> str:
    return POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{database}"


async def _agent_database(agent: AgentRef) -> tuple[str | None, str | None]:
    """The role and database the provisioner made for the agent (None when gone)."""
    conn = await asyncpg.connect(POSTGRES_ADMIN_URL)
    try:
        role = await conn.fetchval(
            "SELECT rolname FROM pg_roles WHERE rolname = $1", agent.slug("sf_agent")
        )
        database = await conn.fetchval(
            "SELECT datname FROM pg_database WHERE datname = $1", agent.slug("sf_db")
        )
    finally:
        await conn.close()
    return role, database
