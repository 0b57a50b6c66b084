"""The agents service through its API: a real platform (SQLite, in-process bus, the
built-in CA) with the process runtime running real processes."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from cryptography import x509

from shopfloor.app import create_app
from shopfloor.core import Platform
from shopfloor.messaging import Event
from shopfloor.messaging.capability import BusService
from tests.api.conftest import Api
from tests.serving import lifespan, served_app

from .agentkit import eventually, remove_all_agents

#: A program that prints what it was handed, then waits; SIGHUP prints "reloaded".
SLEEPER = """
import os, signal, sys, time
files = os.environ["SHOPFLOOR_AGENT_FILES"]
names = sorted(k for k in os.environ if k.startswith("SHOPFLOOR_"))
print("started", os.environ["SHOPFLOOR_AGENT_VERSION"], " ".join(names), flush=True)
print("files", " ".join(sorted(os.listdir(files))), flush=True)
print("secret", os.environ.get("SHOPFLOOR_THING_KEY", "-"), flush=True)
signal.signal(signal.SIGHUP, lambda *_: print("reloaded", flush=True))
while True:
    time.sleep(3600)
"""
ROOT = Path(__file__).resolve().parents[2]
SETTINGS = {
    "agent_ready_after": 0.2,
    "agent_reconcile_interval": 0.3,
    "agent_restart_backoff_base": 0.05,
    "agent_restart_backoff_cap": 0.05,
    "agent_upgrade_settle_seconds": 1.0,
    "agent_grace_period": 3,
    "agent_delete_wait_seconds": 15,
}


def sleeper(**extra: Any) -> dict[str, Any]:
    return {"command": [sys.executable, "-c", SLEEPER], **extra}


@pytest.fixture
async def api(make_settings: Callable[..., Any]) -> AsyncIterator[Api]:
    app = create_app(make_settings(**SETTINGS))
    async with lifespan(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        try:
            async with httpx.AsyncClient(transport=transport, base_url="http://shopfloor") as http:
                yield Api(http, app.state.platform, manager.app)
        finally:
            await remove_all_agents(app.state.platform)


@asynccontextmanager
async def _removing_agents(platform: Platform) -> AsyncIterator[None]:
    try:
        yield
    finally:
        await remove_all_agents(platform)


async def agent(api: Api, name: str, user: dict[str, str]) -> dict[str, Any]:
    response = await api.http.get(f"/api/v1/agents/{name}", headers=user)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def in_state(api: Api, name: str, user: dict[str, str], state: str, **more: Any) -> Any:
    async def check() -> dict[str, Any] | None:
        body = await agent(api, name, user)
        status = body["status"]
        if status["state"] == state and all(status.get(k) == v for k, v in more.items()):
            return body
        return None

    return await eventually(check)


def pid_of(data_dir: Path, org: str, name: str) -> int:
    record = json.loads((data_dir / "agents" / org / name / "process.json").read_text())
    return int(record["pid"])


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}").exists() and "zombie" not in Path(f"/proc/{pid}/status").read_text()


async def test_an_agent_is_provisioned_certified_started_and_deleted(
    api: Api, tmp_path: Path
) -> None:
    org = await api.org("North")
    engineer = await api.member(org, "engineer")
    spec = sleeper(
        name="press-7", version="1", config={"line": "A"},
        labels={"shopfloor.agent": "true", "shopfloor.provision.mqtt": "press telemetry"},
    )  # fmt: skip
    created = await api.http.post("/api/v1/agents", json=spec, headers=engineer)
    assert created.status_code == 201, created.text
    assert created.json()["status"]["state"] == "pending"
    body = await in_state(api, "press-7", engineer, "running")
    assert body["provisioned"] == ["mqtt"]
    assert body["certificate"]["dns_name"] == f"press-7.{org}.agents"

    data_dir = tmp_path / "data"
    files = data_dir / "agents" / org / "press-7" / "files"
    assert json.loads((files / "config.json").read_text()) == {"line": "A"}
    assert (files / "key.pem").stat().st_mode & 0o077 == 0
    cert = x509.load_pem_x509_certificate((files / "cert.pem").read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.UniformResourceIdentifier) == [
        f"urn:shopfloor:agent:{org}/press-7"
    ]
    assert san.get_values_for_type(x509.DNSName) == [f"press-7.{org}.agents"]
    assert format(cert.serial_number, "x") == body["certificate"]["serial"]

    # The thing of its own, on the channel the label names; its key only in its env.
    things = (await api.http.get("/api/v1/things", headers=engineer)).json()["items"]
    thing = next(t for t in things if t["name"] == "agent press-7")
    listing = (await api.http.get("/api/v1/agents", headers=engineer)).text
    assert thing["key"] not in listing and thing["key"] not in body.__repr__()

    async def logged() -> list[str]:
        response = await api.http.get("/api/v1/agents/press-7/logs", headers=engineer)
        lines = [line["text"] for line in response.json()["items"]]
        return lines if any(line.startswith("secret") for line in lines) else []

    lines = await eventually(logged)
    assert "started 1" in lines[0] and "SHOPFLOOR_THING_KEY" in lines[0]
    assert lines[1] == "files ca.pem cert.pem config.json key.pem"
    assert "secret [redacted]" in lines and thing["key"] not in "".join(lines)

    pid = pid_of(data_dir, org, "press-7")
    deleted = await api.http.delete("/api/v1/agents/press-7", headers=engineer)
    assert deleted.status_code == 204, deleted.text
    assert not alive(pid)
    assert not (data_dir / "agents" / org / "press-7").exists()
    gone = await api.http.get("/api/v1/agents/press-7", headers=engineer)
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "agent_not_found"
    things = (await api.http.get("/api/v1/things", headers=engineer)).json()["items"]
    assert all(t["name"] != "agent press-7" for t in things)
    cert_record = await api.http.get(
        f"/api/v1/certs/{body['certificate']['serial']}", headers=engineer
    )
    assert cert_record.json()["revocation_reason"] == "cessation_of_operation"


async def test_a_killed_agent_runs_again_once(api: Api, tmp_path: Path) -> None:
    org = await api.org("North")
    engineer = await api.member(org, "engineer")
    response = await api.http.post(
        "/api/v1/agents", json=sleeper(name="cell", restart_policy="always"), headers=engineer
    )
    assert response.status_code == 201, response.text
    await in_state(api, "cell", engineer, "running")
    pid = pid_of(tmp_path / "data", org, "cell")
    os.kill(pid, signal.SIGKILL)
    body = await in_state(api, "cell", engineer, "running", restarts=1)
    again = pid_of(tmp_path / "data", org, "cell")
    assert again != pid and alive(again)
    await asyncio.sleep(1.0)  # nothing else happens: one process, restarted once
    assert (await agent(api, "cell", engineer))["status"]["restarts"] == 1
    assert body["status"]["exit_code"] == -signal.SIGKILL or body["status"]["restarts"] == 1


async def test_a_failed_upgrade_rolls_back(api: Api, tmp_path: Path) -> None:
    org = await api.org("North")
    engineer = await api.member(org, "engineer")
    events: list[Event] = []
    hub = api.platform.get(BusService).events
    with hub.listen(f"agents.{org}.press.state", events.append):
        response = await api.http.post(
            "/api/v1/agents", json=sleeper(name="press", version="1"), headers=engineer
        )
        assert response.status_code == 201, response.text
        await in_state(api, "press", engineer, "running", version="1")
        first = pid_of(tmp_path / "data", org, "press")
        upgrade = await api.http.post(
            "/api/v1/agents/press/upgrade",
            json={"version": "2", "command": [sys.executable, "-c", "raise SystemExit(3)"]},
            headers=engineer,
        )
        assert upgrade.status_code == 200, upgrade.text
        assert upgrade.json()["rollout"]["to_version"] == "2"

        async def rolled_back() -> dict[str, Any] | None:
            body = await agent(api, "press", engineer)
            back = body["rollout"] is None and body["spec"]["version"] == "1"
            return body if back and body["status"]["state"] == "running" else None

        body = await eventually(rolled_back)
    assert "version 2 exited (status 3)" in body["status"]["error"]
    assert "rolled back to version 1" in body["status"]["error"]
    assert pid_of(tmp_path / "data", org, "press") != first
    assert any(e.data.get("state") == "rolled_back" for e in events)
    states = [e.data["state"] for e in events]
    assert states[0] == "pending" and states.index("running") < states.index("rolled_back")


async def test_a_good_upgrade_is_kept(api: Api) -> None:
    org = await api.org("North")
    engineer = await api.member(org, "engineer")
    await api.http.post("/api/v1/agents", json=sleeper(name="press"), headers=engineer)
    await in_state(api, "press", engineer, "running", version="1")
    response = await api.http.patch("/api/v1/agents/press", json={"version": "2"}, headers=engineer)
    assert response.status_code == 200, response.text

    async def settled() -> dict[str, Any] | None:
        body = await agent(api, "press", engineer)
        return body if body["rollout"] is None and body["status"]["version"] == "2" else None

    body = await eventually(settled)
    assert body["spec"]["version"] == "2" and body["status"]["state"] == "running"


async def test_operators_sleep_wake_and_restart_but_do_not_deploy(api: Api, tmp_path: Path) -> None:
    org = await api.org("North")
    engineer = await api.member(org, "engineer")
    operator = await api.member(org, "operator")
    viewer = await api.member(org, "viewer")
    refused = await api.http.post("/api/v1/agents", json=sleeper(name="x"), headers=operator)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "insufficient_role"
    await api.http.post("/api/v1/agents", json=sleeper(name="mill"), headers=engineer)
    await in_state(api, "mill", viewer, "running")

    slept = await api.http.post("/api/v1/agents/mill/sleep", headers=operator)
    assert slept.status_code == 200, slept.text
    assert slept.json()["status"]["desired_state"] == "stopped"
    await in_state(api, "mill", viewer, "sleeping")
    await api.http.post("/api/v1/agents/mill/wake", headers=operator)
    await in_state(api, "mill", viewer, "running")
    pid = pid_of(tmp_path / "data", org, "mill")
    restarted = await api.http.post("/api/v1/agents/mill/restart", headers=operator)
    assert restarted.status_code == 200, restarted.text
    await in_state(api, "mill", viewer, "running", restarts=1)
    assert pid_of(tmp_path / "data", org, "mill") != pid

    for path, body in (("/upgrade", {"version": "9"}), ("", None)):
        call = api.http.post if path else api.http.delete
        kwargs: dict[str, Any] = {"json": body} if body else {}
        answer = await call(f"/api/v1/agents/mill{path}", headers=operator, **kwargs)
        assert answer.status_code == 403, answer.text
    for path in ("/sleep", "/wake", "/restart"):
        answer = await api.http.post(f"/api/v1/agents/mill{path}", headers=viewer)
        assert answer.status_code == 403, answer.text

    # Another organisation sees nothing.
    other = await api.member(await api.org("South"), "admin")
    assert (await api.http.get("/api/v1/agents/mill", headers=other)).status_code == 404
    assert (await api.http.get("/api/v1/agents", headers=other)).json()["total"] == 0


@pytest.mark.parametrize(
    ("spec", "code"),
    [
        ({"name": "Bad_Name", "command": ["true"]}, "invalid_agent_spec"),
        ({"name": "a", "command": ["true"], "image": "x"}, "invalid_agent_spec"),
        ({"name": "a", "command": ["true"], "env": {"SHOPFLOOR_X": "1"}}, "invalid_agent_spec"),
        ({"name": "a", "image": "registry/press:1"}, "agent_runtime_mismatch"),
        ({"name": "a", "command": ["true"], "labels": {"shopfloor.provision.nope": "1"}},
         "unknown_provisioner"),
        ({"name": "a", "command": ["true"], "labels": {"shopfloor.provision.mqtt": "true"}},
         "invalid_provisioning_label"),
        ({"name": "a", "command": ["true"], "labels": {"shopfloor.provision.postgres": "true"}},
         "unknown_provisioner"),  # no SHOPFLOOR_AGENT_POSTGRES_URL here
        ({"name": "a", "command": ["true"], "health": {"url": "ftp://x"}}, "invalid_agent_spec"),
        ({"name": "a", "command": ["true"], "thing_id": "no-such-thing"}, "thing_not_found"),
    ],
)  # fmt: skip
async def test_bad_specs_are_refused_with_their_code(
    api: Api, spec: dict[str, Any], code: str
) -> None:
    org = await api.org("North")
    engineer = await api.member(org, "engineer")
    response = await api.http.post("/api/v1/agents", json=spec, headers=engineer)
    assert response.status_code == (404 if code == "thing_not_found" else 400), response.text
    assert response.json()["error"]["code"] == code
    assert (await api.http.get("/api/v1/agents", headers=engineer)).json()["total"] == 0


async def test_names_are_unique_per_organisation_and_changes_check_the_generation(
    api: Api,
) -> None:
    org = await api.org("North")
    engineer = await api.member(org, "engineer")
    first = await api.http.post("/api/v1/agents", json=sleeper(name="a"), headers=engineer)
    assert first.status_code == 201
    again = await api.http.post("/api/v1/agents", json=sleeper(name="a"), headers=engineer)
    assert again.status_code == 409 and again.json()["error"]["code"] == "agent_exists"
    other = await api.member(await api.org("South"), "engineer")
    assert (
        await api.http.post("/api/v1/agents", json=sleeper(name="a"), headers=other)
    ).status_code == 201
    rename = await api.http.patch("/api/v1/agents/a", json={"name": "b"}, headers=engineer)
    assert rename.status_code == 400 and rename.json()["error"]["code"] == "agent_rename"


async def test_a_failing_health_check_restarts_the_agent(api: Api, tmp_path: Path) -> None:
    org = await api.org("North")
    engineer = await api.member(org, "engineer")
    health = {"url": "http://127.0.0.1:9/health", "grace_seconds": 0, "interval_seconds": 1,
              "failures": 2}  # fmt: skip
    response = await api.http.post(
        "/api/v1/agents", json=sleeper(name="probe", health=health), headers=engineer
    )
    assert response.status_code == 201, response.text
    body = await in_state(api, "probe", engineer, "unhealthy")
    assert body["status"]["restarts"] == 0
    body = await eventually(lambda: _restarted(api, engineer), seconds=15)
    assert "health check failed 2 times" in body["status"]["error"]


async def _restarted(api: Api, user: dict[str, str]) -> dict[str, Any] | None:
    body = await agent(api, "probe", user)
    return body if body["status"]["restarts"] >= 1 else None


async def test_logs_tail_search_and_follow(api: Api) -> None:
    org = await api.org("North")
    engineer = await api.member(org, "engineer")
    program = "import time\nfor n in range(100000):\n    print('tick', n, flush=True)\n    time.sleep(0.05)"  # noqa: E501
    for name, labels in (("plain", {}), ("shipped", {"shopfloor.provision.logs": "true"})):
        spec = {"name": name, "command": [sys.executable, "-c", program], "labels": labels}
        response = await api.http.post("/api/v1/agents", json=spec, headers=engineer)
        assert response.status_code == 201, response.text
    for name, source in (("plain", "runtime"), ("shipped", "shipped")):

        async def enough(name: str = name) -> Any:
            response = await api.http.get(
                f"/api/v1/agents/{name}/logs", params={"tail": 5}, headers=engineer
            )
            body = response.json()
            return body if len(body["items"]) == 5 else None

        body = await eventually(enough)
        assert body["source"] == source
        numbers = [int(line["text"].split()[1]) for line in body["items"]]
        assert numbers == sorted(numbers) and len(set(numbers)) == 5
        found = await api.http.get(
            f"/api/v1/agents/{name}/logs", params={"search": "tick 3", "tail": 1000},
            headers=engineer,
        )  # fmt: skip
        texts = [line["text"] for line in found.json()["items"]]
        assert texts and all("tick 3" in text for text in texts)

        seen = await followed(api, name, engineer, count=3)
        numbers = [int(line["text"].split()[1]) for line in seen]
        assert numbers == sorted(numbers) and len(numbers) == 3


async def followed(api: Api, name: str, user: dict[str, str], *, count: int) -> list[Any]:
    """`count` lines of `follow=true`, as server-sent events over a real HTTP server
    (httpx's ASGI transport hands a response over only once it is complete)."""
    config = uvicorn.Config(api.app, lifespan="off", log_level="warning")
    seen: list[dict[str, Any]] = []
    async with (
        served_app(config) as port,
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=20) as http,
        http.stream(
            "GET", f"/api/v1/agents/{name}/logs", params={"tail": 0, "follow": "true"},
            headers=user,
        ) as stream,
    ):  # fmt: skip
        assert stream.headers["content-type"].startswith("text/event-stream")
        async for text in stream.aiter_lines():
            if text.startswith("data: "):
                seen.append(json.loads(text[len("data: ") :]))
            if len(seen) == count:
                break
    return seen


