"""What the agents tests share."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from shopfloor.agents.capability import AgentsService
from shopfloor.app import create_app
from shopfloor.core import Platform


async def eventually(check: Callable[[], Awaitable[Any]], *, seconds: float = 30) -> Any:
    """`check()`'s first truthy answer, polled; fails after `seconds`."""
    deadline = time.monotonic() + seconds
    while True:
        result = await check()
        if result:
            return result
        assert time.monotonic() < deadline, f"not within {seconds} s: last {result!r}"
        await asyncio.sleep(0.05)


def eventually_sync(check: Callable[[], Any], *, seconds: float = 30) -> Any:
    """`eventually` for a test that blocks (real servers in processes of their own)."""
    deadline = time.monotonic() + seconds
    while True:
        result = check()
        if result:
            return result
        assert time.monotonic() < deadline, f"not within {seconds} s: last {result!r}"
        time.sleep(0.05)


async def remove_all_agents(platform: Platform) -> None:
    """Agents outlive the platform by design: a test ends every one it started. Deleted
    through the reconciler (which would start again an agent whose process alone was
    removed), then whatever the runtime still has."""
    service = platform.get(AgentsService)
    for record in await service.agents.store.all():
        await service.agents.delete(record.org_id, record.name, wait=30)
    for key in await service.runtime.observe():
        await service.runtime.remove(key)


@asynccontextmanager
async def served_platform(make_settings: Callable[..., Any], **settings: Any) -> AsyncIterator[str]:
    """A whole platform served by uvicorn on a free port, for agent processes to reach
    (its HTTP adapter is `agent_http_url`); yields the base URL. Every agent it started is
    removed before it stops."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    base = f"http://127.0.0.1:{int(sock.getsockname()[1])}"
    values = {
        "agent_ready_after": 0.2, "agent_reconcile_interval": 0.3, "agent_grace_period": 5,
        "agent_http_url": base, "agent_platform_url": base, **settings,
    }  # fmt: skip
    app = create_app(make_settings(**values))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            assert not task.done(), "the server ended"
            assert time.monotonic() < deadline, "the server did not start"
            await asyncio.sleep(0.05)  # uvicorn offers no 'started' event to wait on
        try:
            yield base
        finally:
            await remove_all_agents(app.state.platform)
    finally:
        server.should_exit = True
        await task
        sock.close()


async def token(http: httpx.AsyncClient, email: str, password: str) -> dict[str, str]:
    answer = await http.post("/api/v1/auth/token", json={"email": email, "password": password})
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


async def engineer_of_new_org(
    http: httpx.AsyncClient, name: str = "Plant"
) -> tuple[str, dict[str, str]]:
    """A new organisation (as the served platform's root) and an engineer's headers."""
    root = await token(http, "root@plant.example", "root-password")
    org = (await http.post("/api/v1/orgs", json={"name": name}, headers=root)).json()
    email = f"eng@{name.lower()}.example"
    user = {"email": email, "password": "password-1", "org_id": org["id"], "role": "engineer"}
    assert (await http.post("/api/v1/users", json=user, headers=root)).status_code == 201
    return org["id"], await token(http, email, "password-1")


async def agent_files(
    http: httpx.AsyncClient, auth: dict[str, str], org_id: str, name: str, folder: Path
) -> Path:
    """The files of an agent `name` run by the test itself, its certificate issued by
    the platform's certificates API: `folder/name` with cert.pem, key.pem, ca.pem."""
    issued = await http.post(
        "/api/v1/certs", json={"entity_type": "agent", "entity_id": f"{org_id}/{name}"},
        headers=auth,
    )  # fmt: skip
    assert issued.status_code == 201, issued.text
    files = folder / name
    files.mkdir()
    body = issued.json()
    for file, field in (("cert.pem", "cert_pem"), ("key.pem", "key_pem"), ("ca.pem", "ca_pem")):
        (files / file).write_text(body[field])
    return files
