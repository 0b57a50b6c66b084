"""The console's admin pages without a browser: users and roles, the own account,
certificates and bootstrap configurations, each refused as the API refuses."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from shopfloor.app import create_app
from shopfloor.auth.capability import IdentityService
from shopfloor.bootstrap import State
from shopfloor.bootstrap.capability import BootstrapService
from shopfloor.core import Platform
from shopfloor.registry import Registry, Role

from ..serving import ADMIN, lifespan

VIEWER = ("viewer@plant.example", "viewer-password")
OTHER = ("other@elsewhere.example", "other-password")


@dataclass
class Org:
    platform: Platform
    app: Any
    org_id: str
    other_org_id: str

    @property
    def registry(self) -> Registry:
        return self.platform.get(IdentityService).registry


@pytest.fixture
async def org(make_settings: Callable[..., Any]) -> AsyncIterator[Org]:
    app = create_app(make_settings(services="api,console,provision"))
    async with lifespan(app) as manager:
        platform: Platform = app.state.platform
        registry = platform.get(IdentityService).registry
        plant = await registry.create_org("Plant")
        other = await registry.create_org("Elsewhere")
        admin = await registry.find_user_by_email(ADMIN[0])
        assert admin is not None
        await registry.update_user(admin.id, org_id=plant.id, role=Role.ADMIN)
        passwords = platform.get(IdentityService).auth.passwords  # the tests' cheap cost
        for (email, password), org_id, role in (
            (VIEWER, plant.id, Role.VIEWER), (OTHER, other.id, Role.ADMIN),
        ):  # fmt: skip
            await registry.create_user(
                email=email, password_hash=passwords.hash(password), org_id=org_id, role=role
            )
        yield Org(platform=platform, app=manager.app, org_id=plant.id, other_org_id=other.id)


class Console:
    """A browser without a browser: the session cookie and the page's CSRF token."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http
        self.csrf = ""

    async def sign_in(self, who: tuple[str, str]) -> None:
        await self.http.get("/console/sign-in")
        signed = await self.http.post(
            "/console/sign-in",
            data={"email": who[0], "password": who[1],
                  "csrf_token": self.http.cookies["shopfloor_csrf"]},
        )  # fmt: skip
        assert signed.status_code == 303, signed.text
        await self.get("/console/account")

    async def get(self, path: str) -> httpx.Response:
        page = await self.http.get(path)
        found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        if found:
            self.csrf = found.group(1)
        return page

    async def post(self, path: str, **form: str) -> httpx.Response:
        return await self.http.post(
            path, data={**form, "csrf_token": self.csrf}, headers={"HX-Request": "true"}
        )


@pytest.fixture
async def console(org: Org) -> AsyncIterator[Callable[..., Any]]:
    clients: list[httpx.AsyncClient] = []

    async def open_as(who: tuple[str, str]) -> Console:
        http = httpx.AsyncClient(transport=httpx.ASGITransport(app=org.app), base_url="http://c")
        clients.append(http)
        signed = Console(http)
        await signed.sign_in(who)
        return signed

    try:
        yield open_as
    finally:
        for http in clients:
            await http.aclose()


def error_of(answer: httpx.Response) -> tuple[int, str, str]:
    body = answer.json()["error"]
    return answer.status_code, body["code"], body["message"]


