"""The relations API: roles, organisations apart, tuples in and out, check, expand,
the schema and the change feed without `follow`."""

from __future__ import annotations

from typing import Any

import pytest

from ..api.conftest import Api
from .conftest import BASE, Plant, add, make_plant, t


async def check(api: Api, user: dict[str, str], question: str) -> dict[str, Any]:
    response = await api.http.post(f"{BASE}/check", json=t(question), headers=user)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


async def test_engineers_write_everyone_reads_and_checks(api: Api, plant: Plant) -> None:
    written = await add(
        api, plant.engineer,
        "agent:cell-1 controls group:line-a", "agent:press-01 member group:line-a",
    )  # fmt: skip
    assert written == {"revision": 1, "added": 2, "unchanged": 0}
    again = await add(api, plant.engineer, "agent:cell-1 controls group:line-a")
    assert again == {"revision": 1, "added": 0, "unchanged": 1}

    for role in ("operator", "admin"):
        user = await api.member(plant.org_id, role)
        answer = await check(api, user, "agent:cell-1 reads agent:press-01")
        assert answer == {
            "allowed": True,
            "path": [
                t("agent:cell-1 controls group:line-a"),
                t("agent:press-01 member group:line-a"),
            ],
            "revision": 1,
        }
    refused = await check(api, plant.viewer, "agent:press-01 controls agent:cell-1")
    assert refused == {"allowed": False, "path": [], "reason": "not_related", "revision": 1}

    for user in (plant.viewer, await api.member(plant.org_id, "operator", "op2@plant.example")):
        for method, path, body in (
            ("POST", BASE, t("agent:x reads agent:y")),
            ("DELETE", BASE, t("agent:cell-1 controls group:line-a")),
            ("PUT", f"{BASE}/schema", {"relations": {"member": {}}}),
        ):
            response = await api.http.request(method, path, json=body, headers=user)
            assert response.status_code == 403, response.text
            assert response.json()["error"]["code"] == "insufficient_role"
        assert (await api.http.get(BASE, headers=user)).status_code == 200
    response = await api.http.post(f"{BASE}/check", json=t("agent:a reads agent:b"))
    assert response.status_code == 401
    platform_admin = await api.root()
    response = await api.http.get(BASE, headers=platform_admin)
    assert response.json()["error"]["code"] == "no_organisation"


async def test_a_check_never_sees_another_organisations_tuples(api: Api, plant: Plant) -> None:
    south = await make_plant(api, "Plant South")
    await add(api, plant.engineer, "agent:cell-1 controls agent:press-01")
    assert not (await check(api, south.engineer, "agent:cell-1 controls agent:press-01"))["allowed"]
    assert (await api.http.get(BASE, headers=south.viewer)).json()["total"] == 0
    # deleting the same tuple in the other organisation changes nothing here
    response = await api.http.request(
        "DELETE", BASE, json=t("agent:cell-1 controls agent:press-01"), headers=south.engineer
    )
    assert response.json() == {"revision": 0, "removed": 0, "unchanged": 1}
    assert (await check(api, plant.viewer, "agent:cell-1 controls agent:press-01"))["allowed"]
    expand = await api.http.post(
        f"{BASE}/expand", json={"relation": "reads", "object": "agent:press-01"},
        headers=south.viewer,
    )  # fmt: skip
    assert expand.json()["tree"]["subjects"] == []


async def test_deleting_by_body_and_by_filter(api: Api, plant: Plant) -> None:
    await add(
        api, plant.engineer,
        "agent:a reads agent:b", "agent:a writes agent:c", "agent:d reads thing:e",
        "agent:f reads thing:g",
    )  # fmt: skip
    response = await api.http.request(
        "DELETE", BASE, json={"tuples": [t("agent:a reads agent:b"), t("agent:z reads agent:b")]},
        headers=plant.engineer,
    )  # fmt: skip
    assert response.json() == {"revision": 2, "removed": 1, "unchanged": 1}
    assert not (await check(api, plant.viewer, "agent:a reads agent:b"))["allowed"]
    response = await api.http.delete(BASE, params={"object_type": "thing"}, headers=plant.engineer)
    assert response.json() == {"revision": 3, "removed": 2, "unchanged": 0}
    listed = (await api.http.get(BASE, headers=plant.viewer)).json()
    assert [(i["subject"], i["relation"], i["object"]) for i in listed["items"]] == [
        ("agent:a", "writes", "agent:c")
    ]
    for params, body in (({}, None), ({"subject": "agent:a"}, t("agent:a writes agent:c"))):
        response = await api.http.request(
            "DELETE", BASE, params=params, json=body, headers=plant.engineer
        )
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "invalid_relation_filter"


