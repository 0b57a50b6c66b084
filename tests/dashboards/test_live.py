"""The live side of an open dashboard: one subscription, points matched to panels and
batched, the stream ended with the session; the data route keeps to the organisation."""

from __future__ import annotations

import asyncio
import json
import re
import time
from typing import Any

import httpx
import pytest

from shopfloor.dashboards import check_document
from shopfloor.dashboards._view import live_batches, resolve
from shopfloor.messaging import Envelope, MemoryBus
from tests.api.conftest import ROOT, Api


def dashboard(channel: str, publisher: str) -> Any:
    return check_document({
        "title": "Line", "variables": [{"name": "machine", "kind": "thing"}],
        "panels": [
            {"id": "mine", "type": "line", "query": {"channel": channel, "name": "p",
                                                      "publisher": "$machine"}},
            {"id": "all", "type": "table", "query": {"channel": channel}},
            {"id": "count", "type": "bar",
             "query": {"channel": channel, "aggregation": "count", "interval": "1m"}},
        ],
    })  # fmt: skip


def senml(publisher: str, channel: str, value: float) -> Envelope:
    payload = json.dumps([{"n": "p", "v": value, "t": time.time()}]).encode()
    return Envelope(
        channel=channel, subtopic="", publisher=publisher, protocol="http",
        payload=payload, content_type="application/senml+json",
    )  # fmt: skip


async def test_a_lone_point_goes_at_once_and_a_burst_travels_in_one_batch() -> None:
    async with MemoryBus() as bus:
        targets = resolve(dashboard("c1", "press"), {"machine": "press"})

        async def allowed() -> bool:
            return True

        batches = live_batches(
            bus, targets, batch_seconds=0.5, keepalive=5.0, still_allowed=allowed
        )
        assert await anext(batches) is None  # subscribed: what comes now reaches the page
        started = time.monotonic()
        await bus.publish(senml("press", "c1", 0.0))
        lone = await asyncio.wait_for(anext(batches), 5)
        assert time.monotonic() - started < 0.5  # after a quiet spell: no batch wait
        for value, publisher in ((1.0, "press"), (2.0, "oven"), (3.0, "press")):
            await bus.publish(senml(publisher, "c1", value))
        await bus.publish(senml("press", "elsewhere", 9.0))
        batch = await asyncio.wait_for(anext(batches), 5)
        await batches.aclose()
    assert lone is not None and [p[2] for p in lone["mine"]] == [0.0]
    assert batch is not None
    assert [p[2] for p in batch["mine"]] == [1.0, 3.0]  # $machine = press
    assert [p[2] for p in batch["all"]] == [1.0, 2.0, 3.0]
    assert "count" not in batch  # an aggregation's buckets are read again, not appended


async def test_the_stream_ends_when_the_session_does() -> None:
    sessions = [True, False]

    async def allowed() -> bool:
        return sessions.pop(0)

    async with MemoryBus() as bus:
        targets = resolve(dashboard("c1", "press"), {})
        seen = [
            item
            async for item in live_batches(
                bus, targets, batch_seconds=0.05, keepalive=0.05, still_allowed=allowed
            )
        ]
    assert seen == [None, None]  # subscribed, one keep-alive, then the session was gone
    assert sessions == []


def panels_of(answer: httpx.Response) -> dict[str, dict[str, Any]]:
    """A data answer's panels by id: JSON lines, the window first, then the panels in the
    document's order."""
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/x-ndjson"
    head, *lines = [json.loads(line) for line in answer.text.splitlines()]
    assert set(head) == {"window"} and set(head["window"]) == {"from", "to", "live"}
    return {line.pop("panel"): line for line in lines}


async def console_sign_in(client: httpx.AsyncClient, who: tuple[str, str] = ROOT) -> None:
    await client.get("/console/sign-in")
    signed = await client.post(
        "/console/sign-in",
        data={"email": who[0], "password": who[1], "next": "/",
              "csrf_token": client.cookies["shopfloor_csrf"]},
    )  # fmt: skip
    assert signed.status_code == 303, signed.text


