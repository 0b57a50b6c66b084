"""`/api/v1/dashboards`: CRUD, versions, export and import, roles, organisations."""

from __future__ import annotations

from typing import Any

import pytest

from shopfloor.dashboards import SCHEMA_VERSION
from shopfloor.dashboards import _model as model
from shopfloor.messaging.capability import BusService
from tests.api.conftest import Api

URL = "/api/v1/dashboards"


def document(title: str = "Line A", **extra: Any) -> dict[str, Any]:
    return {
        "schemaVersion": SCHEMA_VERSION,
        "title": title,
        "variables": [{"name": "machine", "kind": "thing", "default": ""}],
        "time": {"from": "now-6h", "to": "now"},
        "refresh": "10s",
        "panels": [
            {
                "id": "temp", "type": "line", "title": "Temperature",
                "grid": {"x": 0, "y": 0, "w": 12, "h": 8},
                "query": {"channel": "c1", "name": "temperature", "publisher": "$machine"},
                "options": {"unit": "Cel", "min": 0, "max": 300, "decimals": 1,
                            "thresholds": [{"value": 250, "color": "#d62728"}]},
            },
            {
                "id": "count", "type": "bar", "title": "Records",
                "query": {"channel": "c1", "aggregation": "count", "interval": "1m"},
            },
        ],
        **extra,
    }  # fmt: skip


async def test_create_read_change_list_and_delete(api: Api) -> None:
    org = await api.org("Plant")
    engineer = await api.member(org, "engineer")
    changes: list[dict[str, Any]] = []
    api.platform.get(BusService).events.listen("dashboards.>", lambda e: changes.append(e.data))

    created = await api.http.post(URL, json=document(), headers=engineer)
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["version"] == 1 and body["panels"][0]["query"]["publisher"] == "$machine"
    dashboard_id = body["id"]

    changed = document("Line A, hall 2") | {"version": 1}
    put = await api.http.put(f"{URL}/{dashboard_id}", json=changed, headers=engineer)
    assert put.status_code == 200, put.text
    assert put.json()["version"] == 2 and put.json()["title"] == "Line A, hall 2"

    await api.http.post(URL, json=document("Boilers"), headers=engineer)
    listed = (await api.http.get(URL, params={"limit": 1}, headers=engineer)).json()
    assert listed["total"] == 2 and [d["title"] for d in listed["items"]] == ["Boilers"]

    deleted = await api.http.delete(f"{URL}/{dashboard_id}", headers=engineer)
    assert deleted.status_code == 204
    gone = await api.http.get(f"{URL}/{dashboard_id}", headers=engineer)
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "dashboard_not_found"
    ops = [(c["dashboard_id"] == dashboard_id, c["op"], c["version"]) for c in changes]
    assert ops == [(True, "put", 1), (True, "put", 2), (False, "put", 1), (True, "delete", None)]


async def test_a_save_over_a_stale_version_is_409_and_changes_nothing(api: Api) -> None:
    org = await api.org("Plant")
    admin = await api.member(org, "admin")
    dashboard_id = (await api.http.post(URL, json=document(), headers=admin)).json()["id"]
    first = document("Mine") | {"version": 1}
    assert (await api.http.put(f"{URL}/{dashboard_id}", json=first, headers=admin)).is_success

    stale = document("Theirs") | {"version": 1}
    refused = await api.http.put(f"{URL}/{dashboard_id}", json=stale, headers=admin)
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "dashboard_version_conflict"
    assert "changed by someone else: reload" in refused.json()["error"]["message"]
    stored = (await api.http.get(f"{URL}/{dashboard_id}", headers=admin)).json()
    assert stored["title"] == "Mine" and stored["version"] == 2


async def test_export_then_import_is_the_same_dashboard_under_a_new_id(api: Api) -> None:
    org = await api.org("Plant")
    engineer = await api.member(org, "engineer")
    original = (await api.http.post(URL, json=document(), headers=engineer)).json()
    exported = await api.http.get(f"{URL}/{original['id']}/export", headers=engineer)
    assert exported.status_code == 200
    assert "attachment" in exported.headers["content-disposition"]
    file = exported.json()
    assert "id" not in file and "version" not in file

    imported = await api.http.post(f"{URL}/import", json=file, headers=engineer)
    assert imported.status_code == 201, imported.text
    copy = imported.json()
    assert copy["id"] != original["id"] and copy["version"] == 1
    strip = ("id", "version", "created_at", "updated_at")
    assert {k: v for k, v in copy.items() if k not in strip} == file
    again = await api.http.post(f"{URL}/import", json=copy, headers=engineer)  # an answer, too
    assert again.status_code == 201 and again.json()["id"] not in (copy["id"], original["id"])


