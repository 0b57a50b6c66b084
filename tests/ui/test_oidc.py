"""Sign-in to the console at an OIDC issuer, in a real browser against a real provider
(`oidc-provider-mock`, a Flask app on a free port of 127.0.0.1 in a thread) whose users
carry Keycloak's claims (`realm_access.roles`, `groups`): the authorization-code flow
with PKCE from the sign-in page's button to the overview, sign-out, and the refusals
(a forged `state`, a user with no Shopfloor role or of no organisation, an issuer
that does not answer) told on the sign-in page.

The provider does not check PKCE (it registers no code-challenge extension), so the
test checks that the console sends an S256 challenge; Keycloak checks it.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import httpx
import oidc_provider_mock
import pytest
from werkzeug.serving import make_server

from ..serving import free_port
from .conftest import Browser, Plant, serve_plant

CLIENT_ID = "shopfloor-console"
ENGINEER = oidc_provider_mock.User(
    sub="olga",
    claims={
        "email": "olga@plant.example",
        "realm_access": {"roles": ["offline_access", "engineer"]},
        "groups": ["/plants/Plant"],
    },
)
NO_ROLE = oidc_provider_mock.User(
    sub="nobody",
    claims={
        "email": "nobody@plant.example",
        "realm_access": {"roles": ["offline_access"]},
        "groups": ["/plants/Plant"],
    },
)


@pytest.fixture
def issuer() -> Iterator[str]:
    app = oidc_provider_mock.app(require_nonce=True, user_claims=[ENGINEER, NO_ROLE])
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), name="oidc-provider")
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(5)
        server.server_close()


@pytest.fixture
async def oidc_plant(make_settings: Callable[..., Any], issuer: str) -> AsyncIterator[Plant]:
    settings = make_settings(
        services="api,console",
        oidc_issuer=issuer,
        console_oidc_client_id=CLIENT_ID,
        console_oidc_client_secret="console-secret",
        console_oidc_label="Plant SSO",
    )
    async with serve_plant(settings) as served:
        yield served


async def only_local(page: Any) -> None:
    """The provider's page links a stylesheet on a CDN: nothing leaves the machine."""

    async def route(route: Any) -> None:
        host = urlsplit(route.request.url).hostname
        await (route.continue_() if host == "127.0.0.1" else route.abort())

    await page.route("**/*", route)


async def test_an_engineer_signs_in_at_the_issuer_lands_on_the_overview_and_signs_out(
    oidc_plant: Plant, browser: Browser, issuer: str
) -> None:
    page = browser.page
    page.set_default_timeout(15_000)
    await only_local(page)
    await page.goto(oidc_plant.url + "/console/things")
    await page.click("a[data-testid=oidc-sign-in]:has-text('Sign in with Plant SSO')")
    await page.click("button[name=sub][value=olga]")  # the provider's own form
    await page.wait_for_selector("h1:has-text('Things')")  # back where sign-in started
    assert await page.text_content(".who") == "olga@plant.example · engineer"
    await page.click("nav >> text=Overview")
    await page.wait_for_selector("h1:has-text('Plant overview')")

    authorize = next(url for url in browser.requests if url.startswith(issuer + "/oauth2/"))
    asked = parse_qs(urlsplit(authorize).query)
    assert asked["code_challenge_method"] == ["S256"] and len(asked["code_challenge"][0]) == 43
    assert asked["client_id"] == [CLIENT_ID] and asked["nonce"] and asked["state"]
    assert "code_verifier" not in asked  # the verifier stays on the server
    cookies = {c["name"]: c for c in await page.context.cookies()}
    session = cookies["shopfloor_session"]
    assert session["httpOnly"] and session["sameSite"] == "Lax"
    assert "shopfloor_oidc" not in cookies  # the flow is used up

    await page.click("[data-testid=sign-out]")
    offer = page.locator("[data-testid=issuer-sign-out] a")
    await offer.wait_for()
    assert (await offer.get_attribute("href") or "").startswith(issuer + "/oauth2/end_session?")
    await page.goto(oidc_plant.url + "/console/things")
    await page.wait_for_selector("form[data-testid=sign-in-form]")  # the session has ended


