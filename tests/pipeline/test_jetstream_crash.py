"""With NATS JetStream, a writer killed with SIGKILL mid-stream loses and duplicates nothing.

Two real processes share a data dir: one runs the API and the HTTP adapter, the other
only the writer. The test publishes over HTTP while it kills the writer and starts a
new one; every message answered 202 must be stored exactly once.
"""

from __future__ import annotations

import asyncio
import json
import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import nats
import pytest

from ..serving import ServeProcess, plant


class Server(ServeProcess):
    def __init__(self, data_dir: Path, bus_url: str, services: str) -> None:
        settings = {"SHOPFLOOR_BUS_URL": bus_url, "SHOPFLOOR_SERVICES": services}
        super().__init__(data_dir, settings, name=services.replace(",", "-"))


@pytest.fixture
def bus_url() -> Iterator[str]:
    name = f"T{uuid.uuid4().hex[:10]}"
    yield f"nats://127.0.0.1:4222?stream={name}&prefix={name.lower()}&ack_wait=2"

    async def delete() -> None:
        client = await nats.connect("nats://127.0.0.1:4222")
        try:
            await client.jetstream().delete_stream(name)
        finally:
            await client.close()

    asyncio.run(delete())


def test_writer_killed_mid_stream_loses_and_duplicates_nothing(
    tmp_path: Path, bus_url: str
) -> None:
    data = tmp_path / "data"
    api = Server(data, bus_url, "api,http")
    api.wait_healthy()
    writer = Server(data, bus_url, "writer")
    servers = [api, writer]
    try:
        writer.wait_healthy()
        channel, key, user = _plant(api.url)
        total = 3000
        accepted = asyncio.run(_publish(api.url, channel, key, total, on_third=writer.process.kill))
        assert writer.process.wait(10) == -signal.SIGKILL
        replacement = Server(data, bus_url, "writer")
        servers.append(replacement)
        replacement.wait_healthy()
        values = _stored_values(api.url, channel, user, expected=len(accepted))
        assert sorted(values) == sorted(accepted), "every accepted message stored exactly once"
    finally:
        for server in servers:
            server.stop()


def _plant(base: str) -> tuple[str, str, dict[str, str]]:
    channel, thing, user = plant(base)
    return channel, str(thing["key"]), user


async def _publish(
    base: str, channel: str, key: str, total: int, *, on_third: object
) -> list[float]:
    accepted: list[float] = []
    limits = httpx.Limits(max_connections=8)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as http:
        queue: asyncio.Queue[int] = asyncio.Queue()
        for i in range(total):
            queue.put_nowait(i)

        async def worker() -> None:
            while not queue.empty():
                i = queue.get_nowait()
                response = await http.post(
                    f"/http/channels/{channel}/messages",
                    content=json.dumps([{"n": "seq", "v": i}]),
                    headers={"Authorization": f"Thing {key}",
                             "Content-Type": "application/senml+json"},
                )  # fmt: skip
                if response.status_code == 202:
                    accepted.append(float(i))
                if i == total // 3:
                    assert callable(on_third)
                    on_third()

        await asyncio.gather(*(worker() for _ in range(8)))
    return accepted


def _stored_values(base: str, channel: str, user: dict[str, str], *, expected: int) -> list[float]:
    deadline = time.monotonic() + 90
    while True:
        first = httpx.get(
            f"{base}/api/v1/channels/{channel}/messages", params={"limit": 1}, headers=user
        ).json()
        if first["total"] >= expected or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    values: list[float] = []
    for offset in range(0, first["total"], 1000):
        page = httpx.get(
            f"{base}/api/v1/channels/{channel}/messages",
            params={"limit": 1000, "offset": offset, "dir": "asc"},
            headers=user,
        ).json()
        values.extend(m["value"] for m in page["messages"])
    return values