async def test_an_admin_manages_the_users_of_their_organisation_only(
    org: Org, console: Callable[..., Any]
) -> None:
    admin = await console(ADMIN)
    made = await admin.post(
        "/console/users", email="Op@Plant.example", password="op-password", role="operator"
    )
    assert made.status_code == 200 and "op@plant.example" in made.text
    user = await org.registry.find_user_by_email("op@plant.example")
    assert user is not None and user.role is Role.OPERATOR and user.org_id == org.org_id
    short = await admin.post("/console/users", email="x@plant.example", password="short")
    assert error_of(short)[:2] == (400, "validation_error")  # the API's password rule
    taken = await admin.post("/console/users", email="op@plant.example", password="op-password")
    assert taken.status_code == 409

    page = await admin.get("/console/users?sort=-email&email=plant")
    rows = re.findall(r'data-user="([^"]+)"', page.text)
    assert rows == ["viewer@plant.example", "root@plant.example", "op@plant.example"]
    assert "other@elsewhere.example" not in page.text
    by_role = await admin.get("/console/users?role=operator")
    assert re.findall(r'data-user="([^"]+)"', by_role.text) == ["op@plant.example"]

    changed = await admin.post(f"/console/users/{user.id}/role", role="engineer")
    assert changed.status_code == 200
    assert (await org.registry.get_user(user.id)).role is Role.ENGINEER
    reset = await admin.post(f"/console/users/{user.id}/password", password="brand-new-pass")
    assert reset.status_code == 200
    assert (await org.registry.get_user(user.id)).token_generation == 1

    # An admin of another organisation (not a platform admin) finds none of them.
    outsider = await console(OTHER)
    assert "op@plant.example" not in (await outsider.get("/console/users")).text
    for path, form in (
        (f"/console/users/{user.id}/role", {"role": "viewer"}),
        (f"/console/users/{user.id}/password", {"password": "taken-over-1"}),
        (f"/console/users/{user.id}/delete", {}),
    ):
        assert error_of(await outsider.post(path, **form))[:2] == (404, "user_not_found")
    me = await org.registry.find_user_by_email(ADMIN[0])
    assert me is not None
    self_delete = await admin.post(f"/console/users/{me.id}/delete")
    assert error_of(self_delete)[:2] == (409, "cannot_delete_self")
    own_reset = await admin.post(f"/console/users/{me.id}/password", password="no-current-1")
    assert error_of(own_reset)[:2] == (403, "current_password_required")

    gone = await admin.post(f"/console/users/{user.id}/delete")
    assert gone.status_code == 200 and "data-changed" in gone.text
    assert await org.registry.find_user_by_email("op@plant.example") is None


async def test_a_viewer_is_refused_the_users_page_and_its_forms_as_by_the_api(
    org: Org, console: Callable[..., Any]
) -> None:
    viewer = await console(VIEWER)
    page = await viewer.get("/console/users")
    assert page.status_code == 403 and "role viewer may not manage users" in page.text
    assert 'href="/console/users"' not in (await viewer.get("/")).text
    refused = await viewer.post("/console/users", email="x@plant.example", password="password-1")
    assert error_of(refused) == (403, "insufficient_role", "role viewer may not manage users")
    admin = await org.registry.find_user_by_email(ADMIN[0])
    assert admin is not None
    demote = await viewer.post(f"/console/users/{admin.id}/role", role="viewer")
    assert error_of(demote)[:2] == (404, "user_not_found")  # as the API: not theirs to see


async def test_own_password_and_language_follow_the_user(
    org: Org, console: Callable[..., Any]
) -> None:
    viewer = await console(VIEWER)
    wrong = await viewer.post(
        "/console/account/password", current_password="not-it", new_password="another-pass-1"
    )
    assert error_of(wrong) == (403, "wrong_password", "the current password is wrong")
    elsewhere = await console(VIEWER)  # a second sign-in, in another browser
    changed = await viewer.post(
        "/console/account/password", current_password=VIEWER[1], new_password="another-pass-1"
    )
    assert changed.status_code == 204
    assert changed.headers["HX-Redirect"] == "/console/account?changed=password"
    assert (await viewer.get("/console/account?changed=password")).status_code == 200  # still in
    assert (await elsewhere.http.get("/console/account")).status_code == 303  # ended

    chosen = await viewer.post("/console/language", language="ru", back="/console/account")
    assert chosen.status_code == 204
    later = await console((VIEWER[0], "another-pass-1"))
    assert 'lang="ru"' in (await later.get("/")).text  # the choice followed the user