@pytest.mark.parametrize(
    ("change", "field", "code"),
    [
        ({"schemaVersion": SCHEMA_VERSION + 1}, "schemaVersion", "dashboard_schema_unsupported"),
        ({"schemaVersion": 0}, "schemaVersion", "invalid_dashboard"),
        ({"refresh": "1s"}, "refresh", "invalid_dashboard"),
        ({"time": {"from": "yesterday"}}, "time.from", "invalid_dashboard"),
        ({"panels": [{"id": "p", "type": "pie", "query": {"channel": "c"}}]},
         "panels.0.type", "invalid_dashboard"),
        ({"panels": [{"id": "p", "type": "line", "query": {"channel": "c", "interval": "1m"}}]},
         "panels.0.query", "invalid_dashboard"),
        ({"panels": [{"id": f"p{i}", "type": "stat", "query": {"channel": "c"}}
                     for i in range(model.MAX_PANELS + 1)]}, "panels", "invalid_dashboard"),
        ({"panels": [{"id": "p", "type": "stat", "query": {"channel": "c", "limit": 10001}}]},
         "panels.0.query.limit", "invalid_dashboard"),
    ],
)  # fmt: skip
async def test_a_bad_document_is_refused_naming_the_field(
    api: Api, change: dict[str, Any], field: str, code: str
) -> None:
    org = await api.org("Plant")
    engineer = await api.member(org, "engineer")
    refused = await api.http.post(f"{URL}/import", json=document() | change, headers=engineer)
    assert refused.status_code == 400, refused.text
    error = refused.json()["error"]
    assert error["code"] == code
    assert field in [d["field"] for d in error["details"]], error
    assert (await api.http.get(URL, headers=engineer)).json()["total"] == 0


async def test_an_older_schema_version_is_migrated_on_import(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a version 2 whose step from 1 fills the description (the chain is the
    platform's, the step the test's: version 1 is the only one there is yet)."""

    def rename(raw: dict[str, Any]) -> dict[str, Any]:
        raw["description"] = "migrated from 1"
        return raw

    monkeypatch.setattr(model, "SCHEMA_VERSION", 2)
    monkeypatch.setitem(model.MIGRATIONS, 1, rename)
    org = await api.org("Plant")
    engineer = await api.member(org, "engineer")
    imported = await api.http.post(
        f"{URL}/import", json=document(schemaVersion=1), headers=engineer
    )
    assert imported.status_code == 201, imported.text
    assert imported.json()["schemaVersion"] == 2
    assert imported.json()["description"] == "migrated from 1"


@pytest.mark.parametrize("role", ["operator", "viewer"])
async def test_members_who_may_not_change_read_but_are_refused_changes(api: Api, role: str) -> None:
    org = await api.org("Plant")
    engineer = await api.member(org, "engineer")
    member = await api.member(org, role)
    dashboard_id = (await api.http.post(URL, json=document(), headers=engineer)).json()["id"]
    assert (await api.http.get(f"{URL}/{dashboard_id}", headers=member)).status_code == 200
    assert (await api.http.get(f"{URL}/{dashboard_id}/export", headers=member)).is_success
    attempts = [
        api.http.post(URL, json=document(), headers=member),
        api.http.post(f"{URL}/import", json=document(), headers=member),
        api.http.put(f"{URL}/{dashboard_id}", json=document() | {"version": 1}, headers=member),
        api.http.delete(f"{URL}/{dashboard_id}", headers=member),
    ]
    for attempt in attempts:
        refused = await attempt
        assert refused.status_code == 403
        assert refused.json()["error"]["code"] == "insufficient_role"


async def test_another_organisations_dashboard_is_not_found(api: Api) -> None:
    mine = await api.member(await api.org("Plant"), "admin")
    theirs = await api.member(await api.org("Elsewhere"), "admin")
    dashboard_id = (await api.http.post(URL, json=document(), headers=mine)).json()["id"]
    for method, path in (
        ("GET", dashboard_id), ("GET", f"{dashboard_id}/export"), ("DELETE", dashboard_id)
    ):  # fmt: skip
        response = await api.http.request(method, f"{URL}/{path}", headers=theirs)
        assert response.status_code == 404 and response.json()["error"]["code"] == (
            "dashboard_not_found"
        )
    put = await api.http.put(
        f"{URL}/{dashboard_id}", json=document() | {"version": 1}, headers=theirs
    )
    assert put.status_code == 404
    assert (await api.http.get(URL, headers=theirs)).json()["total"] == 0


async def test_the_demo_dashboard_is_seeded_once_over_the_demo_plant(api: Api) -> None:
    from shopfloor.auth.capability import IdentityService
    from shopfloor.dashboards.capability import DashboardsService
    from shopfloor.dashboards.demo import seed_demo_dashboard
    from shopfloor.demo import seed_demo

    plant = await seed_demo(api.platform.get(IdentityService).registry, admin_email="")
    store = api.platform.get(DashboardsService).store
    first = await seed_demo_dashboard(store, plant)
    again = await seed_demo_dashboard(store, plant)  # a restart
    assert again.id == first.id and (await store.page(plant.org_id)).total == 1
    queried = {p.query.channel for p in first.document.panels}
    assert queried == {plant.channel_id}
    publishers = {p.query.publisher for p in first.document.panels} - {None, "$machine"}
    assert publishers == {t.id for t in plant.things}  # every simulated machine
