"""Fixtures shared by the whole suite: real databases, settings, a running app."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from tests.serving import CHEAP_PASSWORDS

POSTGRES_ADMIN_URL = os.environ.get(
    "SHOPFLOOR_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)


@asynccontextmanager
async def fresh_postgres_database() -> AsyncIterator[str]:
    """A new, empty PostgreSQL database, dropped afterwards.

    PostgreSQL must be running (`make test` starts it): this fails, never skips.
    """
    name = f"sf_test_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(POSTGRES_ADMIN_URL)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    base = POSTGRES_ADMIN_URL.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        admin = await asyncpg.connect(POSTGRES_ADMIN_URL)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


@pytest.fixture
async def postgres_url() -> AsyncIterator[str]:
    async with fresh_postgres_database() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """The registry contract runs once per database backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'registry.db'}"
        return
    async with fresh_postgres_database() as url:
        yield url


@pytest.fixture
def make_settings(tmp_path: Path) -> Callable[..., Any]:
    from shopfloor.settings import Settings

    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "data_dir": tmp_path / "data",
            "admin_email": "root@plant.example",
            "admin_password": "root-password",
            "log_format": "text",
            "http_host": "127.0.0.1",
            "mqtt_host": "127.0.0.1",
            "mqtt_port": 0,  # a free port: 1883 may belong to another broker
            "mqtts_port": 0,  # likewise 8883, when a TLS listener runs
            **CHEAP_PASSWORDS,
        }
        values.update(overrides)
        return Settings(**values)

    return make
