"""Provisioning through the API: templates, preview, and all-or-nothing provisioning.

Runs on SQLite and on PostgreSQL (the `database_url` fixture).
"""

from __future__ import annotations

from typing import Any

import pytest
from cryptography import x509

from shopfloor.auth.capability import IdentityService
from shopfloor.bootstrap import ConfigStore
from shopfloor.bootstrap.capability import BootstrapService
from shopfloor.pki import Certificates, entity_of
from shopfloor.pki.capability import PkiService
from shopfloor.registry import RegistryTransaction

from ..api.conftest import Api
from .conftest import Plant

PRESS = """
name: press
version: 1
thing:
  name: "${name}"
  metadata: {vendor: "${vendor}"}
  tags: [press]
channels:
  - name: "${name} telemetry"
  - name: plant alarms
    permissions: [publish]
certificate: {issue: true, ttl: 720h}
bootstrap:
  content: {interval_s: 10}
"""
YAML = {"Content-Type": "application/yaml"}


def device(number: int, **extra: Any) -> dict[str, Any]:
    return {
        "external_id": f"00:1b:44:11:3a:{number:02x}",
        "external_key": f"label-secret-{number:04d}-xyz",
        "name": f"press-{number}",
        "template": "press",
        "variables": {"vendor": "Acme"},
        **extra,
    }


