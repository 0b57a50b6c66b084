"""The configuration server: the seed's paths and /api/v1/flows, signed in, per
organisation, every refusal with its code."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import pytest
import yaml

from shopfloor.app import create_app
from shopfloor.flows import read_flow
from shopfloor.flows.capability import FlowsService
from shopfloor.messaging import Event, EventHub
from shopfloor.messaging.capability import BusService
from tests.api.conftest import Api
from tests.messaging.bus_testkit import eventually
from tests.serving import lifespan

from .conftest import flow

PREFIXES = ["/flows", "/api/v1/flows"]


@pytest.fixture(params=PREFIXES)
def base(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def test_create_read_update_and_delete(api: Api, base: str) -> None:
    org = await api.org("plant")
    engineer = await api.member(org, "engineer")
    created = await api.http.post(base, json=flow(rev=41), headers=engineer)
    assert created.status_code == 201, created.text
    assert created.json()["rev"] == 1  # the server sets it
    assert created.headers["location"] == f"{base}/line-3"

    listed = await api.http.get(base, headers=engineer)
    assert listed.status_code == 200
    assert listed.json()["total"] == 1 and listed.json()["flows"][0]["id"] == "line-3"

    changed = {**created.json(), "name": "renamed"}
    updated = await api.http.put(f"{base}/line-3", json=changed, headers=engineer)
    assert updated.status_code == 200, updated.text
    assert updated.json()["rev"] == 2
    got = await api.http.get(f"{base}/line-3", headers=engineer)
    assert got.json()["name"] == "renamed"

    stale = await api.http.put(f"{base}/line-3", json=changed, headers=engineer)
    assert stale.status_code == 409
    assert stale.json()["error"]["code"] == "flow_rev_conflict"

    deleted = await api.http.delete(f"{base}/line-3", headers=engineer)
    assert deleted.status_code == 204
    gone = await api.http.get(f"{base}/line-3", headers=engineer)
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "flow_not_found"


async def test_both_paths_are_the_same_flows(api: Api) -> None:
    org = await api.org("plant")
    engineer = await api.member(org, "engineer")
    await api.http.post("/flows", json=flow(), headers=engineer)
    got = await api.http.get("/api/v1/flows/line-3", headers=engineer)
    assert got.status_code == 200 and got.json()["rev"] == 1


async def test_a_yaml_document_is_taken(api: Api) -> None:
    org = await api.org("plant")
    engineer = await api.member(org, "engineer")
    created = await api.http.post(
        "/flows",
        content=yaml.safe_dump(flow()),
        headers={**engineer, "Content-Type": "application/yaml"},
    )
    assert created.status_code == 201, created.text
    assert created.json()["tasks"][0]["id"] == "fahrenheit"


async def test_a_bad_document_is_refused_with_every_problem_and_nothing_stored(
    api: Api,
) -> None:
    org = await api.org("plant")
    engineer = await api.member(org, "engineer")
    bad = flow()
    bad["tasks"][0]["type"] = "teleport"
    bad["tasks"][1]["next"] = ["nowhere"]
    bad["tasks"][2]["condition"] = "x >"
    refused = await api.http.post("/flows", json=bad, headers=engineer)
    assert refused.status_code == 400
    error = refused.json()["error"]
    assert error["code"] == "invalid_flow"
    assert {(d["path"], d["code"]) for d in error["details"]} == {
        ("tasks[0].type", "flow_unknown_task_type"),
        ("tasks[1].next[0]", "flow_unknown_task"),
        ("tasks[2].condition", "flow_invalid_expression"),
    }
    assert len(error["reasons"]) == 3
    assert (await api.http.get("/flows", headers=engineer)).json()["total"] == 0
    assert not (api.platform.settings.data_dir / "flows" / org / "line-3.json").exists()


@pytest.mark.parametrize(
    ("body", "content_type", "status", "code"),
    [
        (b"{not json", "application/json", 400, "invalid_flow"),
        (b"<flow/>", "application/xml", 415, "flow_unsupported_media_type"),
        # just over the default SHOPFLOOR_FLOWS_MAX_DOCUMENT_BYTES (1 MiB)
        (b'"' + b"x" * (1024 * 1024 + 100) + b'"', "application/json", 413, "flow_too_large"),
    ],
)
async def test_bodies_that_are_not_documents(
    api: Api, body: bytes, content_type: str, status: int, code: str
) -> None:
    org = await api.org("plant")
    engineer = await api.member(org, "engineer")
    refused = await api.http.post(
        "/flows", content=body, headers={**engineer, "Content-Type": content_type}
    )
    assert refused.status_code == status, refused.text
    assert refused.json()["error"]["code"] == code


async def test_an_update_names_its_revision_and_its_flow(api: Api) -> None:
    org = await api.org("plant")
    engineer = await api.member(org, "engineer")
    await api.http.post("/flows", json=flow(), headers=engineer)
    no_rev = await api.http.put("/flows/line-3", json=flow(), headers=engineer)
    assert no_rev.status_code == 400
    assert [d["code"] for d in no_rev.json()["error"]["details"]] == ["flow_rev_required"]
    other = await api.http.put("/flows/line-3", json=flow("line-4", rev=1), headers=engineer)
    assert [d["code"] for d in other.json()["error"]["details"]] == ["flow_id_mismatch"]
    missing = await api.http.put("/flows/line-9", json=flow("line-9", rev=1), headers=engineer)
    assert missing.status_code == 404
    twice = await api.http.post("/flows", json=flow(), headers=engineer)
    assert twice.status_code == 409 and twice.json()["error"]["code"] == "flow_exists"


async def test_history_and_restore(api: Api, base: str) -> None:
    org = await api.org("plant")
    engineer = await api.member(org, "engineer")
    await api.http.post(base, json=flow(), headers=engineer)
    await api.http.put(f"{base}/line-3", json=flow(name="second", rev=1), headers=engineer)
    history = await api.http.get(f"{base}/line-3/history", headers=engineer)
    assert history.status_code == 200
    assert [(r["rev"], r["name"]) for r in history.json()["revisions"]] == [
        (2, "second"),
        (1, "Line 3 temperature"),
    ]
    first = await api.http.get(f"{base}/line-3/history/1", headers=engineer)
    assert first.json()["name"] == "Line 3 temperature"
    stale = await api.http.post(f"{base}/line-3/history/1/restore?current=1", headers=engineer)
    assert stale.status_code == 409
    restored = await api.http.post(f"{base}/line-3/history/1/restore?current=2", headers=engineer)
    assert restored.status_code == 200, restored.text
    assert restored.json()["rev"] == 3 and restored.json()["name"] == "Line 3 temperature"
    unknown = await api.http.get(f"{base}/line-3/history/99", headers=engineer)
    assert unknown.status_code == 404


async def test_flows_belong_to_the_callers_organisation(api: Api) -> None:
    plant = await api.org("plant")
    other = await api.org("other")
    ours = await api.member(plant, "engineer")
    theirs = await api.member(other, "engineer")
    await api.http.post("/flows", json=flow(), headers=ours)
    assert (await api.http.get("/flows/line-3", headers=theirs)).status_code == 404
    assert (await api.http.get("/flows", headers=theirs)).json()["total"] == 0
    assert (await api.http.get("/flows/line-3/history", headers=theirs)).status_code == 404
    taken = await api.http.delete("/flows/line-3", headers=theirs)
    assert taken.status_code == 404
    assert (await api.http.get("/flows/line-3", headers=ours)).status_code == 200


async def test_reading_needs_a_member_and_changing_needs_manage_flows(api: Api) -> None:
    org = await api.org("plant")
    engineer = await api.member(org, "engineer")
    viewer = await api.member(org, "viewer")
    anonymous = await api.http.get("/flows")
    assert anonymous.status_code == 401
    assert anonymous.json()["error"]["code"] == "missing_credentials"
    assert (await api.http.post("/api/v1/flows", json=flow())).status_code == 401
    await api.http.post("/flows", json=flow(), headers=engineer)
    assert (await api.http.get("/flows/line-3", headers=viewer)).status_code == 200
    for refused in (
        await api.http.post("/flows", json=flow("line-4"), headers=viewer),
        await api.http.put("/flows/line-3", json=flow(rev=1), headers=viewer),
        await api.http.delete("/flows/line-3", headers=viewer),
        await api.http.post("/flows/line-3/history/1/restore", headers=viewer),
    ):
        assert refused.status_code == 403
        assert refused.json()["error"]["code"] == "insufficient_role"
    assert (await api.http.get("/flows/line-3", headers=viewer)).json()["rev"] == 1


async def test_the_schema_is_public(api: Api) -> None:
    schema = await api.http.get("/flows/schema")
    assert schema.status_code == 200
    assert "task.http" in schema.json()["$defs"]
    assert (await api.http.get("/api/v1/flows/schema")).json() == schema.json()


async def test_a_file_edited_by_hand_is_served_after_a_rescan(api: Api) -> None:
    org = await api.org("plant")
    engineer = await api.member(org, "engineer")
    await api.http.post("/flows", json=flow(), headers=engineer)
    path = api.platform.settings.data_dir / "flows" / org / "line-3.json"
    path.write_text(json.dumps(flow(name="by hand", rev=1)))
    api.platform.get(FlowsService).configs.rescan()
    got = await api.http.get("/flows/line-3", headers=engineer)
    assert got.json()["name"] == "by hand" and got.json()["rev"] == 2


async def test_the_service_looks_at_the_folder_every_poll(
    make_settings: Callable[..., Any],
) -> None:
    app = create_app(make_settings(services="api,flows", flows_poll=0.05))
    async with lifespan(app) as manager:
        configs = app.state.platform.get(FlowsService).configs
        await asyncio.to_thread(configs.create, "org-1", read_flow(flow()))
        path = configs.root / "org-1" / "line-3.json"
        path.write_text(json.dumps(flow(name="by hand", rev=1)))
        await eventually(lambda: configs.get("org-1", "line-3").rev == 2, within=10)
        assert configs.get("org-1", "line-3").name == "by hand"
        assert manager.app is not None


async def test_changes_are_announced_and_another_processs_announcement_wakes_a_look(
    api: Api,
) -> None:
    org = await api.org("plant")
    engineer = await api.member(org, "engineer")
    heard: list[Event] = []
    # A second hub on the platform's bus is another process of the deployment.
    async with EventHub(api.platform.get(BusService).bus) as other:
        other.listen("flows.>", heard.append)
        await api.http.post("/flows", json=flow(), headers=engineer)
        await api.http.delete("/flows/line-3?rev=1", headers=engineer)
        await eventually(lambda: len(heard) == 2)
        assert [(e.subject, dict(e.data)) for e in heard] == [
            (f"flows.{org}.changed", {"org_id": org, "flow_id": "line-3", "rev": 1, "op": "put"}),
            (f"flows.{org}.changed",
             {"org_id": org, "flow_id": "line-3", "rev": None, "op": "delete"}),
        ]  # fmt: skip

        # the other process writes a flow file (the poll is an hour here) and says so
        path = api.platform.settings.data_dir / "flows" / org / "line-4.json"
        path.write_text(json.dumps(flow("line-4")))
        other.emit(f"flows.{org}.changed", {"org_id": org, "flow_id": "line-4", "op": "put"})

        async def served() -> bool:
            got = await api.http.get("/flows/line-4", headers=engineer)
            return got.status_code == 200

        await eventually(served)
