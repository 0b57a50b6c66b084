"""The `shopfloor` command as an operator uses it (real processes, free ports)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

CLI = [sys.executable, "-m", "shopfloor"]


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHOPFLOOR_")}
    env.update({"SHOPFLOOR_DATA_DIR": str(tmp_path / "data"), "SHOPFLOOR_LOG_FORMAT": "json"})
    # port 0: the embedded MQTT broker takes a free port (1883 may belong to another broker)
    env.update({"SHOPFLOOR_MQTT_PORT": "0", "SHOPFLOOR_MQTT_HOST": "127.0.0.1"})
    env.update(extra)
    return env


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_version() -> None:
    from shopfloor import __version__

    result = subprocess.run([*CLI, "version"], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == __version__


def test_help_lists_commands() -> None:
    result = subprocess.run([*CLI, "--help"], capture_output=True, text=True, check=True)
    for command in ("serve", "users", "check-config", "version"):
        assert command in result.stdout


def test_serve_help_lists_services_and_defaults(tmp_path: Path) -> None:
    result = subprocess.run(
        [*CLI, "serve", "--help"], capture_output=True, text=True, timeout=60,
        env=_env(tmp_path, COLUMNS="200"),
    )  # fmt: skip
    text = " ".join(result.stdout.replace("│", " ").split())
    for service in ("api:", "http:", "mqtt:", "writer:"):
        assert service in text
    assert "SHOPFLOOR_HTTP_PORT; default 8000" in text
    assert " ." not in text, "a help text lost its bracketed part"


def test_taken_port_fails_fast_naming_the_option(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        started = time.monotonic()
        result = subprocess.run(
            [*CLI, "serve", "--http-host", "127.0.0.1", "--http-port", str(port)],
            capture_output=True, text=True, env=_env(tmp_path), timeout=60,
        )  # fmt: skip
    assert result.returncode == 2
    message = " ".join(result.stderr.split())
    assert f"port {port}" in message
    assert "--http-port" in message and "SHOPFLOOR_HTTP_PORT" in message
    assert time.monotonic() - started < 20


def test_invalid_settings_are_explained(tmp_path: Path) -> None:
    result = subprocess.run(
        [*CLI, "serve"], capture_output=True, text=True,
        env=_env(tmp_path, SHOPFLOOR_SERVICES="api,teleporter"), timeout=60,
    )  # fmt: skip
    assert result.returncode == 2
    assert "teleporter" in result.stderr


def test_serve_seeds_demo_and_stops_gracefully(tmp_path: Path) -> None:
    port = _free_port()
    env = _env(
        tmp_path, SHOPFLOOR_ADMIN_EMAIL="boss@demo.example", SHOPFLOOR_ADMIN_PASSWORD="demo-pass-1"
    )
    process = subprocess.Popen(
        [*CLI, "serve", "--demo", "--http-host", "127.0.0.1", "--http-port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/health").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "server did not become healthy"
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
            time.sleep(0.1)
        token = httpx.post(
            f"{base}/api/v1/auth/token",
            json={"email": "boss@demo.example", "password": "demo-pass-1"},
        ).json()["access_token"]
        things = httpx.get(f"{base}/api/v1/things", headers={"Authorization": f"Bearer {token}"})
        names = sorted(t["name"] for t in things.json()["items"])
        assert {"press-01", "oven-02"} <= set(names)
        channels = httpx.get(
            f"{base}/api/v1/channels", headers={"Authorization": f"Bearer {token}"}
        ).json()
        assert [c["name"] for c in channels["items"]] == ["telemetry"]
        channel = channels["items"][0]["id"]
        # the demo machines publish through the HTTP adapter at once
        deadline = time.monotonic() + 30
        while True:
            stored = httpx.get(
                f"{base}/api/v1/channels/{channel}/messages",
                params={"limit": 1000},
                headers={"Authorization": f"Bearer {token}"},
            ).json()
            publishers = {m["publisher"] for m in stored["messages"]}
            if len(publishers) == 3:
                break
            assert time.monotonic() < deadline, stored
            time.sleep(0.2)
        assert {"press-01:pressure", "oven-02:temperature"} <= {
            m["name"] for m in stored["messages"]
        }
        press = next(t for t in things.json()["items"] if t["name"] == "press-01")
        simulated = subprocess.run(
            [*CLI, "simulate", "--server", base, "--channel", channel,
             "--thing", f"press:press-09:{press['key']}", "--count", "2", "--interval", "0.1"],
            capture_output=True, text=True, env=env, timeout=60,
        )  # fmt: skip
        assert simulated.returncode == 0, simulated.stdout + simulated.stderr
        assert "sent 2 packs, 0 refused" in simulated.stdout
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, stderr
    assert "platform stopped" in stderr
    # the demo printout names each thing with its id and full key
    for thing in things.json()["items"]:
        assert thing["id"] in stdout and thing["key"] in stdout
    assert f"http://127.0.0.1:{port}" in stdout
    # and where its dashboard of live telemetry is (seeded with the plant)
    assert f"live telemetry of the demo: http://127.0.0.1:{port}/console/dashboards/" in stdout
    assert "demo-pass-1" not in stderr  # logs never hold the password


def test_create_admin_and_check_config(tmp_path: Path) -> None:
    env = _env(tmp_path, SHOPFLOOR_NEW_ADMIN_PASSWORD="s3cret-admin-pw")
    made = subprocess.run(
        [*CLI, "users", "create-admin", "--email", "ops@plant.example"],
        capture_output=True, text=True, env=env, timeout=60,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    assert "created platform admin ops@plant.example" in made.stdout
    again = subprocess.run(
        [*CLI, "users", "create-admin", "--email", "ops@plant.example"],
        capture_output=True, text=True, env=env, timeout=60,
    )  # fmt: skip
    assert again.returncode == 1
    assert "--reset-password" in again.stderr
    checked = subprocess.run(
        [*CLI, "check-config"], capture_output=True, text=True, env=env, timeout=60
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "configuration ok" in checked.stdout
    bad = subprocess.run(
        [*CLI, "check-config"], capture_output=True, text=True, timeout=60,
        env=_env(tmp_path, SHOPFLOOR_DATABASE_URL="postgresql://nobody@127.0.0.1:1/none"),
    )  # fmt: skip
    assert bad.returncode == 1
    assert "platform database postgresql://nobody@127.0.0.1:1/none: unreachable" in bad.stderr


def test_the_files_an_admin_command_creates_are_private(tmp_path: Path) -> None:
    env = _env(tmp_path, SHOPFLOOR_NEW_ADMIN_PASSWORD="a-long-password")
    made = subprocess.run(
        [*CLI, "users", "create-admin", "--email", "ops@plant.example"],
        capture_output=True, text=True, env=env, timeout=60,
    )  # fmt: skip
    assert made.returncode == 0, made.stdout + made.stderr

    data_dir = tmp_path / "data"
    modes = {path.name: path.stat().st_mode & 0o777 for path in data_dir.rglob("*")}

    assert "registry.db" in modes, modes  # the first to open the registry creates it
    assert {name: mode for name, mode in modes.items() if mode & 0o077} == {}


def test_mosquitto_pub_to_the_embedded_broker_is_stored(tmp_path: Path) -> None:
    http_port, mqtt_port = _free_port(), _free_port()
    env = _env(tmp_path, SHOPFLOOR_ADMIN_EMAIL="boss@demo.example",
               SHOPFLOOR_ADMIN_PASSWORD="demo-pass-1")  # fmt: skip
    process = subprocess.Popen(
        [*CLI, "serve", "--demo", "--http-host", "127.0.0.1", "--http-port", str(http_port),
         "--mqtt-port", str(mqtt_port)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    base = f"http://127.0.0.1:{http_port}"
    try:
        _wait_healthy(base, process)
        token = httpx.post(
            f"{base}/api/v1/auth/token",
            json={"email": "boss@demo.example", "password": "demo-pass-1"},
        ).json()["access_token"]
        auth = {"Authorization": f"Bearer {token}"}
        things = httpx.get(f"{base}/api/v1/things", headers=auth).json()["items"]
        oven = next(t for t in things if t["name"] == "oven-02")
        channel = httpx.get(f"{base}/api/v1/channels", headers=auth).json()["items"][0]["id"]
        published = subprocess.run(
            ["mosquitto_pub", "-h", "127.0.0.1", "-p", str(mqtt_port), "-q", "1",
             "-u", oven["id"], "-P", oven["key"], "-t", f"channels/{channel}/messages/door",
             "-m", '[{"n": "door-open", "vb": true}]'],
            capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        assert published.returncode == 0, published.stderr
        deadline = time.monotonic() + 30
        while True:
            stored = httpx.get(
                f"{base}/api/v1/channels/{channel}/messages",
                params={"subtopic": "door"},
                headers=auth,
            ).json()
            if stored["total"]:
                break
            assert time.monotonic() < deadline, stored
            time.sleep(0.1)
        message = stored["messages"][0]
        assert (message["name"], message["bool_value"]) == ("door-open", True)
        assert (message["publisher"], message["protocol"]) == (oven["id"], "mqtt")
        refused = subprocess.run(
            ["mosquitto_pub", "-h", "127.0.0.1", "-p", str(mqtt_port), "-q", "1",
             "-u", oven["id"], "-P", "wrong-key", "-t", f"channels/{channel}/messages",
             "-m", "[]"],
            capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        assert refused.returncode != 0
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()


def test_taken_mqtt_port_fails_fast(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        result = subprocess.run(
            [*CLI, "serve", "--http-port", str(_free_port()), "--mqtt-port", str(port)],
            capture_output=True, text=True, env=_env(tmp_path), timeout=60,
        )  # fmt: skip
    assert result.returncode == 2
    message = " ".join(result.stderr.split())
    assert f"port {port}" in message and "--mqtt-port" in message


def _wait_healthy(base: str, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{base}/health").status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, "server did not become healthy"
        assert process.poll() is None, process.stderr.read() if process.stderr else ""
        time.sleep(0.1)
