"""Flows in a real `shopfloor serve` process: telemetry over MQTT in (Debian's
`mosquitto_pub`, a thing's credentials), the example flow of `examples/flows/`, its
derived value read back through the readers API; and a platform killed (SIGKILL) in the
middle of a run, which goes on at its task boundary when it starts again."""

from __future__ import annotations

import contextlib
import json
import signal
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

import httpx

from tests.agents.agentkit import eventually_sync
from tests.serving import ServeProcess, free_port, plant

EXAMPLE = Path(__file__).parents[2] / "examples" / "flows" / "line-3-temperature.json"


def command(base: str, user: dict[str, str], name: str, flow_id: str) -> dict[str, Any]:
    answer = httpx.patch(
        f"{base}/flows/commands", json={"command": name, "flow_ids": [flow_id]}, headers=user
    )
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()["results"][0]
    assert result["ok"], result
    return result


def readings(base: str, user: dict[str, str], channel: str, name: str) -> list[float]:
    answer = httpx.get(
        f"{base}/api/v1/channels/{channel}/messages",
        params={"limit": 1000, "name": name}, headers=user,
    )  # fmt: skip
    assert answer.status_code == 200, answer.text
    return sorted(m["value"] for m in answer.json()["messages"])


def mosquitto_pub(port: int, thing: dict[str, Any], topic: str, body: dict[str, Any]) -> None:
    subprocess.run(
        ["mosquitto_pub", "-h", "127.0.0.1", "-p", str(port), "-q", "1", "-i", "oven",
         "-u", str(thing["id"]), "-P", str(thing["key"]), "-t", topic, "-m", json.dumps(body)],
        check=True, timeout=30, capture_output=True,
    )  # fmt: skip


def test_telemetry_over_mqtt_becomes_a_derived_value_in_the_readers_api(tmp_path: Path) -> None:
    port = free_port()
    server = ServeProcess(tmp_path / "data", {"SHOPFLOOR_MQTT_PORT": str(port)}, name="flows")
    try:
        server.wait_healthy()
        base = server.url
        oven, thing, user = plant(base)
        derived = httpx.post(f"{base}/api/v1/channels", json={"name": "derived"}, headers=user)
        derived_id = derived.json()["id"]
        text = EXAMPLE.read_text().replace("OVEN_CHANNEL_ID", oven)
        doc = json.loads(text.replace("DERIVED_CHANNEL_ID", derived_id))
        created = httpx.post(f"{base}/flows", json=doc, headers=user)
        assert created.status_code == 201, created.text
        command(base, user, "start", doc["id"])

        topic = f"channels/{oven}/messages/temperature"
        mosquitto_pub(port, thing, topic, {"temperature": 70})  # below the limit: nothing
        # The trigger subscribes in a task of its own: readings go out until one is seen.
        # Whole numbers: JSON has them as integers, which the flow's CEL converts.
        sent: list[int] = []

        def derived_seen() -> bool:
            sent.append(90 + len(sent))
            mosquitto_pub(port, thing, topic, {"temperature": sent[-1]})
            return bool(readings(base, user, derived_id, "fahrenheit"))

        eventually_sync(derived_seen, seconds=30)
        # Then a repeat (only_on_change: nothing) and one more, each through MQTT.
        mosquitto_pub(port, thing, topic, {"temperature": sent[-1]})
        mosquitto_pub(port, thing, topic, {"temperature": 150.5})

        def derived_of_150() -> list[float] | None:
            found = readings(base, user, derived_id, "fahrenheit")
            return found if 302.9 in found else None

        found = eventually_sync(derived_of_150, seconds=30)
        # Each above the limit at most once (the first few may have come before the
        # subscription), none for 70, none for the repeat.
        expected = [t * 9 / 5 + 32 for t in sent]
        assert 302.9 in found and set(found) - {302.9} <= set(expected), (found, expected)
        assert len(found) == len(set(found)), found
        assert readings(base, user, derived_id, "limit") == [80.0] * len(found)
        # The telemetry itself is stored too, published as the oven.
        assert 70.0 in readings(base, user, oven, "temperature")
        status = httpx.get(f"{base}/flows/{doc['id']}/status", headers=user).json()
        assert status["state"] == "running" and status["counters"]["failed"] == 0, status
    finally:
        server.stop()


def sign_in(base: str) -> dict[str, str]:
    """The engineer `plant` made, signed in anew."""
    answer = httpx.post(
        f"{base}/api/v1/auth/token", json={"email": "eng@plant.example", "password": "password-1"}
    )
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


def boundary_on_disk(data_dir: Path, flow_id: str) -> dict[str, Any] | None:
    """The boundary the state database holds for the flow (read as another process)."""
    path = data_dir / "flows" / "state.db"
    if not path.exists():
        return None
    with contextlib.closing(sqlite3.connect(path, timeout=10)) as db:
        row = db.execute("SELECT data FROM flow_states WHERE flow_id = ?", (flow_id,)).fetchone()
    boundary: dict[str, Any] | None = json.loads(row[0])["boundary"] if row else None
    return boundary


def test_a_killed_platform_resumes_a_run_at_its_task_boundary(tmp_path: Path) -> None:
    data = tmp_path / "data"
    settings = {"SHOPFLOOR_SERVICES": "api,http,writer,flows"}
    server = ServeProcess(data, settings, name="flows-killed")
    try:
        server.wait_healthy()
        base = server.url
        channel, _thing, user = plant(base)
        doc = {
            "id": "batch", "name": "a batch: count, wait, report",
            "tasks": [
                {"id": "count", "type": "set_variable",
                 "parameters": {"name": "n", "value": "variables.n + 1"}, "next": ["wait"]},
                {"id": "wait", "type": "delay", "parameters": {"seconds": 3}, "next": ["report"]},
                {"id": "report", "type": "publish",
                 "parameters": {"channel_id": channel, "payload": "{'batch': variables.n}"}},
            ],
            "variables": {"n": 41},
        }  # fmt: skip
        assert httpx.post(f"{base}/flows", json=doc, headers=user).status_code == 201
        command(base, user, "start", "batch")
        # Killed once the boundary before `wait` is on disk: `count` has run and is saved.
        at = eventually_sync(
            lambda: (b := boundary_on_disk(data, "batch")) and b["pending"] == ["wait"] and b
        )
        assert at["variables"] == {"n": 42} and at["done"] == ["count"]
        server.process.send_signal(signal.SIGKILL)
        server.process.wait(30)
    finally:
        server.stop()

    again = ServeProcess(data, settings, name="flows-restarted")
    try:
        again.wait_healthy()
        base = again.url
        user = sign_in(base)
        # The run goes on from `wait` with its saved variables: `count` does not run again.
        assert eventually_sync(lambda: readings(base, user, channel, "batch"), seconds=30) == [42.0]
        runs = httpx.get(f"{base}/flows/batch/runs", headers=user).json()["runs"]
        assert [r["run_id"] for r in runs] == [at["run_id"]]
        assert [t["task_id"] for t in runs[0]["tasks"]] == ["wait", "report"]
        status = eventually_sync(
            lambda: (
                (s := httpx.get(f"{base}/flows/batch/status", headers=user).json())
                and s["state"] == "completed"
                and s
            )
        )
        assert status["current_task"] is None and status["run_in_progress"] is None
    finally:
        again.stop()
