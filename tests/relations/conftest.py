"""The relations store on SQLite and PostgreSQL, and a running app with the service."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import uvicorn

from shopfloor.app import create_app
from shopfloor.auth.relations import MIGRATIONS, RelationStore
from shopfloor.core import create_engine, migrate
from tests.serving import lifespan

from ..api.conftest import Api
from ..serving import served_app

BASE = "/api/v1/relations"


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[RelationStore]:
    engine = create_engine(database_url)
    try:
        await migrate(engine, [MIGRATIONS])
        yield RelationStore(engine)
    finally:
        await engine.dispose()


@dataclass
class Plant:
    org_id: str
    engineer: dict[str, str]
    viewer: dict[str, str]


@pytest.fixture
def relations_settings() -> dict[str, Any]:
    """Settings of the app under test beyond the services (a test module may override)."""
    return {}


@pytest.fixture
async def api(
    make_settings: Callable[..., Any], relations_settings: dict[str, Any]
) -> AsyncIterator[Api]:
    settings = make_settings(services=("api", "relations"), **relations_settings)
    app = create_app(settings)
    async with lifespan(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://shopfloor") as http:
            yield Api(http, app.state.platform, manager.app)


async def make_plant(api: Api, name: str) -> Plant:
    org_id = await api.org(name)
    return Plant(org_id, await api.member(org_id, "engineer"), await api.member(org_id, "viewer"))


@pytest.fixture
async def plant(api: Api) -> Plant:
    return await make_plant(api, "Plant North")


@asynccontextmanager
async def served(api: Api, *, port: int = 0) -> AsyncIterator[str]:
    """The app of `api` over real HTTP (a followed feed needs it: httpx's ASGI transport
    hands a response over only once it is complete); yields the base URL. Open feeds are
    cut one second into the stop."""
    config = uvicorn.Config(
        api.app, lifespan="off", log_level="critical", timeout_graceful_shutdown=1
    )
    async with served_app(config, port=port) as bound:
        yield f"http://127.0.0.1:{bound}"


def t(text: str) -> dict[str, str]:
    """A tuple's JSON from its text form."""
    subject, relation, obj = text.split()
    return {"subject": subject, "relation": relation, "object": obj}


async def add(api: Api, user: dict[str, str], *lines: str) -> dict[str, Any]:
    body = t(lines[0]) if len(lines) == 1 else {"tuples": [t(line) for line in lines]}
    response = await api.http.post(BASE, json=body, headers=user)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


async def until(condition: Callable[[], bool], *, within: float) -> float:
    """Seconds until `condition` held; fails after `within` seconds."""
    start = time.monotonic()
    while not condition():
        assert time.monotonic() - start < within, "the condition did not hold in time"
        await asyncio.sleep(0.005)
    return time.monotonic() - start
