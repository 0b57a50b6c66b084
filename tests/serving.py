"""Real servers for tests: `shopfloor serve` processes, or an app served by uvicorn in the
test's loop; free ports, waits with deadlines, stopped in `finally`."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import httpx
import uvicorn
from asgi_lifespan import LifespanManager

ADMIN = ("root@plant.example", "root-password")
# Argon2id at its least cost: the suite makes thousands of accounts and sign-ins, each
# 0.1 s at the production cost. tests/auth/test_passwords.py checks the settings apply.
CHEAP_PASSWORDS = {"password_time_cost": 1, "password_memory_kib": 64}


def lifespan(app: object) -> LifespanManager:
    """The app started and stopped in the test's loop, as `serve` would.

    asgi-lifespan gives startup 5 s; a platform running migrations, its broker and its
    services on a loaded two-core machine can take longer, so both ways get 60 s.
    """
    return LifespanManager(app, startup_timeout=60, shutdown_timeout=60)  # type: ignore[arg-type]


def stop_process(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, and SIGKILL if it has not ended within 10 s."""
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServeProcess:
    """`shopfloor serve` with the given `SHOPFLOOR_*` settings, its output in a log file."""

    def __init__(
        self, data_dir: Path, settings: Mapping[str, str], *, name: str, port: int | None = None
    ) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("SHOPFLOOR_")}
        env |= {
            "SHOPFLOOR_DATA_DIR": str(data_dir),
            "SHOPFLOOR_ADMIN_EMAIL": ADMIN[0],
            "SHOPFLOOR_ADMIN_PASSWORD": ADMIN[1],
            "SHOPFLOOR_LOG_FORMAT": "text",
            "SHOPFLOOR_MQTT_PORT": "0",
            "SHOPFLOOR_MQTTS_PORT": "0",
            "SHOPFLOOR_MQTT_HOST": "127.0.0.1",
            **{f"SHOPFLOOR_{k.upper()}": str(v) for k, v in CHEAP_PASSWORDS.items()},
            **settings,
        }
        self.log = data_dir.parent / f"{name}-{self.port}.log"
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "shopfloor", "serve", "--http-host", "127.0.0.1",
                 "--http-port", str(self.port)],
                env=env, stdout=log, stderr=log,
            )  # fmt: skip

    def wait_healthy(self, timeout: float = 60) -> dict[str, object]:
        deadline = time.monotonic() + timeout
        while True:
            try:
                response = httpx.get(f"{self.url}/health")
                if response.status_code == 200:
                    body: dict[str, object] = response.json()
                    return body
            except httpx.TransportError:
                pass
            assert self.process.poll() is None, self.log.read_text()
            assert time.monotonic() < deadline, self.log.read_text()
            time.sleep(0.1)

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


@contextmanager
def serving(data_dir: Path, settings: Mapping[str, str], *, name: str) -> Iterator[ServeProcess]:
    """A healthy `shopfloor serve`, stopped on exit."""
    server = ServeProcess(data_dir, settings, name=name)
    try:
        server.wait_healthy()
        yield server
    finally:
        server.stop()


def admin_headers(base: str) -> dict[str, str]:
    token = httpx.post(
        f"{base}/api/v1/auth/token", json={"email": ADMIN[0], "password": ADMIN[1]}
    ).json()["access_token"]
    return {"Authorization": f"Bearer {token}"}


def plant(base: str) -> tuple[str, dict[str, object], dict[str, str]]:
    """An organisation with an engineer, a channel and a connected thing: (channel, thing, user)."""
    root = admin_headers(base)
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
    return channel, thing, user


@asynccontextmanager
async def served_app(config: uvicorn.Config, *, port: int = 0) -> AsyncIterator[int]:
    """Serve `config` (an app and its settings) on `port` (0: a free one) in this loop;
    yields the port."""
    sock = socket.socket()
    # A server started again on its port must not wait for the last one's TIME_WAITs.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(("127.0.0.1", port))
    except OSError:
        sock.close()
        raise
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        deadline = asyncio.get_running_loop().time() + 30
        while not server.started:
            assert asyncio.get_running_loop().time() < deadline and not task.done()
            await asyncio.sleep(0.02)  # uvicorn offers no 'started' event to wait on
        yield int(sock.getsockname()[1])
    finally:
        server.should_exit = True
        await task
        sock.close()
