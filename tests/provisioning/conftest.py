"""A running app with provisioning, on SQLite and on PostgreSQL, and a plant to fill."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from shopfloor.app import create_app
from tests.serving import lifespan

from ..api.conftest import Api


@dataclass
class Plant:
    org_id: str
    engineer: dict[str, str]
    viewer: dict[str, str]


@pytest.fixture
async def api(make_settings: Callable[..., Any], database_url: str) -> AsyncIterator[Api]:
    settings = make_settings(services=("api", "provision"), database_url=database_url)
    app = create_app(settings)
    async with lifespan(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://shopfloor") as http:
            yield Api(http, app.state.platform, manager.app)


@pytest.fixture
async def plant(api: Api) -> Plant:
    org_id = await api.org("Plant North")
    return Plant(org_id, await api.member(org_id, "engineer"), await api.member(org_id, "viewer"))
