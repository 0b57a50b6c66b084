"""`make run` as a newcomer uses it: the ports they set, loopback only, Ctrl-C stops it,
and a second demo on the same data dir is refused with a message."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import httpx

from ..serving import free_port

ROOT = Path(__file__).resolve().parents[2]


def _listening_addresses(port: int) -> set[str]:
    """Local addresses of the TCP sockets listening on `port` (from /proc/net/tcp{,6})."""
    found: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, _, hex_port = local.rpartition(":")
            if state == "0A" and int(hex_port, 16) == port:
                found.add(address)
    return found


def _make_run(data_dir: Path, http_port: int, mqtt_port: int, log: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHOPFLOOR_")}
    env |= {"SHOPFLOOR_HTTP_PORT": str(http_port), "SHOPFLOOR_MQTT_PORT": str(mqtt_port)}
    with log.open("wb") as output:
        # Its own process group, as a job in a terminal: Ctrl-C signals the whole group.
        return subprocess.Popen(
            ["make", "--no-print-directory", "-C", str(ROOT), "run", f"DATA_DIR={data_dir}"],
            env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip


def _wait_healthy(port: int, make: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 90
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health").status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert make.poll() is None, log.read_text()
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.2)


def test_make_run_uses_the_ports_set_on_loopback_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    http_port, mqtt_port = free_port(), free_port()
    data_dir, log = tmp_path / "demo", tmp_path / "make-run.log"
    make = _make_run(data_dir, http_port, mqtt_port, log)
    try:
        _wait_healthy(http_port, make, log)
        loopback = {"0100007F", "00000000000000000000000001000000"}
        assert _listening_addresses(http_port) and _listening_addresses(http_port) <= loopback
        assert _listening_addresses(mqtt_port) and _listening_addresses(mqtt_port) <= loopback
        output = log.read_text()
        assert f"http://127.0.0.1:{http_port}" in output
        assert f"mqtt://127.0.0.1:{mqtt_port}" in output

        # A second demo on the same data dir is refused at once, saying why.
        second = subprocess.run(
            ["make", "--no-print-directory", "-C", str(ROOT), "run", f"DATA_DIR={data_dir}",
             f"HTTP_PORT={free_port()}", f"MQTT_PORT={free_port()}"],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert second.returncode != 0
        assert "in use by another running shopfloor serve" in " ".join(second.stderr.split())

        os.killpg(make.pid, signal.SIGINT)
        # make ends by the signal once the server has stopped (exit status 0 in its log).
        assert make.wait(30) in (0, -signal.SIGINT), log.read_text()
        assert "platform stopped" in log.read_text()
        assert not _listening_addresses(http_port), "the server still listens"
    finally:
        if make.poll() is None:
            os.killpg(make.pid, signal.SIGKILL)
            make.wait()


def test_a_sigint_to_make_alone_stops_the_server(tmp_path: Path) -> None:
    """Not the whole job, only make: GNU make does not pass SIGINT on; the server sees
    make stop catching it and stops by itself."""
    http_port, mqtt_port = free_port(), free_port()
    log = tmp_path / "make-run.log"
    make = _make_run(tmp_path / "demo", http_port, mqtt_port, log)
    try:
        _wait_healthy(http_port, make, log)
        make.send_signal(signal.SIGINT)
        assert make.wait(30) in (0, -signal.SIGINT, 2), log.read_text()
        assert "platform stopped" in log.read_text()
        assert not _listening_addresses(http_port), "the server still listens"
    finally:
        if make.poll() is None:
            os.killpg(make.pid, signal.SIGKILL)
            make.wait()
