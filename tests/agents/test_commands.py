"""`shopfloor agents ...` changes desired state in the database; a running server acts
on it. Real processes: the CLI and `shopfloor serve` on one data dir (SQLite)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from tests.serving import serving

from .agentkit import eventually_sync as eventually
from .test_adoption import engineer, processes_with

SETTINGS = {"SHOPFLOOR_AGENT_READY_AFTER": "0.2", "SHOPFLOOR_AGENT_RECONCILE_INTERVAL": "0.3"}


def cli(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHOPFLOOR_")}
    env |= {"SHOPFLOOR_DATA_DIR": str(data_dir),
            "COLUMNS": "200", **SETTINGS}  # fmt: skip
    return subprocess.run(
        [sys.executable, "-m", "shopfloor", "agents", *args],
        capture_output=True, text=True, env=env, timeout=60,
    )  # fmt: skip


def test_the_cli_deploys_sleeps_upgrades_and_deletes_through_a_running_server(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    marker = f"cli-agent-{os.getpid()}-{time.monotonic_ns()}"
    spec = tmp_path / "agent.yaml"
    spec.write_text(
        "name: lathe\n"
        f"command: [{sys.executable}, -c, 'import time; time.sleep(3600)', {marker}]\n"
        "version: '1'\n"
    )
    with serving(data_dir, SETTINGS, name="cli") as server:
        user = engineer(server.url)
        org = httpx.get(f"{server.url}/api/v1/users/me", headers=user).json()["org_id"]

        def state() -> dict[str, Any]:
            body: dict[str, Any] = httpx.get(
                f"{server.url}/api/v1/agents/lathe", headers=user
            ).json()
            return body

        applied = cli(data_dir, "apply", "--org", org, "--file", str(spec))
        assert applied.returncode == 0, applied.stderr
        assert "agent lathe created" in applied.stderr
        eventually(lambda: state()["status"]["state"] == "running")
        assert len(processes_with(marker)) == 1

        listed = cli(data_dir, "list", "--org", org)
        assert "lathe" in listed.stdout and "running" in listed.stdout
        shown = json.loads(cli(data_dir, "show", "--org", org, "lathe").stdout)
        assert shown["spec"]["version"] == "1" and shown["state"] == "running"

        assert cli(data_dir, "sleep", "--org", org, "lathe").returncode == 0
        eventually(lambda: state()["status"]["state"] == "sleeping")
        assert processes_with(marker) == []
        assert cli(data_dir, "wake", "--org", org, "lathe").returncode == 0
        eventually(lambda: state()["status"]["state"] == "running")

        upgraded = cli(data_dir, "upgrade", "--org", org, "lathe", "--version", "2")
        assert upgraded.returncode == 0, upgraded.stderr
        eventually(lambda: state()["status"]["version"] == "2" and state()["rollout"] is None)

        assert cli(data_dir, "restart", "--org", org, "lathe").returncode == 0
        eventually(lambda: state()["status"]["restarts"] == 1)

        missing = cli(data_dir, "show", "--org", org, "nope")
        assert missing.returncode == 1 and "agent_not_found" in missing.stdout + missing.stderr

        assert cli(data_dir, "delete", "--org", org, "lathe").returncode == 0
        eventually(lambda: httpx.get(f"{server.url}/api/v1/agents/lathe", headers=user)
                   .status_code == 404)  # fmt: skip
        assert processes_with(marker) == []
