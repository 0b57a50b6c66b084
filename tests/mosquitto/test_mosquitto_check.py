"""`check_broker_files` on configs and files made here, no broker: each problem and its fix."""

from __future__ import annotations

import os
import pwd
from pathlib import Path

import pytest
from typer.testing import CliRunner

from shopfloor.adapters.mosquitto import (
    MosquittoConfig,
    Severity,
    check_broker_files,
    read_broker_files,
    render_config,
)
from shopfloor.adapters.mosquitto.commands import mosquitto_app


@pytest.fixture
def broker_files(tmp_path: Path) -> MosquittoConfig:
    (tmp_path / "dynsec.json").write_text("{}")
    (tmp_path / "dynsec.json").chmod(0o600)
    (tmp_path / "data").mkdir()
    return MosquittoConfig(
        dynsec_plugin=tmp_path / "shopfloor_dynamic_security.so",
        dynsec_config=tmp_path / "dynsec.json",
        publisher_plugin=tmp_path / "shopfloor_publisher-0123.so",
        bind_address="127.0.0.1",
        persistence_dir=tmp_path / "data",
    )


def findings(tmp_path: Path, text: str, severity: Severity) -> list[str]:
    path = tmp_path / "mosquitto.conf"
    path.write_text(text)
    me = pwd.getpwuid(os.geteuid()).pw_name
    return [f.message for f in check_broker_files(read_broker_files(path), broker_user=me)
            if f.severity is severity]  # fmt: skip


def test_the_config_is_read_as_mosquitto_reads_it(
    tmp_path: Path, broker_files: MosquittoConfig
) -> None:
    path = tmp_path / "mosquitto.conf"
    path.write_text(render_config(broker_files) + "user broker\n")
    files = read_broker_files(path)
    assert files.plugins == (broker_files.publisher_plugin, broker_files.dynsec_plugin)
    assert files.dynsec_file == broker_files.dynsec_config
    assert (files.persistence, files.persistence_dir) == (True, broker_files.persistence_dir)
    assert files.listeners == (("1883", "127.0.0.1"),)
    assert files.user == "broker"
    assert files.bridge_username == "shopfloor-bridge"


def test_missing_files_order_and_persistence_are_problems(
    tmp_path: Path, broker_files: MosquittoConfig
) -> None:
    text = render_config(broker_files)
    # The plugins are not there yet.
    missing = findings(tmp_path, text, Severity.PROBLEM)
    assert missing == [f"plugin {broker_files.publisher_plugin} does not exist",
                       f"plugin {broker_files.dynsec_plugin} does not exist"]  # fmt: skip
    broker_files.publisher_plugin.write_bytes(b"")
    broker_files.dynsec_plugin.write_bytes(b"")
    assert findings(tmp_path, text, Severity.PROBLEM) == []

    publisher, dynsec = (f"plugin {broker_files.publisher_plugin}\n",
                         f"plugin {broker_files.dynsec_plugin}\n")  # fmt: skip
    swapped = text.replace(publisher, "@").replace(dynsec, publisher).replace("@", dynsec)
    assert findings(tmp_path, swapped, Severity.PROBLEM) == [
        "the publisher plugin must come before the dynamic-security plugin (forged wills)"
    ]
    (no_persistence,) = findings(
        tmp_path, text.replace("persistence true", "persistence false"), Severity.PROBLEM
    )
    assert no_persistence.startswith("persistence is off")
    (unset,) = findings(
        tmp_path,
        text.replace(f"persistence_location {broker_files.persistence_dir}/\n", ""),
        Severity.WARNING,
    )
    assert unset.startswith("persistence_location is not set")
    (untrusted,) = findings(
        tmp_path, text.replace("plugin_opt_bridge_username", "# "), Severity.WARNING
    )
    assert untrusted.startswith("no plugin_opt_bridge_username shopfloor-bridge right after")


def test_config_writes_the_file_and_refuses_without_a_bind_address(tmp_path: Path) -> None:
    runner = CliRunner()
    common = ["config", "--output", str(tmp_path / "mosquitto.conf"), "--plugin-dir",
              str(tmp_path / "plugin"), "--dynsec-file", str(tmp_path / "dynsec.json"),
              "--persistence-dir", str(tmp_path / "data")]  # fmt: skip
    refused = runner.invoke(mosquitto_app, common)
    assert refused.exit_code == 2 and "--bind-address" in refused.output
    written = runner.invoke(mosquitto_app, [*common, "--bind-address", "10.0.0.5"])
    assert written.exit_code == 0, written.output
    text = (tmp_path / "mosquitto.conf").read_text()
    assert "listener 1883 10.0.0.5\n" in text
    (plugin,) = (tmp_path / "plugin").glob("shopfloor_publisher-*.so")
    assert f"plugin {plugin}\n" in text and plugin.stat().st_mode & 0o777 == 0o755
