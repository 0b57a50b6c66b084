"""The platform killed outright (SIGKILL) and started again adopts its agents: the same
processes, none duplicated, none lost. Real `shopfloor serve` processes."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from tests.serving import ServeProcess, admin_headers

from .agentkit import eventually_sync as eventually

SETTINGS = {
    "SHOPFLOOR_AGENT_READY_AFTER": "0.2",
    "SHOPFLOOR_AGENT_RECONCILE_INTERVAL": "0.3",
    "SHOPFLOOR_AGENT_GRACE_PERIOD": "3",
}


def processes_with(marker: str) -> list[int]:
    """Pids whose command line holds `marker` (zombies aside)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            if marker.encode() in (entry / "cmdline").read_bytes():
                state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
                if state != "Z":
                    found.append(int(entry.name))
    return sorted(found)


def test_a_platform_killed_with_sigkill_adopts_its_agents(tmp_path: Path) -> None:
    marker = f"agent-{uuid.uuid4().hex}"
    program = "import sys, time\nwhile True:\n    time.sleep(3600)"
    data_dir = tmp_path / "data"
    first = ServeProcess(data_dir, SETTINGS, name="first")
    second: ServeProcess | None = None
    try:
        first.wait_healthy()
        user = engineer(first.url)
        names = [f"cell-{n}" for n in range(3)]
        for name in names:
            spec = {"name": name, "command": [sys.executable, "-c", program, marker, name],
                    "restart_policy": "always"}  # fmt: skip
            created = httpx.post(f"{first.url}/api/v1/agents", json=spec, headers=user)
            assert created.status_code == 201, created.text

        def all_running(server: ServeProcess) -> list[dict[str, Any]] | None:
            page = httpx.get(f"{server.url}/api/v1/agents", headers=user).json()
            items: list[dict[str, Any]] = page["items"]
            running = [a for a in items if a["status"]["state"] == "running"]
            return items if len(running) == len(names) else None

        eventually(lambda: all_running(first))
        before = processes_with(marker)
        assert len(before) == len(names)

        first.process.send_signal(signal.SIGKILL)
        first.process.wait()
        assert processes_with(marker) == before  # agents outlive the platform

        # On the same port, as a plant's restart is: the agents are told the API's URL.
        second = ServeProcess(data_dir, SETTINGS, name="second", port=first.port)
        second.wait_healthy()
        user = sign_in(second.url)
        items = eventually(lambda: all_running(second))
        time.sleep(1.0)  # a few reconcile passes: nothing may start twice
        assert processes_with(marker) == before
        assert all(a["status"]["restarts"] == 0 for a in items)

        for name in names:
            answer = httpx.delete(f"{second.url}/api/v1/agents/{name}", headers=user)
            assert answer.status_code == 204, answer.text
        assert processes_with(marker) == []
    finally:
        for server in (first, second):
            if server is not None:
                server.stop()
        for pid in processes_with(marker):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)


def engineer(base: str) -> dict[str, str]:
    """An engineer of a new organisation, signed in."""
    root = admin_headers(base)
    org = httpx.post(f"{base}/api/v1/orgs", json={"name": "P"}, headers=root).json()["id"]
    user = {"email": "eng@plant.example", "password": "password-1", "org_id": org,
            "role": "engineer"}  # fmt: skip
    assert httpx.post(f"{base}/api/v1/users", json=user, headers=root).status_code == 201
    return sign_in(base)


def sign_in(base: str) -> dict[str, str]:
    login = {"email": "eng@plant.example", "password": "password-1"}
    token = httpx.post(f"{base}/api/v1/auth/token", json=login).json()["access_token"]
    return {"Authorization": f"Bearer {token}"}
