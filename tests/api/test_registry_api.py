"""Things, channels and connections through the HTTP API, role by role."""

from __future__ import annotations

import pytest

from shopfloor.auth.capability import IdentityService

from .conftest import Api

MANAGERS = ["admin", "engineer"]
READERS = ["operator", "viewer"]


async def _thing(
    api: Api, headers: dict[str, str], name: str, **extra: object
) -> dict[str, object]:
    response = await api.http.post("/api/v1/things", json={"name": name, **extra}, headers=headers)
    assert response.status_code == 201, response.text
    body: dict[str, object] = response.json()
    return body


async def test_thing_lifecycle(api: Api) -> None:
    plant = await api.org("Plant")
    eng = await api.member(plant, "engineer")
    thing = await _thing(api, eng, "press-01", metadata={"line": "A"}, tags=["press", "line-a"])
    assert set(thing) == {"id", "name", "key", "metadata", "tags", "org_id", "created_at"}
    assert thing["org_id"] == plant
    assert thing["metadata"] == {"line": "A"}
    assert isinstance(thing["key"], str) and len(thing["key"]) >= 32

    url = f"/api/v1/things/{thing['id']}"
    fetched = (await api.http.get(url, headers=eng)).json()
    assert fetched["key"] == thing["key"]
    patched = await api.http.patch(url, json={"metadata": {"line": "B"}}, headers=eng)
    assert patched.json()["metadata"] == {"line": "B"}
    assert patched.json()["tags"] == ["line-a", "press"]

    rotated = await api.http.post(f"{url}/key", headers=eng)
    assert rotated.status_code == 200
    assert rotated.json()["key"] != thing["key"]

    deleted = await api.http.delete(url, headers=eng)
    assert deleted.status_code == 204
    gone = await api.http.get(url, headers=eng)
    assert gone.status_code == 404
    assert gone.json()["error"]["code"] == "thing_not_found"


async def test_paging_and_filters(api: Api) -> None:
    plant = await api.org("Plant")
    eng = await api.member(plant, "engineer")
    for i in range(7):
        await _thing(api, eng, f"machine-{i}", tags=["odd" if i % 2 else "even"])
    page = (await api.http.get("/api/v1/things?offset=2&limit=3", headers=eng)).json()
    assert (page["total"], page["offset"], page["limit"]) == (7, 2, 3)
    assert [t["name"] for t in page["items"]] == ["machine-2", "machine-3", "machine-4"]
    odd = (await api.http.get("/api/v1/things?tag=odd", headers=eng)).json()
    assert [t["name"] for t in odd["items"]] == ["machine-1", "machine-3", "machine-5"]
    named = (await api.http.get("/api/v1/things?name=chine-6", headers=eng)).json()
    assert [t["name"] for t in named["items"]] == ["machine-6"]
    too_big = await api.http.get("/api/v1/things?limit=1001", headers=eng)
    assert too_big.status_code == 422
    assert too_big.json()["error"]["code"] == "validation_error"


async def test_connections(api: Api) -> None:
    plant = await api.org("Plant")
    eng = await api.member(plant, "engineer")
    thing = await _thing(api, eng, "press-01")
    channel = (
        await api.http.post("/api/v1/channels", json={"name": "telemetry"}, headers=eng)
    ).json()
    assert set(channel) == {"id", "name", "metadata", "tags", "org_id", "created_at"}
    path = f"/api/v1/channels/{channel['id']}/things/{thing['id']}"

    connected = await api.http.put(path, headers=eng)
    assert connected.status_code == 200
    assert connected.json()["permissions"] == ["publish", "subscribe"]
    only_sub = await api.http.put(path, json={"permissions": ["subscribe"]}, headers=eng)
    assert only_sub.json()["permissions"] == ["subscribe"]

    things = (await api.http.get(f"/api/v1/channels/{channel['id']}/things", headers=eng)).json()
    assert [(t["name"], t["permissions"]) for t in things["items"]] == [("press-01", ["subscribe"])]
    channels = (await api.http.get(f"/api/v1/things/{thing['id']}/channels", headers=eng)).json()
    assert [c["name"] for c in channels["items"]] == ["telemetry"]

    bad = await api.http.put(path, json={"permissions": ["delete"]}, headers=eng)
    assert bad.status_code == 422
    empty = await api.http.put(path, json={"permissions": []}, headers=eng)
    assert empty.status_code == 422

    assert (await api.http.delete(path, headers=eng)).status_code == 204
    again = await api.http.delete(path, headers=eng)
    assert again.status_code == 404
    assert again.json()["error"]["code"] == "not_connected"


