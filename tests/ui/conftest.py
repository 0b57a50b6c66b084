"""A platform with the console (and the API, dashboards, the HTTP adapter and the
writer, so that telemetry reaches the overview and the dashboards; or, for the admin
pages, the CA, bootstrap and provisioning) on a real uvicorn server (127.0.0.1, a free
port) and an organisation with an admin (the first platform admin, made a member) and a
viewer; Debian's chromium driven by Playwright, every request it makes recorded."""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import uvicorn
from playwright.async_api import async_playwright

from shopfloor.app import create_app
from shopfloor.auth import hash_password
from shopfloor.auth.capability import IdentityService
from shopfloor.core import Platform
from shopfloor.registry import Registry, Role
from shopfloor.settings import Settings
from shopfloor.storage import Query
from shopfloor.storage.capability import TimeseriesService

from ..serving import ADMIN, lifespan, served_app

CHROMIUM = "/usr/bin/chromium"
# Playwright's own browser download does not work here (and is never wanted): Debian's.
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
VIEWER = ("viewer@plant.example", "viewer-password")


@dataclass
class Plant:
    url: str
    platform: Platform
    org_id: str

    @property
    def registry(self) -> Registry:
        return self.platform.get(IdentityService).registry


async def publish_stored(plant: Plant, channel_id: str, key: str, records: list[Any]) -> None:
    """`records` published over HTTP with a thing's key, once the writer stored them all."""
    async with httpx.AsyncClient(base_url=plant.url) as http:
        sent = await http.post(
            f"/http/channels/{channel_id}/messages", json=records,
            headers={"Authorization": f"Thing {key}", "Content-Type": "application/senml+json"},
        )  # fmt: skip
        assert sent.status_code == 202
    store = plant.platform.get(TimeseriesService).store
    deadline = time.monotonic() + 10
    while (await store.query(Query(channel=channel_id, limit=1))).total < len(records):
        assert time.monotonic() < deadline, "the writer stored the records"
        await asyncio.sleep(0.05)


@asynccontextmanager
async def serve_plant(settings: Settings) -> AsyncIterator[Plant]:
    """The platform of `settings` served, with the organisation, its admin and viewer."""
    app = create_app(settings)
    async with lifespan(app) as manager:
        platform: Platform = app.state.platform
        registry = platform.get(IdentityService).registry
        org = await registry.create_org("Plant")
        admin = await registry.find_user_by_email(ADMIN[0])
        assert admin is not None
        await registry.update_user(admin.id, org_id=org.id, role=Role.ADMIN)
        await registry.create_user(
            email=VIEWER[0], password_hash=hash_password(VIEWER[1]), org_id=org.id,
            role=Role.VIEWER,
        )  # fmt: skip
        config = uvicorn.Config(
            manager.app, lifespan="off", log_level="warning", timeout_graceful_shutdown=1
        )
        async with served_app(config) as port:
            yield Plant(url=f"http://127.0.0.1:{port}", platform=platform, org_id=org.id)


@pytest.fixture
async def plant(make_settings: Callable[..., Any]) -> AsyncIterator[Plant]:
    async with serve_plant(make_settings(services="api,console,dashboards,http,writer")) as served:
        yield served


@pytest.fixture
async def admin_plant(make_settings: Callable[..., Any]) -> AsyncIterator[Plant]:
    """The console with the certificate authority, bootstrap and provisioning."""
    async with serve_plant(make_settings(services="api,console,provision")) as served:
        yield served


@dataclass
class Browser:
    """A page of a fresh browser context, and every URL it asked for."""

    page: Any
    requests: list[str] = field(default_factory=list)


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    if shutil.which(CHROMIUM) is None:
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs it (scripts/ensure-chromium.sh)")
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            context = await chromium.new_context()
            page = await context.new_page()
            seen = Browser(page=page)
            page.on("request", lambda request: seen.requests.append(request.url))
            page.on("dialog", lambda dialog: dialog.accept())
            yield seen
        finally:
            await chromium.close()