async def test_a_panel_on_another_organisations_channel_shows_nothing_of_it(api: Api) -> None:
    from shopfloor.auth.capability import IdentityService
    from shopfloor.dashboards.capability import DashboardsService
    from shopfloor.registry import Role

    registry = api.platform.get(IdentityService).registry
    mine, theirs = await registry.create_org("Plant"), await registry.create_org("Elsewhere")
    root = await registry.find_user_by_email(ROOT[0])
    assert root is not None
    await registry.update_user(root.id, org_id=mine.id, role=Role.ADMIN)
    channel = await registry.create_channel(mine.id, name="line")
    foreign = await registry.create_channel(theirs.id, name="secret")
    document = check_document({
        "title": "Peek",
        "panels": [{"id": "own", "type": "stat", "query": {"channel": channel.id}},
                   {"id": "peek", "type": "stat", "query": {"channel": foreign.id}}],
    })  # fmt: skip
    stored = await api.platform.get(DashboardsService).store.create(mine.id, document)
    await console_sign_in(api.http)
    panels = panels_of(await api.http.get(f"/console/dashboards/{stored.id}/data"))
    assert list(panels) == ["own", "peek"]
    assert panels["own"] == {"series": [], "unit": None}
    assert panels["peek"]["error"]["code"] == "channel_not_found"


def test_columns_of_one_name_with_values_only_and_of_mixed_points() -> None:
    from shopfloor.dashboards._view import columns

    plain = [(1.0, "a", 1.5, None), (2.0, "a", 2.5, None)]
    assert [{k: list(v) if k != "name" else v for k, v in c.items()} for c in columns(plain)] == [
        {"name": "a", "t": [1.0, 2.0], "v": [1.5, 2.5]}
    ]
    mixed = [(1.0, "a", 1.5, None), (2.0, "b", None, "off"), (3.0, "a", None, None)]
    assert columns(mixed) == [
        {"name": "a", "t": [1.0], "v": [1.5], "texts": [(3.0, None)]},
        {"name": "b", "t": [], "v": [], "texts": [(2.0, "off")]},
    ]
    assert columns([]) == []


async def test_the_data_answer_gives_each_name_its_columns_and_texts_apart(api: Api) -> None:
    from shopfloor.auth.capability import IdentityService
    from shopfloor.dashboards.capability import DashboardsService
    from shopfloor.registry import Role
    from shopfloor.storage import StoredMessage
    from shopfloor.storage.capability import TimeseriesService

    registry = api.platform.get(IdentityService).registry
    org = await registry.create_org("Plant")
    root = await registry.find_user_by_email(ROOT[0])
    assert root is not None
    await registry.update_user(root.id, org_id=org.id, role=Role.ADMIN)
    channel = await registry.create_channel(org.id, name="line")
    now = time.time()

    def record(seq: int, name: str, **kind: Any) -> StoredMessage:
        return StoredMessage(
            channel=channel.id, subtopic="", publisher="p", protocol="http", message_id="m",
            seq=seq, name=name, time=now - 60 + seq, **kind,
        )  # fmt: skip

    await api.platform.get(TimeseriesService).store.write([
        record(0, "temp", value=20.5), record(1, "door", bool_value=True),
        record(2, "temp", string_value="sensor fault"), record(3, "temp", value=21.0),
        record(4, "door", bool_value=False),
    ])  # fmt: skip
    document = check_document({
        "title": "Columns",
        "panels": [{"id": "all", "type": "table", "query": {"channel": channel.id}},
                   {"id": "temp", "type": "line", "query": {"channel": channel.id, "name": "temp",
                                                            "limit": 2}}],
    })  # fmt: skip
    stored = await api.platform.get(DashboardsService).store.create(org.id, document)
    await console_sign_in(api.http)
    panels = panels_of(await api.http.get(f"/console/dashboards/{stored.id}/data"))
    ms = [round((now - 60 + seq) * 1000, 3) for seq in range(5)]

    def near(values: list[float]) -> list[float]:
        return [pytest.approx(v, abs=0.01) for v in values]

    assert [s["name"] for s in panels["all"]["series"]] == ["temp", "door"]
    temp, door = panels["all"]["series"]
    assert (temp["t"], temp["v"]) == (near([ms[0], ms[3]]), [20.5, 21.0])
    assert [x[1] for x in temp["texts"]] == ["sensor fault"]
    assert temp["texts"][0][0] == pytest.approx(ms[2], abs=0.01)
    assert (door["t"], door["v"], "texts" in door) == (near([ms[1], ms[4]]), [1.0, 0.0], False)
    # the newest `limit` records of the name, the text one among them
    (only,) = panels["temp"]["series"]
    assert (only["t"], only["v"], [x[1] for x in only["texts"]]) == (
        near([ms[3]]),
        [21.0],
        ["sensor fault"],
    )