@pytest.mark.parametrize("role", MANAGERS)
async def test_managers_change_the_registry(api: Api, role: str) -> None:
    plant = await api.org("Plant")
    caller = await api.member(plant, role)
    thing = await _thing(api, caller, "press-01")
    assert thing["key"]
    channel = await api.http.post("/api/v1/channels", json={"name": "t"}, headers=caller)
    assert channel.status_code == 201
    path = f"/api/v1/channels/{channel.json()['id']}/things/{thing['id']}"
    assert (await api.http.put(path, headers=caller)).status_code == 200


@pytest.mark.parametrize("role", READERS)
async def test_readers_see_but_cannot_change(api: Api, role: str) -> None:
    plant = await api.org("Plant")
    eng = await api.member(plant, "engineer")
    thing = await _thing(api, eng, "press-01")
    channel = (await api.http.post("/api/v1/channels", json={"name": "t"}, headers=eng)).json()
    caller = await api.member(plant, role)

    listed = await api.http.get("/api/v1/things", headers=caller)
    assert listed.status_code == 200
    assert listed.json()["items"][0]["key"] is None  # keys are for admins and engineers
    single = await api.http.get(f"/api/v1/things/{thing['id']}", headers=caller)
    assert single.json()["key"] is None
    assert (await api.http.get("/api/v1/channels", headers=caller)).status_code == 200

    attempts = [
        api.http.post("/api/v1/things", json={"name": "x"}, headers=caller),
        api.http.patch(f"/api/v1/things/{thing['id']}", json={"name": "x"}, headers=caller),
        api.http.delete(f"/api/v1/things/{thing['id']}", headers=caller),
        api.http.post(f"/api/v1/things/{thing['id']}/key", headers=caller),
        api.http.post("/api/v1/channels", json={"name": "x"}, headers=caller),
        api.http.delete(f"/api/v1/channels/{channel['id']}", headers=caller),
        api.http.put(f"/api/v1/channels/{channel['id']}/things/{thing['id']}", headers=caller),
    ]
    for attempt in attempts:
        response = await attempt
        assert response.status_code == 403, response.text
        assert response.json()["error"]["code"] == "insufficient_role"


async def test_other_organisations_objects_answer_404(api: Api) -> None:
    plant = await api.org("Plant")
    rival = await api.org("Rival")
    mine = await api.member(plant, "admin")
    theirs = await api.member(rival, "admin")
    thing = await _thing(api, theirs, "secret-press")
    channel = (await api.http.post("/api/v1/channels", json={"name": "c"}, headers=theirs)).json()
    my_thing = await _thing(api, mine, "press-01")
    my_channel = (await api.http.post("/api/v1/channels", json={"name": "c"}, headers=mine)).json()

    probes = [
        api.http.get(f"/api/v1/things/{thing['id']}", headers=mine),
        api.http.patch(f"/api/v1/things/{thing['id']}", json={"name": "x"}, headers=mine),
        api.http.delete(f"/api/v1/things/{thing['id']}", headers=mine),
        api.http.post(f"/api/v1/things/{thing['id']}/key", headers=mine),
        api.http.get(f"/api/v1/things/{thing['id']}/channels", headers=mine),
        api.http.get(f"/api/v1/channels/{channel['id']}", headers=mine),
        api.http.get(f"/api/v1/channels/{channel['id']}/things", headers=mine),
        api.http.put(f"/api/v1/channels/{my_channel['id']}/things/{thing['id']}", headers=mine),
        api.http.put(f"/api/v1/channels/{channel['id']}/things/{my_thing['id']}", headers=mine),
        api.http.get(f"/api/v1/orgs/{rival}", headers=mine),
    ]
    for probe in probes:
        response = await probe
        assert response.status_code == 404, response.text
    listed = (await api.http.get("/api/v1/things", headers=mine)).json()
    assert [t["name"] for t in listed["items"]] == ["press-01"]


async def test_platform_admin_without_org_has_no_things(api: Api) -> None:
    response = await api.http.get("/api/v1/things", headers=await api.root())
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "no_organisation"