async def test_a_renewed_certificate_reaches_the_running_agent_without_a_restart(
    make_settings: Callable[..., Any], tmp_path: Path
) -> None:
    app = create_app(make_settings(**SETTINGS, agent_cert_ttl="6s"))
    async with lifespan(app) as manager, _removing_agents(app.state.platform):
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://shopfloor") as http:
            api = Api(http, app.state.platform, manager.app)
            org = await api.org("North")
            engineer = await api.member(org, "engineer")
            await http.post("/api/v1/agents", json=sleeper(name="cert"), headers=engineer)
            body = await in_state(api, "cert", engineer, "running")
            first, pid = body["certificate"]["serial"], pid_of(tmp_path / "data", org, "cert")

            async def renewed() -> Any:
                answer = await agent(api, "cert", engineer)
                return answer if answer["certificate"]["serial"] != first else None

            body = await eventually(renewed, seconds=15)
            files = tmp_path / "data" / "agents" / org / "cert" / "files"
            cert = x509.load_pem_x509_certificate((files / "cert.pem").read_bytes())
            assert format(cert.serial_number, "x") == body["certificate"]["serial"]
            assert pid_of(tmp_path / "data", org, "cert") == pid
            assert body["status"]["restarts"] == 0

            async def reloaded() -> bool:
                logs = await http.get("/api/v1/agents/cert/logs", headers=engineer)
                return any(line["text"] == "reloaded" for line in logs.json()["items"])

            await eventually(reloaded)
            old = await http.get(f"/api/v1/certs/{first}", headers=engineer)
            assert old.json()["revocation_reason"] == "superseded"