async def test_certificates_are_issued_downloaded_and_revoked_as_the_api_allows(
    org: Org, console: Callable[..., Any]
) -> None:
    thing, _key = await org.registry.create_thing(org.org_id, name="press-1")
    admin = await console(ADMIN)
    issued = await admin.post(
        "/console/certificates", entity_type="thing", entity_id=thing.id, ttl="720h"
    )
    assert issued.status_code == 200, issued.text
    assert "-----BEGIN PRIVATE KEY-----" in issued.text  # the platform made it: shown once
    serial = re.search(r"/console/certificates/([0-9a-f]+)/cert\.pem", issued.text)
    assert serial is not None
    pem = await admin.http.get(f"/console/certificates/{serial.group(1)}/cert.pem")
    assert pem.text.startswith("-----BEGIN CERTIFICATE-----")
    assert pem.headers["content-disposition"].startswith("attachment")
    listed = await admin.get("/console/certificates")
    assert f'data-certificate="{serial.group(1)}"' in listed.text
    assert "-----BEGIN PRIVATE KEY-----" not in listed.text
    overview = await admin.get("/")
    assert 'data-testid="overview-certificates"' in overview.text and thing.id in overview.text

    viewer = await console(VIEWER)
    assert "Issue a certificate" not in (await viewer.get("/console/certificates")).text
    refused = await viewer.post("/console/certificates", entity_type="thing", entity_id=thing.id)
    assert error_of(refused) == (403, "insufficient_role", "role viewer may not manage registry")
    not_theirs = await admin.post(
        "/console/certificates", entity_type="agent", entity_id=f"{org.other_org_id}/robot"
    )
    assert error_of(not_theirs)[:2] == (403, "entity_of_another_organisation")
    outsider = await console(OTHER)
    service = await outsider.post("/console/certificates", entity_type="service", entity_id="web")
    assert error_of(service)[:2] == (403, "platform_admin_required")
    hidden = await outsider.http.get(
        f"/console/certificates/{serial.group(1)}/cert.pem", headers={"HX-Request": "true"}
    )
    assert hidden.status_code == 404
    number = serial.group(1)
    assert error_of(await outsider.post(f"/console/certificates/{number}/revoke"))[0] == 404

    revoked = await admin.post(f"/console/certificates/{number}/revoke", reason="superseded")
    assert revoked.status_code == 200 and "data-changed" in revoked.text
    again = await admin.post(f"/console/certificates/{number}/revoke")
    assert error_of(again)[0] == 409
    assert "revoked (superseded)" in (await admin.get("/console/certificates")).text


