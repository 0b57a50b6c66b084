"""What the AAS tests share: a platform with the aas service (SQLite unless told)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager

from shopfloor.aas import AasStore
from shopfloor.aas.capability import AasService
from shopfloor.app import create_app
from tests.api.conftest import Api


@pytest.fixture
async def api(make_settings: Callable[..., Any]) -> AsyncIterator[Api]:
    app = create_app(make_settings())
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://shopfloor") as http:
            yield Api(http, app.state.platform, manager.app)


@pytest.fixture
def store(api: Api) -> AasStore:
    return api.platform.get(AasService).store
