"""`shopfloor check-config` masks every secret and touches nothing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def _tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def test_check_config_shows_no_secret_and_creates_nothing(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHOPFLOOR_")}
    env |= {
        "SHOPFLOOR_DATA_DIR": str(tmp_path / "data"),
        "SHOPFLOOR_DATABASE_URL": "postgresql://u:secret@host/db",
        "SHOPFLOOR_BUS_URL": "nats://bus:secret@127.0.0.1:1",
        "SHOPFLOOR_TIMESERIES_URL": "influxdb://writer:secret@127.0.0.1:1/plant",
        "SHOPFLOOR_ADMIN_EMAIL": "root@plant.local",
        "SHOPFLOOR_ADMIN_PASSWORD": "secret-admin-password",
        "SHOPFLOOR_MQTT_BROKER_URL": "mqtt://admin:secret@127.0.0.1:1",
        "SHOPFLOOR_MQTT_BRIDGE_PASSWORD": "secret-bridge-password",
        "COLUMNS": "60",  # values must not be cut at the terminal's width
    }
    before = _tree(tmp_path)
    result = subprocess.run(
        [sys.executable, "-m", "shopfloor", "check-config"],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60,
    )  # fmt: skip
    shown = result.stdout + result.stderr
    assert "secret" not in shown
    assert "SHOPFLOOR_DATABASE_URL=postgresql://u:***@host/db" in result.stdout
    assert "SHOPFLOOR_TIMESERIES_URL=influxdb://writer:***@127.0.0.1:1/plant" in result.stdout
    assert "SHOPFLOOR_ADMIN_PASSWORD=[set]" in result.stdout
    assert "SHOPFLOOR_ADMIN_EMAIL=root@plant.local" in result.stdout
    # The database cannot be reached from here: said so, and the exit status tells.
    assert result.returncode == 1
    assert "platform database postgresql://u:***@host/db: unreachable" in result.stderr
    assert _tree(tmp_path) == before, "check-config created files"


def test_check_config_on_a_fresh_data_dir_is_ok_and_leaves_it_absent(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHOPFLOOR_")}
    env |= {"SHOPFLOOR_DATA_DIR": str(tmp_path / "data")}
    result = subprocess.run(
        [sys.executable, "-m", "shopfloor", "check-config"],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "configuration ok" in result.stdout
    assert not (tmp_path / "data").exists()
