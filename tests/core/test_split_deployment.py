"""Two `shopfloor serve` processes on NATS JetStream and PostgreSQL: a change made through
one is known to the other at once, through the platform events on the bus.

Each process has its own data dir, as on two hosts; the second gets a copy of the
first one's `secrets/` (thing-key secret, token signing key), as docs/settings.md
tells operators to do.
"""

from __future__ import annotations

import asyncio
import shutil
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import nats
import pytest

from ..serving import ServeProcess, plant, serving


@pytest.fixture
async def bus_url() -> AsyncIterator[str]:
    name = f"T{uuid.uuid4().hex[:10]}"
    yield f"nats://127.0.0.1:4222?stream={name}&prefix={name.lower()}"
    client = await nats.connect("nats://127.0.0.1:4222")
    try:
        await client.jetstream().delete_stream(name)
    finally:
        await client.close()


def _publish(server: ServeProcess, channel: str, key: str) -> int:
    response = httpx.post(
        f"{server.url}/http/channels/{channel}/messages",
        content=b'[{"n": "pressure", "v": 1}]',
        headers={"Authorization": f"Thing {key}", "Content-Type": "application/senml+json"},
    )
    return response.status_code


async def test_a_key_rotated_through_one_process_is_refused_by_the_other_within_a_second(
    tmp_path: Path, bus_url: str, postgres_url: str
) -> None:
    await asyncio.to_thread(_rotate_and_delete, tmp_path, bus_url, postgres_url)


def _rotate_and_delete(tmp_path: Path, bus_url: str, postgres_url: str) -> None:
    shared = {"SHOPFLOOR_BUS_URL": bus_url, "SHOPFLOOR_DATABASE_URL": postgres_url}
    api_dir, edge_dir = tmp_path / "api" / "data", tmp_path / "edge" / "data"
    api_dir.parent.mkdir()
    edge_dir.parent.mkdir()
    with serving(api_dir, {**shared, "SHOPFLOOR_SERVICES": "api,http"}, name="api") as api:
        shutil.copytree(api_dir / "secrets", edge_dir / "secrets")
        with serving(edge_dir, {**shared, "SHOPFLOOR_SERVICES": "http"}, name="edge") as edge:
            channel, thing, user = plant(api.url)
            old_key = str(thing["key"])
            # The edge process now holds the key in its credential cache.
            assert _publish(edge, channel, old_key) == 202
            assert _publish(edge, channel, old_key) == 202

            rotated = httpx.post(f"{api.url}/api/v1/things/{thing['id']}/key", headers=user)
            assert rotated.status_code == 200
            changed = time.monotonic()
            while _publish(edge, channel, old_key) != 401:
                assert time.monotonic() - changed < 1.0, "the edge still takes the old key"
            refused_after = time.monotonic() - changed
            assert _publish(edge, channel, rotated.json()["key"]) == 202

            # A thing deleted through the API is refused by the edge too.
            deleted = httpx.delete(f"{api.url}/api/v1/things/{thing['id']}", headers=user)
            assert deleted.status_code == 204
            changed = time.monotonic()
            while _publish(edge, channel, rotated.json()["key"]) != 401:
                assert time.monotonic() - changed < 1.0, "the edge still takes a deleted thing"
    assert refused_after < 1.0