@pytest.mark.parametrize(
    ("body", "content_type", "status", "code"),
    [
        (b"{not json", "application/json", 400, "invalid_json"),
        (b'{"name": "x"}', "text/plain", 415, "unsupported_media_type"),
        (b'{"name": ""}', "application/json", 422, "validation_error"),
        (b'{"name": "x", "colour": "red"}', "application/json", 422, "validation_error"),
        (b'{"name": "x", "tags": "not-a-list"}', "application/json", 422, "validation_error"),
        (b'{"name": "x", "metadata": [1]}', "application/json", 422, "validation_error"),
        (b"[]", "application/json", 422, "validation_error"),
        (b'{"name": "a\\u0000b"}', "application/json", 422, "validation_error"),
        (b"", "application/json", 422, "validation_error"),
        (b'{"name": "' + b"x" * 2_000_000 + b'"}', "application/json", 413, "payload_too_large"),
    ],
)
async def test_malformed_bodies_get_a_4xx_with_a_code(
    api: Api, body: bytes, content_type: str, status: int, code: str
) -> None:
    plant = await api.org("Plant")
    eng = await api.member(plant, "engineer")
    response = await api.http.post(
        "/api/v1/things", content=body, headers={**eng, "Content-Type": content_type}
    )
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code


async def test_duplicate_names_conflict(api: Api) -> None:
    plant = await api.org("Plant")
    eng = await api.member(plant, "engineer")
    await _thing(api, eng, "press-01")
    response = await api.http.post("/api/v1/things", json={"name": "press-01"}, headers=eng)
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "name_taken"


def _nested(levels: int) -> dict[str, object]:
    """An object `levels` deep: {"a": {"a": ... {}}}."""
    root: dict[str, object] = {}
    node = root
    for _ in range(levels - 1):
        child: dict[str, object] = {}
        node["a"] = child
        node = child
    return root


@pytest.mark.parametrize(
    ("path", "body", "status", "code"),
    [
        ("/api/v1/things", {"name": "t", "metadata": _nested(256)}, 422, "metadata_too_deep"),
        ("/api/v1/channels", {"name": "c", "metadata": _nested(33)}, 422, "metadata_too_deep"),
        ("/api/v1/things", {"name": "t", "metadata": {"a": [[[[_nested(29)]]]]}}, 422,
         "metadata_too_deep"),
        ("/api/v1/things", {"name": "t", "metadata": {"blob": "x" * 70_000}}, 422,
         "metadata_too_large"),
    ],
)  # fmt: skip
async def test_unbounded_metadata_is_refused_at_the_door(
    api: Api, path: str, body: dict[str, object], status: int, code: str
) -> None:
    eng = await api.member(await api.org("Plant"), "engineer")

    response = await api.http.post(path, json=body, headers=eng)

    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code
    listed = await api.http.get(path, headers=eng)
    assert listed.status_code == 200 and listed.json()["total"] == 0


async def test_metadata_at_the_bounds_is_kept(api: Api) -> None:
    eng = await api.member(await api.org("Plant"), "engineer")

    thing = await _thing(api, eng, "t", metadata=_nested(32) | {"blob": "x" * 60_000})

    assert thing["metadata"] == _nested(32) | {"blob": "x" * 60_000}


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity"])
async def test_metadata_numbers_must_be_finite(api: Api, number: str) -> None:
    eng = await api.member(await api.org("Plant"), "engineer")
    thing = await _thing(api, eng, "t")
    body = '{"metadata": {"gain": ' + number + "}}"

    response = await api.http.patch(
        f"/api/v1/things/{thing['id']}",
        content=body,
        headers={**eng, "Content-Type": "application/json"},
    )

    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "invalid_metadata"
    assert "gain" in response.json()["error"]["message"]


async def test_a_deep_object_stored_earlier_cannot_break_reads(api: Api) -> None:
    org = await api.org("Plant")
    eng = await api.member(org, "engineer")
    registry = api.platform.get(IdentityService).registry
    thing, _ = await registry.create_thing(org, name="old", metadata=_nested(256))
    await registry.create_channel(org, name="old", metadata=_nested(256))

    things = await api.http.get("/api/v1/things", headers=eng)
    one = await api.http.get(f"/api/v1/things/{thing.id}", headers=eng)
    channels = await api.http.get("/api/v1/channels", headers=eng)

    assert [r.status_code for r in (things, one, channels)] == [200, 200, 200]
    shown = one.json()["metadata"]
    for _ in range(31):
        shown = shown["a"]
    assert isinstance(shown["a"], str) and shown["a"].startswith('{"a": {"a":')
