"""A running platform with messaging services, and a plant of things to publish with."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from shopfloor.app import create_app
from shopfloor.settings import Settings
from tests.serving import lifespan

from ..api.conftest import Api


@dataclass
class Plant:
    """One organisation, a channel and things with various permissions on it."""

    api: Api
    user: dict[str, str]
    channel: str
    things: dict[str, dict[str, Any]]  # name → thing JSON (with key)

    def key(self, name: str) -> dict[str, str]:
        return {"Authorization": f"Thing {self.things[name]['key']}"}

    async def publish(
        self,
        name: str,
        body: bytes | str,
        *,
        subtopic: str = "",
        content_type: str = "application/senml+json",
    ) -> httpx.Response:
        path = f"/http/channels/{self.channel}/messages" + (f"/{subtopic}" if subtopic else "")
        data = body.encode() if isinstance(body, str) else body
        return await self.api.http.post(
            path, content=data, headers={**self.key(name), "Content-Type": content_type}
        )

    async def read(self, headers: dict[str, str] | None = None, **params: Any) -> httpx.Response:
        return await self.api.http.get(
            f"/api/v1/channels/{self.channel}/messages", params=params, headers=headers or self.user
        )

    async def wait_for(self, total: int, **params: Any) -> dict[str, Any]:
        """Poll the readers API until `total` records match (the writer is asynchronous)."""
        deadline = asyncio.get_running_loop().time() + 20
        while True:
            body: dict[str, Any] = (await self.read(**params)).json()
            if body.get("total") == total:
                return body
            assert asyncio.get_running_loop().time() < deadline, body
            await asyncio.sleep(0.05)


async def build_plant(api: Api) -> Plant:
    org = await api.org("Plant")
    user = await api.member(org, "engineer")
    channel = (
        await api.http.post("/api/v1/channels", json={"name": "telemetry"}, headers=user)
    ).json()
    things = {}
    for name in ("press", "reader", "stranger"):
        things[name] = (
            await api.http.post("/api/v1/things", json={"name": name}, headers=user)
        ).json()
    base = f"/api/v1/channels/{channel['id']}/things"
    await api.http.put(
        f"{base}/{things['press']['id']}", json={"permissions": ["publish"]}, headers=user
    )
    await api.http.put(
        f"{base}/{things['reader']['id']}", json={"permissions": ["subscribe"]}, headers=user
    )
    return Plant(api=api, user=user, channel=channel["id"], things=things)


@asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[Api]:
    app = create_app(settings)
    async with lifespan(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://shopfloor") as http:
            yield Api(http, app.state.platform)


@pytest.fixture
def start(make_settings: Callable[..., Settings]) -> Callable[..., Any]:
    """`async with start(**settings) as api:` runs a platform on the test's data dir."""

    def start_platform(**overrides: Any) -> Any:
        return running(make_settings(**overrides))

    return start_platform


@pytest.fixture
async def plant(start: Callable[..., Any]) -> AsyncIterator[Plant]:
    async with start() as api:
        yield await build_plant(api)
