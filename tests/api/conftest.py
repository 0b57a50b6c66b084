"""A running app (real lifespan, SQLite in a tmp data dir) and signed-in clients."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from shopfloor.app import create_app
from shopfloor.core import Platform
from tests.serving import lifespan

ROOT = ("root@plant.example", "root-password")


@dataclass
class Api:
    """An API client plus shortcuts to sign in as people of given roles."""

    http: httpx.AsyncClient
    platform: Platform
    app: Any = None
    _root: dict[str, str] | None = None

    @asynccontextmanager
    async def client_from(self, address: str) -> AsyncIterator[httpx.AsyncClient]:
        """A client whose requests come from `address` (the default client's is 127.0.0.1)."""
        transport = httpx.ASGITransport(app=self.app, client=(address, 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://shopfloor") as http:
            yield http

    async def token(self, email: str, password: str) -> str:
        response = await self.http.post(
            "/api/v1/auth/token", json={"email": email, "password": password}
        )
        assert response.status_code == 200, response.text
        return str(response.json()["access_token"])

    async def headers(self, email: str, password: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {await self.token(email, password)}"}

    async def root(self) -> dict[str, str]:
        if self._root is None:
            self._root = await self.headers(*ROOT)
        return self._root

    async def org(self, name: str) -> str:
        response = await self.http.post(
            "/api/v1/orgs", json={"name": name}, headers=await self.root()
        )
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    async def member(self, org_id: str, role: str, email: str | None = None) -> dict[str, str]:
        """Create a user of `role` in `org_id` and return its auth headers."""
        email = email or f"{role}-{org_id[:8]}@plant.example"
        response = await self.http.post(
            "/api/v1/users",
            json={"email": email, "password": "password-123", "org_id": org_id, "role": role},
            headers=await self.root(),
        )
        assert response.status_code == 201, response.text
        return await self.headers(email, "password-123")


@pytest.fixture
async def api(make_settings: Callable[..., Any]) -> AsyncIterator[Api]:
    app = create_app(make_settings())
    async with lifespan(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://shopfloor") as http:
            yield Api(http, app.state.platform, manager.app)