async def test_a_viewer_sees_a_dashboard_without_editing_and_a_save_is_refused(
    api: Api,
) -> None:
    from shopfloor.auth import hash_password
    from shopfloor.auth.capability import IdentityService
    from shopfloor.dashboards.capability import DashboardsService
    from shopfloor.registry import Role

    registry = api.platform.get(IdentityService).registry
    org = await registry.create_org("Plant")
    await registry.create_user(
        email="viewer@plant.example", password_hash=hash_password("viewer-password"),
        org_id=org.id, role=Role.VIEWER,
    )  # fmt: skip
    document = check_document({"title": "Line"})
    stored = await api.platform.get(DashboardsService).store.create(org.id, document)
    await console_sign_in(api.http, ("viewer@plant.example", "viewer-password"))
    page = await api.http.get(f"/console/dashboards/{stored.id}")
    assert page.status_code == 200 and 'data-testid="dashboard"' in page.text
    assert "panel-add" not in page.text and "dashboard-save" not in page.text
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert csrf is not None
    saved = await api.http.post(
        f"/console/dashboards/{stored.id}/save",
        data={"csrf_token": csrf.group(1), "version": "1",
              "document": json.dumps(document.to_json())},
    )  # fmt: skip
    assert saved.status_code == 403
    assert saved.json()["error"]["code"] == "insufficient_role"


async def test_the_console_exports_a_dashboard_file_and_imports_it_as_a_new_one(
    api: Api,
) -> None:
    from shopfloor.auth.capability import IdentityService
    from shopfloor.dashboards.capability import DashboardsService
    from shopfloor.registry import Role

    registry = api.platform.get(IdentityService).registry
    org = await registry.create_org("Plant")
    root = await registry.find_user_by_email(ROOT[0])
    assert root is not None
    await registry.update_user(root.id, org_id=org.id, role=Role.ADMIN)
    store = api.platform.get(DashboardsService).store
    original = await store.create(org.id, dashboard("c1", "press"))
    await console_sign_in(api.http)
    listing = await api.http.get("/console/dashboards")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', listing.text)
    assert csrf is not None and 'data-dashboard="Line"' in listing.text

    exported = await api.http.get(f"/console/dashboards/{original.id}/export")
    assert exported.headers["content-disposition"] == 'attachment; filename="Line.dashboard.json"'
    imported = await api.http.post(
        "/console/dashboards/import", data={"csrf_token": csrf.group(1)},
        files={"file": ("Line.dashboard.json", exported.content, "application/json")},
    )  # fmt: skip
    assert imported.status_code == 303, imported.text
    new_id = imported.headers["location"].rsplit("/", 1)[1]
    assert new_id != original.id
    assert (await store.get(org.id, new_id)).document == original.document

    broken = json.loads(exported.content) | {"schemaVersion": 99}
    refused = await api.http.post(
        "/console/dashboards/import", data={"csrf_token": csrf.group(1)},
        files={"file": ("new.json", json.dumps(broken).encode(), "application/json")},
    )  # fmt: skip
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "dashboard_schema_unsupported"
    assert (await store.page(org.id)).total == 2
