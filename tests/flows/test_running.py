"""Flows running in the platform: the commands route, status, runs and dead letters,
a message-triggered flow on the bus, and a running flow kept across a restart."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from shopfloor.app import create_app
from shopfloor.messaging import Envelope, channel_filters
from shopfloor.messaging.capability import BusService
from tests.api.conftest import Api
from tests.messaging.bus_testkit import eventually
from tests.serving import lifespan

from .conftest import flow

PREFIXES = ["/flows", "/api/v1/flows"]


def ticking(flow_id: str, **overrides: Any) -> dict[str, Any]:
    return {
        "id": flow_id, "name": flow_id,
        "triggers": [{"type": "interval", "parameters": {"seconds": 0.02}}],
        "tasks": [{"id": "note", "type": "log", "parameters": {"message": "'tick'"}}],
        **overrides,
    }  # fmt: skip


@pytest.mark.parametrize("base", PREFIXES)
async def test_commands_answer_a_result_per_flow(api: Api, base: str) -> None:
    org = await api.org("plant")
    engineer = await api.member(org, "engineer")
    operator = await api.member(org, "operator")
    viewer = await api.member(org, "viewer")
    for flow_id in ("a", "b"):
        created = await api.http.post(base, json=ticking(flow_id), headers=engineer)
        assert created.status_code == 201, created.text

    async def command(name: str, ids: list[str], who: dict[str, str] = operator) -> httpx.Response:
        body = {"command": name, "flow_ids": ids}
        return await api.http.patch(f"{base}/commands", json=body, headers=who)

    started = await command("start", ["a", "nowhere"])
    assert started.status_code == 200, started.text
    results = started.json()["results"]
    assert results[0] == {
        "flow_id": "a", "ok": True, "state": "running", "error": None, "status": None
    }  # fmt: skip
    assert results[1]["ok"] is False and results[1]["error"]["code"] == "flow_not_found"
    assert results[1]["status"] == 404

    again = await command("start", ["a"])
    assert again.status_code == 409
    assert again.json()["results"][0]["error"]["code"] == "flow_already_running"
    # Named twice, a flow takes the commands one after the other.
    twice = (await command("pause", ["a", "a"])).json()["results"]
    assert [r["ok"] for r in twice] == [True, False], twice
    assert twice[1]["error"]["code"] == "flow_already_paused"
    assert (await command("resume", ["a"])).status_code == 200
    assert (await command("resume", ["a", "b"])).status_code == 409
    unknown = await command("explode", ["a"])
    assert unknown.status_code == 400
    assert unknown.json()["error"]["code"] == "flow_unknown_command"
    assert (await command("stop", ["a"], viewer)).status_code == 403

    status = await api.http.get(f"{base}/a/status", headers=viewer)
    assert status.status_code == 200
    assert status.json()["state"] == "running" and status.json()["started"]

    async def completed() -> bool:
        answer = await api.http.get(f"{base}/a/status", headers=viewer)
        return bool(answer.json()["counters"]["completed"] >= 2)

    await eventually(completed)
    runs = (await api.http.get(f"{base}/a/runs", headers=viewer)).json()
    assert runs["total"] >= 2
    done = [run for run in runs["runs"] if run["status"] == "completed"]  # newest first
    assert [task["task_id"] for task in done[0]["tasks"]] == ["note"]
    assert done[0]["tasks"][0]["status"] == "succeeded"

    assert (await command("pause", ["a"])).json()["results"][0]["state"] == "paused"
    listed = (await api.http.get(f"{base}/status", headers=viewer)).json()
    assert {(f["flow_id"], f["state"]) for f in listed["flows"]} == {
        ("a", "paused"), ("b", "stopped")
    }  # fmt: skip
    assert (await command("resume", ["a"])).json()["results"][0]["state"] == "running"
    stopped = await command("stop", ["a", "b"])
    assert stopped.status_code == 200
    assert [r["ok"] for r in stopped.json()["results"]] == [True, False]
    assert stopped.json()["results"][1]["error"]["code"] == "flow_not_running"
    missing = await api.http.get(f"{base}/nowhere/status", headers=viewer)
    assert missing.status_code == 404


async def test_a_failed_run_is_a_dead_letter_replayed_through_the_api(api: Api) -> None:
    org = await api.org("plant")
    engineer = await api.member(org, "engineer")
    doc = ticking(
        "bad", triggers=[{"type": "interval", "parameters": {"seconds": 3600}}],
        tasks=[{"id": "out", "type": "publish",
                "parameters": {"channel_id": "no-such-channel", "payload": "1"}}],
    )  # fmt: skip
    assert (await api.http.post("/flows", json=doc, headers=engineer)).status_code == 201
    body = {"command": "start", "flow_ids": ["bad"]}
    assert (await api.http.patch("/flows/commands", json=body, headers=engineer)).is_success
    manager = api.platform.get(_flows()).manager
    manager._offer(manager._flows[(org, "bad")], (None, {"type": "interval"}))

    async def dead() -> list[dict[str, Any]]:
        answer = await api.http.get("/flows/bad/dead-letters", headers=engineer)
        return list(answer.json()["dead_letters"])

    await eventually(lambda: _nonempty(dead()))
    letter = (await dead())[0]
    assert letter["error"]["code"] == "channel_not_found", letter
    replay = await api.http.post(f"/flows/bad/dead-letters/{letter['id']}/replay", headers=engineer)
    assert replay.status_code == 202, replay.text
    await eventually(lambda: _nonempty(dead()))
    assert (await dead())[0]["id"] != letter["id"]  # replayed, and failed again
    gone = await api.http.post(f"/flows/bad/dead-letters/{letter['id']}/replay", headers=engineer)
    assert gone.json()["error"]["code"] == "flow_dead_letter_not_found"


async def test_a_deleted_channel_is_published_to_no_more(api: Api) -> None:
    """The publisher keeps "this channel is the organisation's"; the registry's change
    drops it at once."""
    org = await api.org("plant")
    engineer = await api.member(org, "engineer")
    made = await api.http.post("/api/v1/channels", json={"name": "out"}, headers=engineer)
    channel = made.json()["id"]
    doc = ticking(
        "once", triggers=[],
        tasks=[{"id": "out", "type": "publish",
                "parameters": {"channel_id": channel, "payload": "1"}}],
    )  # fmt: skip
    assert (await api.http.post("/flows", json=doc, headers=engineer)).status_code == 201
    manager = api.platform.get(_flows()).manager
    body = {"command": "start", "flow_ids": ["once"]}

    async def ran(status: str, count: int) -> None:
        assert (await api.http.patch("/flows/commands", json=body, headers=engineer)).is_success
        await eventually(
            lambda: sum(r.status == status for r in manager.runs(org, "once")) == count
        )

    await ran("completed", 1)
    await ran("completed", 2)  # the channel's answer is kept now
    deleted = await api.http.delete(f"/api/v1/channels/{channel}", headers=engineer)
    assert deleted.status_code == 204
    await ran("failed", 1)
    assert manager.runs(org, "once")[0].error["code"] == "channel_not_found"  # type: ignore[index]


async def _nonempty(items: Any) -> bool:
    return bool(await items)


def _flows() -> Any:
    from shopfloor.flows.capability import FlowsService

    return FlowsService


async def test_a_message_triggers_a_derived_message_on_another_channel(api: Api) -> None:
    org = await api.org("plant")
    engineer = await api.member(org, "engineer")
    ids = []
    for name in ("telemetry", "derived"):
        made = await api.http.post("/api/v1/channels", json={"name": name}, headers=engineer)
        ids.append(made.json()["id"])
    telemetry, derived = ids
    doc = flow("line-3")
    doc["triggers"][0]["parameters"]["channel_id"] = telemetry
    doc["tasks"][1]["parameters"]["channel_id"] = derived
    assert (await api.http.post("/flows", json=doc, headers=engineer)).status_code == 201
    body = {"command": "start", "flow_ids": ["line-3"]}
    assert (await api.http.patch("/flows/commands", json=body, headers=engineer)).is_success

    bus = api.platform.get(BusService).bus
    async with bus.subscribe(channel_filters(derived)) as subscription:
        # the trigger subscribes in its own task: wait until the bus has its subscription
        await eventually(
            lambda: any(telemetry in name for held in bus._subscriptions for name in held.filters)  # type: ignore[attr-defined]
        )
        for temperature in (70.0, 100.0, 100.0, 90.0):  # below the limit; then a repeat
            await bus.publish(
                Envelope(
                    channel=telemetry, subtopic="", publisher="thing-1", protocol="test",
                    payload=json.dumps({"temperature": temperature}).encode(),
                    content_type="application/json",
                )
            )  # fmt: skip
        got = []
        async with asyncio.timeout(5):
            async for envelope in subscription:
                got.append(json.loads(envelope.payload))
                if len(got) == 2:
                    break
    assert got == [{"f": 212.0}, {"f": 194.0}]
    assert envelope.publisher == "flow:line-3"


async def test_a_restarted_platform_resumes_a_running_flow(
    make_settings: Callable[..., Any],
) -> None:
    settings = make_settings(services="api,flows", flows_poll=3600)
    app = create_app(settings)
    async with (
        lifespan(app) as manager,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=manager.app), base_url="http://shopfloor"
        ) as http,
    ):
        api = Api(http, app.state.platform, manager.app)
        org = await api.org("plant")
        engineer = await api.member(org, "engineer")
        assert (await http.post("/flows", json=ticking("t"), headers=engineer)).is_success
        body = {"command": "start", "flow_ids": ["t"]}
        assert (await http.patch("/flows/commands", json=body, headers=engineer)).is_success
    again = create_app(make_settings(services="api,flows", flows_poll=3600))
    async with lifespan(again) as manager:
        flows = again.state.platform.get(_flows()).manager
        # runs are kept in memory: these are the new platform's own
        await eventually(lambda: len(flows.runs(org, "t")) >= 2)
        assert flows.status(org, "t").state == "running"


async def test_a_trigger_on_a_channel_of_no_one_fails_the_flow(api: Api) -> None:
    org = await api.org("plant")
    engineer = await api.member(org, "engineer")
    doc = ticking("deaf", triggers=[{"type": "message", "parameters": {"channel_id": "nope"}}])
    assert (await api.http.post("/flows", json=doc, headers=engineer)).status_code == 201
    body = {"command": "start", "flow_ids": ["deaf"]}
    assert (await api.http.patch("/flows/commands", json=body, headers=engineer)).is_success

    async def failed() -> bool:
        answer = (await api.http.get("/flows/deaf/status", headers=engineer)).json()
        return bool(answer["state"] == "failed")

    await eventually(failed)
    status = (await api.http.get("/flows/deaf/status", headers=engineer)).json()
    assert status["last_error"]["code"] == "channel_not_found"
    again = await api.http.patch("/flows/commands", json=body, headers=engineer)
    assert again.json()["results"][0]["state"] == "running"  # and it fails again
    await eventually(failed)


async def test_a_publish_as_a_thing_goes_through_the_ingress(api: Api) -> None:
    org = await api.org("plant")
    engineer = await api.member(org, "engineer")
    thing = (await api.http.post("/api/v1/things", json={"name": "gw"}, headers=engineer)).json()
    made = await api.http.post("/api/v1/channels", json={"name": "derived"}, headers=engineer)
    channel = made.json()["id"]
    doc = ticking(
        "as-thing", triggers=[{"type": "interval", "parameters": {"seconds": 3600}}],
        tasks=[{"id": "out", "type": "publish",
                "parameters": {"channel_id": channel, "payload": "{'v': 1.5}",
                               "thing_id": thing["id"]}}],
    )  # fmt: skip
    assert (await api.http.post("/flows", json=doc, headers=engineer)).status_code == 201
    body = {"command": "start", "flow_ids": ["as-thing"]}
    assert (await api.http.patch("/flows/commands", json=body, headers=engineer)).is_success
    manager = api.platform.get(_flows()).manager
    manager._offer(manager._flows[(org, "as-thing")], (None, {"type": "interval"}))
    await eventually(lambda: bool(manager.dead_letters(org, "as-thing")))
    letter = manager.dead_letters(org, "as-thing")[0]
    assert letter["error"]["code"] == "publish_not_allowed"  # not connected yet

    connect = f"/api/v1/channels/{channel}/things/{thing['id']}"
    assert (await api.http.put(connect, headers=engineer)).status_code == 200
    bus = api.platform.get(BusService).bus
    async with bus.subscribe(channel_filters(channel)) as subscription:
        await manager.replay(org, "as-thing", letter["id"])
        async with asyncio.timeout(5):
            envelope = await anext(aiter(subscription))
    assert envelope.publisher == thing["id"] and envelope.protocol == "flow"
    assert json.loads(envelope.payload) == {"v": 1.5}


async def test_a_change_announced_on_the_bus_reaches_a_running_flow(api: Api) -> None:
    org = await api.org("plant")
    engineer = await api.member(org, "engineer")
    created = await api.http.post("/flows", json=ticking("t"), headers=engineer)
    body = {"command": "start", "flow_ids": ["t"]}
    assert (await api.http.patch("/flows/commands", json=body, headers=engineer)).is_success
    manager = api.platform.get(_flows()).manager

    changed = {**created.json(), "tasks": [
        {"id": "other", "type": "log", "parameters": {"message": "'changed'"}}
    ]}  # fmt: skip
    assert (await api.http.put("/flows/t", json=changed, headers=engineer)).status_code == 200
    await eventually(
        lambda: any(
            run.status == "completed" and [t.task_id for t in run.tasks] == ["other"]
            for run in manager.runs(org, "t")
        )
    )
    assert (await api.http.delete("/flows/t", headers=engineer)).status_code == 204
    await eventually(lambda: manager.status(org, "t").state == "failed")
    assert manager.status(org, "t").last_error["code"] == "flow_not_found"  # type: ignore[index]
