"""Managing configurations and the Mainflux-compatible device fetch, through the app."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from shopfloor.auth.capability import IdentityService
from shopfloor.bootstrap import Bootstrap, ConfigStore, TokenBuckets
from shopfloor.core.capability import DatabaseService

from ..api.conftest import Api
from .conftest import Plant, configure, make_plant, new_key

CONFIGS = "/api/v1/bootstrap/configs"


async def _connected(api: Api, org_id: str, thing_id: str) -> set[str]:
    registry = api.platform.get(IdentityService).registry
    page = await registry.thing_channels(org_id, thing_id)
    return {channel.id for channel, _ in page.items}


async def test_a_config_without_thing_creates_one_inactive_and_unconnected(
    api: Api, plant: Plant
) -> None:
    config = await configure(api, plant, "aa:bb:cc:00:00:01", new_key(), content='{"rate": 5}')
    assert config["state"] == 0 and config["channels"] == plant.channels
    assert config["content"] == '{"rate": 5}' and config["name"] == "aa:bb:cc:00:00:01"
    assert "external_key" not in config and "client_key" not in config
    thing = await api.http.get(f"/api/v1/things/{config['thing_id']}", headers=plant.engineer)
    assert thing.status_code == 200 and thing.json()["name"] == "aa:bb:cc:00:00:01"
    assert await _connected(api, plant.org_id, config["thing_id"]) == set()


async def test_activating_connects_and_deactivating_disconnects(api: Api, plant: Plant) -> None:
    config = await configure(api, plant, "dev-1", new_key())
    thing = config["thing_id"]
    state = f"{CONFIGS}/{thing}/state"
    response = await api.http.put(state, json={"state": 1}, headers=plant.engineer)
    assert response.status_code == 200 and response.json()["state"] == 1
    assert await _connected(api, plant.org_id, thing) == set(plant.channels)

    # the channel list changes the live connections of an active thing
    connections = f"{CONFIGS}/{thing}/connections"
    response = await api.http.put(
        connections, json={"channels": plant.channels[:1]}, headers=plant.engineer
    )
    assert response.status_code == 200 and response.json()["channels"] == plant.channels[:1]
    assert await _connected(api, plant.org_id, thing) == {plant.channels[0]}

    response = await api.http.put(state, json={"state": 0}, headers=plant.engineer)
    assert response.status_code == 200 and response.json()["state"] == 0
    assert await _connected(api, plant.org_id, thing) == set()

    # inactive: the list changes, the registry does not
    await api.http.put(connections, json={"channels": plant.channels}, headers=plant.engineer)
    assert await _connected(api, plant.org_id, thing) == set()
    response = await api.http.put(state, json={"state": 2}, headers=plant.engineer)
    assert response.status_code == 422


async def test_existing_thing_update_certs_list_and_delete(api: Api, plant: Plant) -> None:
    thing = await api.http.post("/api/v1/things", json={"name": "press"}, headers=plant.engineer)
    thing_id = thing.json()["id"]
    config = await configure(api, plant, "press-1", new_key(), thing_id=thing_id, channels=[])
    assert config["thing_id"] == thing_id
    url = f"{CONFIGS}/{thing_id}"

    response = await api.http.put(
        url, json={"name": "Press 1", "content": "x"}, headers=plant.engineer
    )
    assert response.json()["name"] == "Press 1" and response.json()["content"] == "x"
    response = await api.http.patch(
        f"{url}/certs",
        json={"client_cert": "CERT", "client_key": "KEY", "ca_cert": "CA"},
        headers=plant.engineer,
    )
    body = response.json()
    assert body["client_cert"] == "CERT" and body["ca_cert"] == "CA" and body["has_client_key"]
    assert "KEY" not in response.text

    await configure(api, plant, "oven-1", new_key())
    page = (await api.http.get(CONFIGS, headers=plant.engineer)).json()
    assert page["total"] == 2 and {"total", "offset", "limit", "items"} <= set(page)
    by_name = await api.http.get(CONFIGS, params={"name": "press"}, headers=plant.engineer)
    assert [c["thing_id"] for c in by_name.json()["items"]] == [thing_id]
    by_id = await api.http.get(CONFIGS, params={"external_id": "oven-1"}, headers=plant.engineer)
    assert by_id.json()["total"] == 1
    inactive = await api.http.get(CONFIGS, params={"state": 1}, headers=plant.engineer)
    assert inactive.json()["total"] == 0

    assert (await api.http.delete(url, headers=plant.engineer)).status_code == 204
    assert (await api.http.get(url, headers=plant.engineer)).status_code == 404
    # the thing stays
    assert (await api.http.get(f"/api/v1/things/{thing_id}", headers=plant.engineer)).is_success


async def test_conflicts_and_invalid_input(api: Api, plant: Plant) -> None:
    config = await configure(api, plant, "dup", new_key())
    body = {"external_id": "dup", "external_key": new_key(), "name": "other"}
    response = await api.http.post(CONFIGS, json=body, headers=plant.engineer)
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "bootstrap_external_id_taken"
    things = await api.http.get("/api/v1/things", headers=plant.engineer)
    assert things.json()["total"] == 1  # no thing left behind
    body = {"external_id": "dup-2", "external_key": new_key(), "name": "x",
            "thing_id": config["thing_id"]}  # fmt: skip
    response = await api.http.post(CONFIGS, json=body, headers=plant.engineer)
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "bootstrap_config_exists"
    weak = {"external_id": "weak", "external_key": "short", "name": "weak"}
    assert (await api.http.post(CONFIGS, json=weak, headers=plant.engineer)).status_code == 422
    slash = {"external_id": "a/b", "external_key": new_key(), "name": "slash"}
    assert (await api.http.post(CONFIGS, json=slash, headers=plant.engineer)).status_code == 422


async def test_organisations_see_only_their_configs_and_channels(api: Api, plant: Plant) -> None:
    config = await configure(api, plant, "mine", new_key())
    other = await make_plant(api, "Other plant", channels=1)
    url = f"{CONFIGS}/{config['thing_id']}"
    response = await api.http.get(url, headers=other.engineer)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "bootstrap_config_not_found"
    for call in (
        api.http.put(f"{url}/state", json={"state": 1}, headers=other.engineer),
        api.http.delete(url, headers=other.engineer),
    ):
        assert (await call).status_code == 404
    assert (await api.http.get(CONFIGS, headers=other.engineer)).json()["total"] == 0
    # another organisation's channel cannot be listed
    body = {"external_id": "theirs", "external_key": new_key(), "name": "theirs",
            "channels": plant.channels}  # fmt: skip
    response = await api.http.post(CONFIGS, json=body, headers=other.engineer)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "channel_not_found"


async def test_viewers_read_but_do_not_manage(api: Api, plant: Plant) -> None:
    config = await configure(api, plant, "ro", new_key())
    viewer = await api.member(plant.org_id, "viewer")
    assert (await api.http.get(f"{CONFIGS}/{config['thing_id']}", headers=viewer)).is_success
    body = {"external_id": "v", "external_key": new_key(), "name": "v"}
    response = await api.http.post(CONFIGS, json=body, headers=viewer)
    assert response.status_code == 403
    response = await api.http.put(
        f"{CONFIGS}/{config['thing_id']}/state", json={"state": 1}, headers=viewer
    )
    assert response.status_code == 403


async def test_deleting_the_thing_removes_its_config(api: Api, plant: Plant) -> None:
    config = await configure(api, plant, "gone", new_key())
    thing = config["thing_id"]
    response = await api.http.delete(f"/api/v1/things/{thing}", headers=plant.engineer)
    assert response.status_code == 204
    assert (await api.http.get(f"{CONFIGS}/{thing}", headers=plant.engineer)).status_code == 404


async def test_mainflux_fetch_answers_mainflux_fields(api: Api, plant: Plant) -> None:
    key = new_key()
    config = await configure(
        api, plant, "mf-1", key, content="cfg", client_cert="CC", client_key="CK", ca_cert="CA"
    )
    registry = api.platform.get(IdentityService).registry
    thing = await registry.get_thing(plant.org_id, config["thing_id"])
    for path, authorization in (
        ("/bootstrap/mf-1", f"Thing {key}"),
        ("/things/bootstrap/mf-1", f"Thing {key}"),
        ("/things/bootstrap/mf-1", key),  # the bare key, as Mainflux clients send it
    ):
        response = await api.http.get(path, headers={"Authorization": authorization})
        assert response.status_code == 200, response.text
        body = response.json()
        assert list(body) == [
            "mainflux_id", "mainflux_key", "mainflux_channels", "content", "client_cert",
            "client_key", "ca_cert", "shopfloor",
        ]  # fmt: skip
        assert body["mainflux_id"] == thing.id
        assert body["mainflux_key"] == registry.thing_key(thing)
        assert [c["id"] for c in body["mainflux_channels"]] == plant.channels
        assert set(body["mainflux_channels"][0]) == {"id", "name", "metadata"}
        assert body["mainflux_channels"][0]["name"] == "line-0"
        assert (body["content"], body["client_cert"], body["client_key"], body["ca_cert"]) == (
            "cfg", "CC", "CK", "CA",
        )  # fmt: skip
        assert body["shopfloor"] == {"state": 0, "mqtt_url": "", "mqtts_url": "", "http_url": ""}


async def test_wrong_key_and_unknown_id_answer_alike(api: Api, plant: Plant) -> None:
    config = await configure(api, plant, "known", new_key())
    wrong = await api.http.get("/bootstrap/known", headers={"Authorization": f"Thing {new_key()}"})
    unknown = await api.http.get(
        "/bootstrap/nobody", headers={"Authorization": f"Thing {new_key()}"}
    )
    assert wrong.status_code == unknown.status_code == 403
    assert wrong.json() == unknown.json()
    assert wrong.json()["error"]["code"] == "bootstrap_denied"
    missing = await api.http.get("/bootstrap/known")
    assert missing.status_code == 400 and missing.json()["error"]["code"] == "bootstrap_key_missing"

    got = await api.http.get(f"{CONFIGS}/{config['thing_id']}", headers=plant.engineer)
    assert got.json()["failed_attempts"] == 1

    admin = await api.member(plant.org_id, "admin")
    page = (await api.http.get("/api/v1/bootstrap/unknown", headers=admin)).json()
    assert [d["external_id"] for d in page["items"]] == ["nobody"]  # not "known"
    assert page["items"][0]["attempts"] == 1 and page["items"][0]["last_address"] == "127.0.0.1"
    root = (await api.http.get("/api/v1/bootstrap/unknown", headers=await api.root())).json()
    assert root["total"] == 1
    denied = await api.http.get("/api/v1/bootstrap/unknown", headers=plant.engineer)
    assert denied.status_code == 403

    # configuring the id takes it off the list
    await configure(api, plant, "nobody", new_key())
    assert (await api.http.get("/api/v1/bootstrap/unknown", headers=admin)).json()["total"] == 0


async def test_device_routes_are_rate_limited(api: Api, plant: Plant, bootstrap: Bootstrap) -> None:
    now = [0.0]
    bootstrap.limits.by_external_id = TokenBuckets(per_minute=6, burst=3, clock=lambda: now[0])
    key = new_key()
    await configure(api, plant, "busy", key)
    headers = {"Authorization": f"Thing {key}"}
    for _ in range(3):
        assert (await api.http.get("/bootstrap/busy", headers=headers)).status_code == 200
    limited = await api.http.get("/bootstrap/busy", headers=headers)
    assert limited.status_code == 429
    assert limited.json()["error"]["code"] == "bootstrap_rate_limited"
    assert limited.headers["Retry-After"] == "10"  # 6 a minute: one more in 10 s
    challenge = await api.http.post("/bootstrap/busy/challenge")
    assert challenge.status_code == 429  # one limit for both routes
    # another id is not held back by this one's limit
    assert (await api.http.post("/bootstrap/other/challenge")).status_code == 200
    now[0] += 10
    assert (await api.http.get("/bootstrap/busy", headers=headers)).status_code == 200


async def test_source_addresses_are_rate_limited(
    api: Api, plant: Plant, bootstrap: Bootstrap
) -> None:
    bootstrap.limits.by_address = TokenBuckets(per_minute=1, burst=2, clock=lambda: 0.0)
    for external_id in ("a", "b"):
        assert (await api.http.post(f"/bootstrap/{external_id}/challenge")).status_code == 200
    assert (await api.http.post("/bootstrap/c/challenge")).status_code == 429
    async with api.client_from("10.1.2.3") as elsewhere:
        assert (await elsewhere.post("/bootstrap/c/challenge")).status_code == 200


async def test_keys_are_not_stored_in_clear(api: Api, plant: Plant) -> None:
    key = new_key()
    await configure(api, plant, "raw", key, client_key="-----BEGIN PRIVATE KEY----- sekrit")
    engine = api.platform.get(DatabaseService).engine
    async with engine.connect() as conn:
        rows = (await conn.execute(sa.text("SELECT * FROM bootstrap_configs"))).all()
    dumped = repr(rows)
    assert rows and key not in dumped and "sekrit" not in dumped


async def test_an_activation_that_fails_leaves_the_thing_unconnected(
    api: Api, plant: Plant, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The connections and the state commit together: a failure storing the state takes
    # the connections made before it back, and nobody hears of them.
    config = await configure(api, plant, "dev-9", new_key())
    thing = config["thing_id"]

    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("the state could not be stored")

    monkeypatch.setattr(ConfigStore, "set_state", broken)
    heard: list[str] = []
    registry = api.platform.get(IdentityService).registry
    remove = registry.add_listener(lambda change: heard.append(change.kind.value))
    try:
        with pytest.raises(RuntimeError):
            await api.http.put(
                f"{CONFIGS}/{thing}/state", json={"state": 1}, headers=plant.engineer
            )
    finally:
        remove()
    assert await _connected(api, plant.org_id, thing) == set()
    assert heard == []