async def test_a_forged_state_and_a_user_with_no_role_are_refused_in_the_users_language(
    oidc_plant: Plant, browser: Browser
) -> None:
    page = browser.page
    page.set_default_timeout(15_000)
    await only_local(page)
    await page.goto(oidc_plant.url + "/")
    await page.click("a[data-testid=oidc-sign-in]")
    await page.wait_for_selector("button[name=sub][value=olga]")
    parts = urlsplit(page.url)
    query = {key: values[0] for key, values in parse_qs(parts.query).items()}
    query["state"] = "forged-" + query["state"]
    await page.goto(urlunsplit(parts._replace(query=urlencode(query))))
    await page.click("button[name=sub][value=olga]")
    refusal = page.locator("[data-testid=oidc-error]")
    await refusal.wait_for()
    assert await refusal.get_attribute("data-code") == "oidc_state_mismatch"
    assert "not started in this browser" in (await refusal.text_content() or "")
    assert "shopfloor_session" not in {c["name"] for c in await page.context.cookies()}

    await page.click("form.language button[value=ru]")
    await page.wait_for_selector("h1:has-text('Вход в Shopfloor')")
    await page.click("a[data-testid=oidc-sign-in]")
    await page.click("button[name=sub][value=nobody]")
    await refusal.wait_for()
    assert await refusal.get_attribute("data-code") == "oidc_unknown_role"
    assert "нет роли Shopfloor" in (await refusal.text_content() or "")
    assert "shopfloor_session" not in {c["name"] for c in await page.context.cookies()}


STRANGER = oidc_provider_mock.User(
    sub="stranger",
    claims={"email": "stranger@else.example", "realm_access": {"roles": ["admin"]},
            "groups": ["/plants/Elsewhere"]},
)  # fmt: skip


async def test_an_account_of_no_known_organisation_is_refused_and_a_session_is_bounded(
    make_settings: Callable[..., Any],
) -> None:
    """The flow without a browser (httpx follows what chromium would): an OIDC
    session's cookie lives `oidc_session_ttl_seconds`; a group that names no
    organisation of the platform signs nobody in."""
    app = oidc_provider_mock.app(user_claims=[ENGINEER, STRANGER])
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), name="oidc-provider")
    thread.start()
    settings = make_settings(
        services="api,console", oidc_issuer=f"http://127.0.0.1:{server.server_port}",
        console_oidc_client_id=CLIENT_ID, console_oidc_client_secret="console-secret",
        console_oidc_session_ttl_seconds=120,
    )  # fmt: skip
    try:
        async with serve_plant(settings) as plant, httpx.AsyncClient(base_url=plant.url) as web:

            async def sign_in_as(sub: str) -> httpx.Response:
                started = await web.get("/console/sign-in/oidc?next=/console/things")
                assert started.status_code == 303
                authorized = await web.post(started.headers["location"], data={"sub": sub})
                assert authorized.status_code == 302
                return await web.get(authorized.headers["location"])

            refused = await sign_in_as("stranger")
            assert refused.status_code == 303
            assert "error=oidc_no_organisation" in refused.headers["location"]
            assert "shopfloor_session" not in web.cookies
            told = await web.get(refused.headers["location"])
            assert "belongs to no organisation of this platform" in told.text

            signed = await sign_in_as("olga")
            assert signed.headers["location"] == "/console/things"
            assert "Max-Age=120" in signed.headers["set-cookie"]
            things = await web.get("/console/things")
            assert things.status_code == 200 and "olga@plant.example · engineer" in things.text
    finally:
        server.shutdown()
        thread.join(5)
        server.server_close()


async def test_an_unreachable_issuer_is_told_on_the_sign_in_page(
    make_settings: Callable[..., Any],
) -> None:
    settings = make_settings(
        services="api,console", oidc_issuer=f"http://127.0.0.1:{free_port()}",
        console_oidc_client_id=CLIENT_ID,
    )  # fmt: skip
    async with serve_plant(settings) as plant, httpx.AsyncClient(base_url=plant.url) as web:
        started = await web.get("/console/sign-in/oidc")
        assert started.status_code == 303
        assert started.headers["location"] == "/console/sign-in?error=oidc_unavailable&next=%2F"
        told = await web.get(started.headers["location"])
        assert 'data-code="oidc_unavailable"' in told.text
        assert "cannot be reached right now" in told.text
