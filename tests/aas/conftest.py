"""What the AAS tests share: a platform with the aas service (SQLite unless told)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest

from shopfloor.aas import AasStore
from shopfloor.aas.capability import AasService
from shopfloor.app import create_app
from tests.api.conftest import Api
from tests.serving import lifespan

from .brokers import TRANSPORTS, Broker, tansu


@pytest.fixture
async def api(make_settings: Callable[..., Any]) -> AsyncIterator[Api]:
    app = create_app(make_settings())
    async with lifespan(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://shopfloor") as http:
            yield Api(http, app.state.platform, manager.app)


@pytest.fixture
def store(api: Api) -> AasStore:
    return api.platform.get(AasService).store


@pytest.fixture(scope="session")
def kafka_address() -> Iterator[str]:
    """One Tansu broker for the session (memory storage: tests use fresh topics)."""
    with tansu() as address:
        yield address


@pytest.fixture(params=TRANSPORTS)
async def broker(request: pytest.FixtureRequest) -> AsyncIterator[Broker]:
    kafka = request.getfixturevalue("kafka_address") if request.param == "kafka" else None
    broker = Broker(request.param, kafka)
    try:
        yield broker
    finally:
        await broker.cleanup()