async def test_runtime_objects_no_agent_owns_are_removed(api: Api, tmp_path: Path) -> None:
    from shopfloor.agents import Workload
    from shopfloor.agents.capability import AgentsService

    runtime = api.platform.get(AgentsService).runtime
    stray = Workload(key="gone/stray", name="stray", version="1", command=("sleep", "600"))
    await runtime.apply(stray)
    pid = (await runtime.observe())["gone/stray"].detail["pid"]

    async def removed() -> bool:
        return "gone/stray" not in await runtime.observe()

    await eventually(removed)
    await eventually(lambda: _gone(pid))


async def _gone(pid: int) -> bool:
    return not alive(pid)


async def test_the_echo_example_runs_as_a_module_with_a_health_url(api: Api) -> None:
    """As docs/agents.md deploys it: `module` with PYTHONPATH, shipped logs, health."""
    from tests.serving import free_port

    org = await api.org("North")
    engineer = await api.member(org, "engineer")
    port = free_port()
    spec = {
        "name": "echo", "module": "examples.agents.echo:main",
        "env": {"PYTHONPATH": str(ROOT)},
        "config": {"interval": 0.2, "health_port": port},
        "labels": {"shopfloor.provision.logs": "true"},
        "health": {"url": f"http://127.0.0.1:{port}/health", "interval_seconds": 1,
                   "grace_seconds": 5},
    }  # fmt: skip
    created = await api.http.post("/api/v1/agents", json=spec, headers=engineer)
    assert created.status_code == 201, created.text
    await in_state(api, "echo", engineer, "running")

    async def beating() -> Any:
        logs = await api.http.get(
            "/api/v1/agents/echo/logs", params={"search": "heartbeat"}, headers=engineer
        )
        return logs.json()["items"]

    assert await eventually(beating)
    async with httpx.AsyncClient() as http:
        assert (await http.get(f"http://127.0.0.1:{port}/health")).status_code == 200
    await asyncio.sleep(1.5)  # probed at least once: healthy, so still `running`
    assert (await agent(api, "echo", engineer))["status"]["state"] == "running"