async def test_bootstrap_configurations_are_made_activated_and_deleted_as_by_the_api(
    org: Org, console: Callable[..., Any]
) -> None:
    channel = await org.registry.create_channel(org.org_id, name="telemetry")
    admin = await console(ADMIN)
    short_key = await admin.post(
        "/console/bootstrap", external_id="aa:bb", external_key="short", name="gateway-1"
    )
    assert error_of(short_key)[:2] == (400, "validation_error")
    made = await admin.http.post(
        "/console/bootstrap", headers={"HX-Request": "true"},
        data={"external_id": "aa:bb", "external_key": "a-long-device-secret", "name": "gateway-1",
              "channels": [channel.id], "content": '{"interval_s": 10}',
              "csrf_token": admin.csrf},
    )  # fmt: skip
    assert made.status_code == 200, made.text
    bootstrap = org.platform.get(BootstrapService).bootstrap
    [config] = (await bootstrap.configs.page(org.org_id)).items
    assert config.channels == (channel.id,) and config.state == State.INACTIVE
    twice = await admin.post(
        "/console/bootstrap", external_id="aa:bb", external_key="a-long-device-secret",
        name="gateway-2",
    )  # fmt: skip
    assert twice.status_code == 409
    page = await admin.get("/console/bootstrap?state=0")
    assert 'data-config="aa:bb"' in page.text and 'data-testid="unknown-devices"' in page.text
    assert 'data-config="aa:bb"' not in (await admin.get("/console/bootstrap?state=1")).text

    on = await admin.post(f"/console/bootstrap/{config.thing_id}/state", state="1")
    assert on.status_code == 200
    connected = await org.registry.channel_things(org.org_id, channel.id)
    assert [thing.id for thing, _c in connected.items] == [config.thing_id]
    edited = await admin.post(f"/console/bootstrap/{config.thing_id}", name="gw", content="x")
    assert edited.status_code == 200
    assert (await bootstrap.configs.get(org.org_id, config.thing_id)).content == "x"

    viewer = await console(VIEWER)
    seen = await viewer.get("/console/bootstrap")
    assert 'data-config="aa:bb"' in seen.text and "New configuration" not in seen.text
    assert 'data-testid="unknown-devices"' not in seen.text  # admins only, as the API
    refused = await viewer.post(f"/console/bootstrap/{config.thing_id}/state", state="0")
    assert error_of(refused) == (403, "insufficient_role", "role viewer may not manage registry")
    outsider = await console(OTHER)
    assert error_of(await outsider.post(f"/console/bootstrap/{config.thing_id}/delete"))[0] == 404

    gone = await admin.post(f"/console/bootstrap/{config.thing_id}/delete")
    assert gone.status_code == 200
    assert (await bootstrap.configs.page(org.org_id)).total == 0


TEMPLATE = """name: press
version: 1
description: Hydraulic press
thing:
  name: "${name}"
  metadata: {vendor: "${vendor}"}
"""


async def test_device_templates_are_uploaded_previewed_and_deleted(
    org: Org, console: Callable[..., Any]
) -> None:
    admin = await console(ADMIN)
    added = await admin.post("/console/device-templates", source=TEMPLATE)
    assert added.status_code == 200, added.text
    again = await admin.post("/console/device-templates", source=TEMPLATE)
    assert error_of(again)[0] == 409  # a version must be above every stored one
    newer = await admin.post(
        "/console/device-templates", source=TEMPLATE.replace("version: 1", "version: 2")
    )
    assert newer.status_code == 200
    listed = await admin.get("/console/device-templates")
    assert 'data-template="press"' in listed.text and "${vendor}" in listed.text
    versions = await admin.get("/console/device-templates/press")
    assert re.findall(r'data-version="(\d+)"', versions.text) == ["2", "1"]

    missing = await admin.post(
        "/console/device-templates/press/preview", name="press-7", external_id="p7"
    )
    assert error_of(missing)[:2] == (400, "template_variables_missing")
    shown = await admin.post(
        "/console/device-templates/press/preview", name="press-7", external_id="p7",
        variables="vendor=Acme", version="1",
    )  # fmt: skip
    assert shown.status_code == 200 and "Acme" in shown.text and "press-7" in shown.text
    assert (await org.registry.list_things(org.org_id)).total == 0  # nothing was made

    viewer = await console(VIEWER)
    refused = await viewer.post("/console/device-templates", source=TEMPLATE)
    assert error_of(refused)[:2] == (403, "insufficient_role")
    outsider = await console(OTHER)
    assert (await outsider.get("/console/device-templates/press")).status_code == 404

    one = await admin.post("/console/device-templates/press/delete", version="1")
    assert one.status_code == 200
    page = await admin.get("/console/device-templates/press")
    assert re.findall(r'data-version="(\d+)"', page.text) == ["2"]


async def test_the_pages_of_capabilities_are_not_there_without_the_console(
    make_settings: Callable[..., Any],
) -> None:
    app = create_app(make_settings(services="api,provision"))
    async with lifespan(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://api", cookies={"shopfloor_session": "any"}
        ) as http:
            for page in ("certificates", "bootstrap", "device-templates"):
                answer = await http.get(f"/console/{page}")
                assert answer.status_code == 404, page
