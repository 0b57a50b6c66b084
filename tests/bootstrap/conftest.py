"""A running app with the bootstrap service, and a plant to configure devices in."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from shopfloor.app import create_app
from shopfloor.bootstrap import Bootstrap
from shopfloor.bootstrap.capability import BootstrapService
from tests.serving import lifespan

from ..api.conftest import Api


@dataclass
class Plant:
    org_id: str
    engineer: dict[str, str]
    channels: list[str]


def new_key() -> str:
    return secrets.token_urlsafe(24)


@pytest.fixture
async def api(make_settings: Callable[..., Any]) -> AsyncIterator[Api]:
    # Generous limits: the tests of the limits set their own.
    settings = make_settings(services=("api", "bootstrap"), bootstrap_id_burst=100)
    app = create_app(settings)
    async with lifespan(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://shopfloor") as http:
            yield Api(http, app.state.platform, manager.app)


@pytest.fixture
def bootstrap(api: Api) -> Bootstrap:
    return api.platform.get(BootstrapService).bootstrap


async def make_plant(api: Api, name: str = "Plant", channels: int = 2) -> Plant:
    org_id = await api.org(name)
    engineer = await api.member(org_id, "engineer")
    ids = []
    for i in range(channels):
        response = await api.http.post(
            "/api/v1/channels", json={"name": f"line-{i}"}, headers=engineer
        )
        assert response.status_code == 201, response.text
        ids.append(response.json()["id"])
    return Plant(org_id, engineer, ids)


@pytest.fixture
async def plant(api: Api) -> Plant:
    return await make_plant(api)


async def configure(
    api: Api, plant: Plant, external_id: str, external_key: str, **fields: Any
) -> dict[str, Any]:
    body = {"external_id": external_id, "external_key": external_key, "name": external_id}
    body |= {"channels": plant.channels} | fields
    response = await api.http.post("/api/v1/bootstrap/configs", json=body, headers=plant.engineer)
    assert response.status_code == 201, response.text
    config: dict[str, Any] = response.json()
    return config
