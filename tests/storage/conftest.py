"""Fixtures: one real store per backend, each test module on its own database.

PostgreSQL (127.0.0.1:5432, or SHOPFLOOR_TEST_POSTGRES_URL) and InfluxDB (127.0.0.1:8086,
or SHOPFLOOR_TEST_INFLUXDB_HOST) must be running (`make services` starts them); a missing
service makes these tests fail, not skip.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]
import httpx
import pytest

from shopfloor.storage import TimeseriesStore, create_store

POSTGRES_ADMIN_URL = os.environ.get(
    "SHOPFLOOR_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
POSTGRES_SERVER = POSTGRES_ADMIN_URL.rsplit("/", 1)[0]
INFLUX_HOST = os.environ.get("SHOPFLOOR_TEST_INFLUXDB_HOST", "127.0.0.1:8086")
INFLUX_HTTP = f"http://{INFLUX_HOST}"
INFLUX_SERVER = f"influxdb://{INFLUX_HOST}"
BACKENDS = ("memory", "sqlite", "postgres", "influxdb")


async def _postgres_admin(statement: str) -> None:
    connection = await asyncpg.connect(POSTGRES_ADMIN_URL)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


def _influx_admin(statement: str) -> None:
    response = httpx.post(f"{INFLUX_HTTP}/query", data={"q": statement}, timeout=10)
    response.raise_for_status()
    assert "error" not in response.text, response.text


@pytest.fixture(scope="module")
def postgres_database() -> Iterator[str]:
    """A fresh PostgreSQL database for one test module, dropped afterwards."""
    name = f"sf_storage_{uuid.uuid4().hex[:12]}"
    asyncio.run(_postgres_admin(f'CREATE DATABASE "{name}"'))
    try:
        yield f"{POSTGRES_SERVER}/{name}"
    finally:
        asyncio.run(_postgres_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="module")
def influx_database() -> Iterator[str]:
    """A fresh InfluxDB database for one test module, dropped afterwards."""
    name = f"sf_storage_{uuid.uuid4().hex[:12]}"
    _influx_admin(f'CREATE DATABASE "{name}"')
    try:
        yield f"{INFLUX_SERVER}/{name}"
    finally:
        _influx_admin(f'DROP DATABASE "{name}"')


@pytest.fixture(params=BACKENDS)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "memory":
        return "memory://"
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'timeseries.db'}"
    fixture = "postgres_database" if request.param == "postgres" else "influx_database"
    url: str = request.getfixturevalue(fixture)
    return url


@pytest.fixture
async def store(store_url: str, tmp_path: Path) -> AsyncIterator[TimeseriesStore]:
    async with create_store(store_url, data_dir=tmp_path) as opened:
        yield opened


@pytest.fixture
def channel() -> str:
    """Tests of one module share a database; each works on a channel of its own."""
    return uuid.uuid4().hex