async def test_listing_is_filtered_and_paged(api: Api, plant: Plant) -> None:
    await add(api, plant.engineer, *(f"agent:m{i} member group:line-a" for i in range(30)))
    await add(api, plant.engineer, "group:ops#member reads group:line-a", "user:u reads thing:t")
    page = (await api.http.get(BASE, params={"limit": 10}, headers=plant.viewer)).json()
    assert page["total"] == 32 and len(page["items"]) == 10 and page["revision"] == 2
    assert page["items"][0]["created_at"]
    seen = [item["subject"] for item in page["items"]]
    while page["next"] is not None:
        params = {"limit": 10, "after": page["next"]}
        page = (await api.http.get(BASE, params=params, headers=plant.viewer)).json()
        seen.extend(item["subject"] for item in page["items"])
    assert len(seen) == 32
    for params, total in (
        ({"relation": "member"}, 30),
        ({"subject": "group:ops#member"}, 1),
        ({"object": "group:line-a", "relation": "reads"}, 1),
        ({"object_type": "thing"}, 1),
        ({"relation": "member", "offset": 25}, 30),
    ):
        answer = (await api.http.get(BASE, params=params, headers=plant.viewer)).json()
        assert answer["total"] == total, params
    answer = (await api.http.get(BASE, params={"offset": 25}, headers=plant.viewer)).json()
    assert len(answer["items"]) == 7
    for params, code in (
        ({"object": "line-a"}, "invalid_relation_filter"),
        ({"subject": "agent:a b"}, "invalid_relation_filter"),
        ({"after": "x"}, "invalid_relation_filter"),
    ):
        response = await api.http.get(BASE, params=params, headers=plant.viewer)
        assert response.status_code == 400 and response.json()["error"]["code"] == code


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (t("agent:a owns agent:b"), 400, "unknown_relation"),
        (t("agent:a reads agent"), 400, "invalid_relation_object"),
        (t("agent:a#reads# reads agent:b"), 400, "invalid_relation_subject"),
        (t("agent:a#reads member group:b"), 400, "invalid_relation_tuple"),
        ({"subject": "agent:a", "relation": "reads"}, 422, "validation_error"),
        ({**t("agent:a reads agent:b"), "note": "x"}, 422, "validation_error"),
        ({"tuples": [t(f"agent:a{i} reads agent:b") for i in range(1001)]}, 413,
         "too_many_relation_tuples"),
    ],
)  # fmt: skip
async def test_bad_writes_are_refused_and_change_nothing(
    api: Api, plant: Plant, body: dict[str, Any], status: int, code: str
) -> None:
    response = await api.http.post(BASE, json=body, headers=plant.engineer)
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code
    assert (await api.http.get(BASE, headers=plant.viewer)).json()["total"] == 0


async def test_a_batch_of_a_thousand_is_one_revision(api: Api, plant: Plant) -> None:
    lines = [f"agent:m{i} member group:line-{i % 10}" for i in range(1000)]
    assert (await add(api, plant.engineer, *lines))["added"] == 1000
    changes = await api.http.get(f"{BASE}/changes", params={"since": 0}, headers=plant.viewer)
    body = changes.json()
    assert body["revision"] == 1 and len(body["changes"]) == 1000


async def test_checks_refuse_bad_questions(api: Api, plant: Plant) -> None:
    for question, code in (
        ("group:ops#member reads agent:b", "invalid_relation_subject"),
        ("agent:a owns agent:b", "unknown_relation"),
        ("agent:a reads b", "invalid_relation_object"),
    ):
        response = await api.http.post(f"{BASE}/check", json=t(question), headers=plant.viewer)
        assert response.status_code == 400
        assert response.json()["error"]["code"] == code