async def add_template(api: Api, plant: Plant, source: str = PRESS) -> dict[str, Any]:
    response = await api.http.post(
        "/api/v1/provision/templates", content=source, headers=plant.engineer | YAML
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def counts(api: Api, plant: Plant) -> dict[str, int]:
    registry = api.platform.get(IdentityService).registry
    configs = api.platform.get(BootstrapService).configs
    certs = api.platform.get(PkiService).certs
    return {
        "things": (await registry.list_things(plant.org_id)).total,
        "channels": (await registry.list_channels(plant.org_id)).total,
        "configs": (await configs.page(plant.org_id, offset=0, limit=10)).total,
        "certificates": (await certs.list(plant.org_id)).total,
    }


async def test_a_device_is_provisioned_from_its_template(api: Api, plant: Plant) -> None:
    await add_template(api, plant)
    first = await api.http.post("/api/v1/provision", json=device(1), headers=plant.engineer)
    assert first.status_code == 201, first.text
    body = first.json()
    assert (body["template"], body["version"]) == ("press", 1)
    assert body["thing"]["name"] == "press-1" and body["thing"]["key"]
    assert body["thing"]["metadata"] == {"vendor": "Acme"}
    assert [(c["name"], c["created"]) for c in body["channels"]] == [
        ("press-1 telemetry", True),
        ("plant alarms", True),
    ]
    config = body["bootstrap"]
    assert config["external_id"] == "00:1b:44:11:3a:01" and config["state"] == 1
    assert config["content"] == '{"interval_s":10}' and config["has_client_key"]
    certificate = x509.load_pem_x509_certificate(body["certificate"]["cert_pem"].encode())
    assert entity_of(certificate).id == body["thing"]["id"]
    assert "key_pem" not in body["certificate"]

    # A second press reuses the shared channel by name; the thing is connected to both.
    second = await api.http.post("/api/v1/provision", json=device(2), headers=plant.engineer)
    assert second.status_code == 201, second.text
    channels = second.json()["channels"]
    assert [(c["name"], c["created"]) for c in channels] == [
        ("press-2 telemetry", True),
        ("plant alarms", False),
    ]
    connected = await api.http.get(
        f"/api/v1/things/{second.json()['thing']['id']}/channels", headers=plant.engineer
    )
    permissions = {c["name"]: c["permissions"] for c in connected.json()["items"]}
    assert permissions == {
        "press-2 telemetry": ["publish", "subscribe"],
        "plant alarms": ["publish"],
    }


async def test_the_device_bootstraps_with_what_provisioning_made(api: Api, plant: Plant) -> None:
    await add_template(api, plant)
    made = (await api.http.post("/api/v1/provision", json=device(3), headers=plant.engineer)).json()
    fetched = await api.http.get(
        "/bootstrap/00:1b:44:11:3a:03", headers={"Authorization": "Thing label-secret-0003-xyz"}
    )
    assert fetched.status_code == 200, fetched.text
    document = fetched.json()
    assert document["mainflux_id"] == made["thing"]["id"]
    assert document["mainflux_key"] == made["thing"]["key"]
    assert {c["name"] for c in document["mainflux_channels"]} == {
        "press-3 telemetry",
        "plant alarms",
    }
    assert document["client_cert"] == made["certificate"]["cert_pem"]
    assert "PRIVATE KEY" in document["client_key"]


async def test_preview_creates_nothing(api: Api, plant: Plant) -> None:
    await add_template(api, plant)
    before = await counts(api, plant)
    response = await api.http.post(
        "/api/v1/provision/templates/press/preview",
        json={"name": "press-9", "external_id": "x-9", "variables": {"vendor": "Acme"}},
        headers=plant.viewer,
    )
    assert response.status_code == 200, response.text
    plan = response.json()
    assert plan["thing"]["name"] == "press-9"
    assert [c["name"] for c in plan["channels"]] == ["press-9 telemetry", "plant alarms"]
    assert plan["certificate"] == {"ttl_seconds": 720 * 3600}
    assert await counts(api, plant) == before
    missing = await api.http.post(
        "/api/v1/provision/templates/press/preview",
        json={"name": "press-9", "external_id": "x-9"},
        headers=plant.viewer,
    )
    assert missing.status_code == 400
    assert missing.json()["error"]["code"] == "template_variables_missing"


class Injected(Exception):
    """The failure a test makes happen half-way."""


def fail_after(original: Any) -> Any:
    async def failing(*args: Any, **kwargs: Any) -> Any:
        await original(*args, **kwargs)  # the step is done, in the transaction
        raise Injected("injected after the step")

    return failing


@pytest.mark.parametrize(
    ("owner", "step"),
    [
        (RegistryTransaction, "create_thing"),
        (RegistryTransaction, "create_channel"),
        (RegistryTransaction, "connect"),
        (Certificates, "issue"),
        (ConfigStore, "create"),
    ],
)
async def test_a_failure_half_way_leaves_nothing(
    api: Api, plant: Plant, monkeypatch: pytest.MonkeyPatch, owner: type, step: str
) -> None:
    await add_template(api, plant)
    before = await counts(api, plant)
    withdrawn: list[str] = []

    async def withdraw(self: Certificates, serial: str) -> None:
        withdrawn.append(serial)

    monkeypatch.setattr(owner, step, fail_after(getattr(owner, step)))
    monkeypatch.setattr(Certificates, "withdraw", withdraw)
    heard: list[str] = []
    registry = api.platform.get(IdentityService).registry
    remove = registry.add_listener(lambda change: heard.append(change.kind.value))
    try:
        with pytest.raises(Injected):
            await api.http.post("/api/v1/provision", json=device(4), headers=plant.engineer)
    finally:
        remove()
    assert await counts(api, plant) == before
    assert heard == []  # nobody was told of a thing that never was
    # A certificate the CA signed before a later step failed is withdrawn at the CA again
    # (the injected failure of `issue` itself comes after it returned to the wrapper, so
    # the provisioner never held its serial: its record rolls back with the rest).
    assert len(withdrawn) == (1 if step == "create" else 0)
    monkeypatch.undo()
    again = await api.http.post("/api/v1/provision", json=device(4), headers=plant.engineer)
    assert again.status_code == 201, again.text  # nothing half-made stands in the way


async def test_a_taken_external_id_or_a_missing_channel_leaves_nothing(
    api: Api, plant: Plant
) -> None:
    await add_template(api, plant)
    assert (
        await api.http.post("/api/v1/provision", json=device(5), headers=plant.engineer)
    ).status_code == 201
    before = await counts(api, plant)
    again = await api.http.post(
        "/api/v1/provision", json=device(5, name="press-5b"), headers=plant.engineer
    )
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "bootstrap_external_id_taken"
    await add_template(
        api, plant, "name: needy\nversion: 1\nchannels: [{name: nowhere, create: false}]\n"
    )
    needy = await api.http.post(
        "/api/v1/provision", json=device(6, template="needy"), headers=plant.engineer
    )
    assert needy.status_code == 400
    assert needy.json()["error"]["code"] == "template_channel_missing"
    assert await counts(api, plant) == before


async def test_templates_are_versioned(api: Api, plant: Plant) -> None:
    created = await add_template(api, plant)
    assert created["origin"] == "api" and created["placeholders"] == ["name", "vendor"]
    stale = await api.http.post(
        "/api/v1/provision/templates", content=PRESS, headers=plant.engineer | YAML
    )
    assert stale.status_code == 409
    assert stale.json()["error"]["code"] == "template_version_exists"
    await add_template(api, plant, PRESS.replace("version: 1", "version: 2").replace("720h", "24h"))
    latest = (await api.http.get("/api/v1/provision/templates/press", headers=plant.viewer)).json()
    assert latest["version"] == 2
    first = await api.http.get("/api/v1/provision/templates/press?version=1", headers=plant.viewer)
    assert "720h" in first.json()["source"]
    versions = await api.http.get(
        "/api/v1/provision/templates/press/versions", headers=plant.viewer
    )
    assert [v["version"] for v in versions.json()] == [1, 2]
    pinned = await api.http.post(
        "/api/v1/provision", json=device(7, template="press@1"), headers=plant.engineer
    )
    assert pinned.json()["version"] == 1
    listed = (await api.http.get("/api/v1/provision/templates", headers=plant.viewer)).json()
    assert [(t["name"], t["version"]) for t in listed["items"]] == [("press", 2)]
    # Viewers read; they do not write.
    refused = await api.http.post(
        "/api/v1/provision/templates", content=PRESS, headers=plant.viewer | YAML
    )
    assert refused.status_code == 403
    deleted = await api.http.delete(
        "/api/v1/provision/templates/press?version=2", headers=plant.engineer
    )
    assert deleted.status_code == 204
    latest = (await api.http.get("/api/v1/provision/templates/press", headers=plant.viewer)).json()
    assert latest["version"] == 1


async def test_templates_of_one_organisation_are_not_anothers(api: Api, plant: Plant) -> None:
    await add_template(api, plant)
    other_org = await api.org("Plant South")
    other = await api.member(other_org, "engineer")
    response = await api.http.get("/api/v1/provision/templates/press", headers=other)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "template_not_found"


async def test_file_templates_serve_every_organisation(api: Api, plant: Plant) -> None:
    directory = api.platform.settings.data_dir / "provision" / "templates"
    directory.mkdir(parents=True)
    (directory / "sensor.yaml").write_text("name: sensor\nversion: 3\n")
    (directory / "broken.yaml").write_text("name: [\n")  # skipped, with a warning
    listed = (await api.http.get("/api/v1/provision/templates", headers=plant.viewer)).json()
    assert [(t["name"], t["version"], t["origin"]) for t in listed["items"]] == [
        ("sensor", 3, "file")
    ]
    shadow = await api.http.post(
        "/api/v1/provision/templates", content="name: sensor\nversion: 4\n",
        headers=plant.engineer | YAML,
    )  # fmt: skip
    assert shadow.status_code == 409
    assert shadow.json()["error"]["code"] == "template_name_reserved"
    made = await api.http.post(
        "/api/v1/provision", json=device(8, template="sensor", variables={}),
        headers=plant.engineer,
    )  # fmt: skip
    assert made.status_code == 201, made.text
    assert made.json()["certificate"] is None


@pytest.mark.parametrize(
    ("body", "headers", "status", "code"),
    [
        ("name: t\nversion: 1\nbogus: 1\n", YAML, 400, "invalid_template"),
        ("name: t\nversion: 1\n", {"Content-Type": "text/plain"}, 415, "template_media_type"),
        ("x" * 70_000, YAML, 413, "template_too_large"),
    ],
)
async def test_bad_templates_answer_a_code(
    api: Api, plant: Plant, body: str, headers: dict[str, str], status: int, code: str
) -> None:
    response = await api.http.post(
        "/api/v1/provision/templates", content=body, headers=plant.engineer | headers
    )
    assert response.status_code == status
    assert response.json()["error"]["code"] == code
