"""With NATS JetStream, a writer killed with SIGKILL mid-stream loses and duplicates nothing.

Two real processes share a data dir: one runs the API and the HTTP adapter, the other
only the writer. The test publishes over HTTP while it kills the writer and starts a
new one; every message answered 202 must be stored exactly once.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import nats
import pytest

CLI = [sys.executable, "-m", "shopfloor", "serve", "--http-host", "127.0.0.1"]
ADMIN = ("root@plant.example", "root-password")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    def __init__(self, data_dir: Path, bus_url: str, services: str) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("SHOPFLOOR_")}
        env |= {
            "SHOPFLOOR_DATA_DIR": str(data_dir),
            "SHOPFLOOR_BUS_URL": bus_url,
            "SHOPFLOOR_SERVICES": services,
            "SHOPFLOOR_ADMIN_EMAIL": ADMIN[0],
            "SHOPFLOOR_ADMIN_PASSWORD": ADMIN[1],
            "SHOPFLOOR_LOG_FORMAT": "text",
        }
        self.log = data_dir.parent / f"{services.replace(',', '-')}-{self.port}.log"
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [*CLI, "--http-port", str(self.port)], env=env, stdout=log, stderr=log
            )

    def wait_healthy(self) -> None:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{self.url}/health").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            assert self.process.poll() is None, self.log.read_text()
            assert time.monotonic() < deadline, self.log.read_text()
            time.sleep(0.1)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


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
    token = httpx.post(
        f"{base}/api/v1/auth/token", json={"email": ADMIN[0], "password": ADMIN[1]}
    ).json()["access_token"]
    root = {"Authorization": f"Bearer {token}"}
    org = httpx.post(f"{base}/api/v1/orgs", json={"name": "Plant"}, headers=root).json()["id"]
    httpx.post(
        f"{base}/api/v1/users",
        json={"email": "eng@plant.example", "password": "password-1", "org_id": org,
              "role": "engineer"},
        headers=root,
    )  # fmt: skip
    token = httpx.post(
        f"{base}/api/v1/auth/token", json={"email": "eng@plant.example", "password": "password-1"}
    ).json()["access_token"]
    user = {"Authorization": f"Bearer {token}"}
    thing = httpx.post(f"{base}/api/v1/things", json={"name": "press"}, headers=user).json()
    channel = httpx.post(f"{base}/api/v1/channels", json={"name": "t"}, headers=user).json()["id"]
    httpx.put(f"{base}/api/v1/channels/{channel}/things/{thing['id']}", headers=user)
    return channel, thing["key"], user


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