async def test_expand(api: Api, plant: Plant) -> None:
    await add(
        api, plant.engineer,
        "agent:tool writes agent:press-01", "agent:press-01 member group:line-a",
        "group:ops#member controls group:line-a", "user:ann member group:ops",
    )  # fmt: skip
    response = await api.http.post(
        f"{BASE}/expand", json={"relation": "reads", "object": "agent:press-01"},
        headers=plant.viewer,
    )  # fmt: skip
    body = response.json()
    assert body["revision"] == 1 and not body["truncated"]
    tree = body["tree"]
    assert tree["subjects"] == [{"subject": "agent:tool", "relation": "writes"}]
    line = tree["children"][0]["node"]
    assert line["object"] == "group:line-a"
    ops = line["children"][0]
    assert ops["tuple"] == t("group:ops#member controls group:line-a")
    assert ops["node"]["subjects"] == [{"subject": "user:ann", "relation": "member"}]


async def test_the_schema_is_read_replaced_and_enforced(api: Api, plant: Plant) -> None:
    body = (await api.http.get(f"{BASE}/schema", headers=plant.viewer)).json()
    assert not body["custom"] and body["revision"] == 0 and body["updated_at"] is None
    assert body["schema"]["relations"]["reads"]["implied_by"] == ["controls", "writes"]

    await add(api, plant.engineer, "agent:a controls agent:b")
    yaml = "relations:\n  member: {}\n  controls: {}\n  observes: {implied_by: [controls]}\n"
    response = await api.http.put(
        f"{BASE}/schema",
        content=yaml,
        headers={**plant.engineer, "Content-Type": "application/yaml"},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["custom"] and body["revision"] == 2 and body["updated_at"]
    assert set(body["schema"]["relations"]) == {"member", "controls", "observes"}
    assert (await check(api, plant.viewer, "agent:a observes agent:b"))["allowed"]
    response = await api.http.post(
        f"{BASE}/check", json=t("agent:a reads agent:b"), headers=plant.viewer
    )
    assert response.json()["error"]["code"] == "unknown_relation"

    # the JSON form; dropping a relation tuples use is refused
    response = await api.http.put(
        f"{BASE}/schema", json={"relations": {"member": {}, "observes": {}}}, headers=plant.engineer
    )
    assert response.status_code == 409 and response.json()["error"]["code"] == "relation_in_use"
    for content, media, status, code in (
        ("relations: {member: {}, a: {implied_by: [a]}}", "application/yaml", 400,
         "relation_schema_cycle"),
        ("relations: [member]", "application/yaml", 400, "invalid_relation_schema"),
        ("relations: {member: {}}", "text/plain", 415, "relation_schema_media_type"),
        ("#" * (65 * 1024), "application/yaml", 413, "relation_schema_too_large"),
    ):  # fmt: skip
        response = await api.http.put(
            f"{BASE}/schema", content=content, headers={**plant.engineer, "Content-Type": media}
        )
        assert response.status_code == status, response.text
        assert response.json()["error"]["code"] == code
    other = await make_plant(api, "Plant South")
    assert not (await api.http.get(f"{BASE}/schema", headers=other.viewer)).json()["custom"]


async def test_changes_without_follow(api: Api, plant: Plant) -> None:
    now = (await api.http.get(f"{BASE}/changes", headers=plant.viewer)).json()
    assert now == {"revision": 0, "reset": False, "more": False, "changes": []}
    await add(api, plant.engineer, "agent:a reads agent:b")
    await add(api, plant.engineer, "agent:c reads agent:b")
    await api.http.request("DELETE", BASE, json=t("agent:a reads agent:b"), headers=plant.engineer)
    body = (await api.http.get(f"{BASE}/changes", params={"since": 1}, headers=plant.viewer)).json()
    assert body["revision"] == 3 and not body["more"]
    assert body["changes"] == [
        {"revision": 2, "op": "add", "tuple": t("agent:c reads agent:b")},
        {"revision": 3, "op": "remove", "tuple": t("agent:a reads agent:b")},
    ]
    params = {"since": 0, "limit": 1}
    body = (await api.http.get(f"{BASE}/changes", params=params, headers=plant.viewer)).json()
    assert body["revision"] == 1 and body["more"] and len(body["changes"]) == 1
    params = {"since": 9}
    body = (await api.http.get(f"{BASE}/changes", params=params, headers=plant.viewer)).json()
    assert body["reset"] and body["revision"] == 3
