"""The console in a real browser (Debian's chromium, driven by Playwright) against a
platform on a real HTTP server: sign-in, things admin, roles, languages, and no request
to anywhere but the platform.

`SHOPFLOOR_SCREENSHOTS=docs/images` makes the tests save screenshots of the main pages
there (docs/console.md shows them); without it they take none.
"""

from __future__ import annotations

import os
import re
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from ..serving import ADMIN
from .conftest import VIEWER, Browser, Plant, publish_stored

SCREENSHOTS = os.environ.get("SHOPFLOOR_SCREENSHOTS")


async def snap(page: Any, name: str) -> None:
    if SCREENSHOTS:  # Playwright makes the folder
        await page.screenshot(path=str(Path(SCREENSHOTS) / f"console-{name}.png"), full_page=True)


async def sign_in(page: Any, url: str, who: tuple[str, str]) -> None:
    page.set_default_timeout(15_000)
    await page.goto(url + "/")
    await page.fill("input[name=email]", who[0])
    await page.fill("input[name=password]", who[1])
    await page.click("form[data-testid=sign-in-form] button[type=submit]")
    await page.wait_for_selector("h1:has-text('Plant overview')")


def outside(plant: Plant, browser: Browser) -> list[str]:
    return [url for url in browser.requests if not url.startswith(plant.url + "/")]


async def test_a_newcomer_signs_in_from_the_front_page_and_a_wrong_password_is_told(
    plant: Plant, browser: Browser
) -> None:
    page = browser.page
    page.set_default_timeout(15_000)
    await page.goto(plant.url + "/")
    await snap(page, "sign-in")
    await page.fill("input[name=email]", ADMIN[0])
    await page.fill("input[name=password]", "not-the-password")
    await page.click("form[data-testid=sign-in-form] button[type=submit]")
    error = page.locator("form[data-testid=sign-in-form] [data-error]")
    await error.wait_for(state="visible")
    assert await error.text_content() == "wrong e-mail or password"  # the API's own message

    await page.fill("input[name=password]", ADMIN[1])
    await page.click("form[data-testid=sign-in-form] button[type=submit]")
    await page.wait_for_selector("h1:has-text('Plant overview')")
    cookies = {c["name"]: c for c in await page.context.cookies()}
    session = cookies["shopfloor_session"]
    assert session["httpOnly"] and session["sameSite"] == "Lax" and session["expires"] > 0
    assert outside(plant, browser) == []


async def test_an_admin_creates_a_thing_sees_its_key_once_rotates_deletes_and_signs_out(
    plant: Plant, browser: Browser
) -> None:
    page = browser.page
    await sign_in(page, plant.url, ADMIN)
    await page.click("nav >> text=Things")
    await page.wait_for_selector("h1:has-text('Things')")
    await page.click("details[data-testid=create-thing] summary")
    form = page.locator("details[data-testid=create-thing] form")

    # Checked before it is sent: a name is required, metadata must be a JSON object.
    posts_before = len([u for u in browser.requests if u.endswith("/console/things")])
    await form.locator("[data-testid=metadata]").fill("{not json")
    await form.locator("button[type=submit]").click()
    assert not await form.locator("[data-testid=name]").evaluate("e => e.validity.valid")
    await form.locator("[data-testid=name]").fill("press-1")
    await form.locator("button[type=submit]").click()
    metadata = form.locator("[data-testid=metadata]")
    assert not await metadata.evaluate("e => e.validity.valid")
    assert len([u for u in browser.requests if u.endswith("/console/things")]) == posts_before

    await metadata.fill('{"line": 1}')
    await form.locator("[data-testid=tags]").fill("line-1, press")
    await form.locator("button[type=submit]").click()
    key = (await page.locator("[data-testid=key]").text_content() or "").strip()
    created = await plant.registry.thing_by_key(key)
    assert created is not None and created.name == "press-1"
    assert created.tags == ("line-1", "press") and created.metadata == {"line": 1}
    await page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    await page.click("[data-testid=thing-key] button[data-copy]")
    await page.wait_for_selector("[data-testid=thing-key] button:has-text('Copied')")
    assert await page.evaluate("navigator.clipboard.readText()") == key
    row = page.locator("tr[data-thing='press-1']")
    await row.wait_for()  # the table reloaded itself
    await snap(page, "thing-created")

    # A refusal of the server is shown beside the form, in the API's words.
    await page.click("details[data-testid=create-thing] summary")
    await page.click("details[data-testid=create-thing] summary")
    await form.locator("[data-testid=name]").fill("press-1")
    await form.locator("button[type=submit]").click()
    error = form.locator("[data-error]")
    await error.wait_for(state="visible")
    assert await error.text_content() == "a thing named 'press-1' already exists"

    await page.reload()
    assert key not in await page.content()  # shown once

    await row.locator("details summary").click()  # edit: rename, tags, metadata
    edit = row.locator("details form")
    await edit.locator("[data-testid=name]").fill("press-2")
    await edit.locator("[data-testid=tags]").fill("line-2")
    await edit.locator("[data-testid=metadata]").fill('{"line": 2}')
    await edit.locator("button[type=submit]").click()
    await page.wait_for_selector("[data-testid=saved]")
    row = page.locator("tr[data-thing='press-2']")
    await row.wait_for()
    renamed = await plant.registry.get_thing(plant.org_id, created.id)
    assert (renamed.name, renamed.tags, renamed.metadata) == ("press-2", ("line-2",), {"line": 2})

    await row.locator("[data-testid=rotate]").click()  # confirmed (the dialog is accepted)
    await page.wait_for_selector("[data-testid=key]")
    rotated = (await page.locator("[data-testid=key]").text_content() or "").strip()
    assert rotated != key
    assert await plant.registry.thing_by_key(key) is None
    assert await plant.registry.thing_by_key(rotated) is not None

    await page.locator("tr[data-thing='press-2'] [data-testid=delete]").click()
    await page.wait_for_selector("[data-testid=deleted]")
    await page.locator("tr[data-thing='press-2']").wait_for(state="detached")
    assert (await plant.registry.list_things(plant.org_id)).total == 0

    await page.click("[data-testid=sign-out]")
    await page.wait_for_selector("form[data-testid=sign-in-form]")
    await page.goto(plant.url + "/console/things")
    await page.wait_for_selector("form[data-testid=sign-in-form]")  # signed out for real
    assert outside(plant, browser) == []


async def test_a_viewer_sees_things_but_may_not_change_them(plant: Plant, browser: Browser) -> None:
    await plant.registry.create_thing(plant.org_id, name="mill-1", tags=["line-2"])
    page = browser.page
    await sign_in(page, plant.url, VIEWER)
    await page.goto(plant.url + "/console/things")
    await page.locator("tr[data-thing='mill-1']").wait_for()
    assert await page.locator("details[data-testid=create-thing]").count() == 0
    assert await page.locator("[data-testid=rotate], [data-testid=delete]").count() == 0

    token = await page.locator("input[name=csrf_token]").first.input_value()
    refused = await page.request.post(
        plant.url + "/console/things", form={"name": "sneaky", "csrf_token": token}
    )
    assert refused.status == 403
    body = await refused.json()
    async with httpx.AsyncClient(base_url=plant.url) as api:
        signed = await api.post(
            "/api/v1/auth/token", json={"email": VIEWER[0], "password": VIEWER[1]}
        )
        headers = {"Authorization": f"Bearer {signed.json()['access_token']}"}
        answer = await api.post("/api/v1/things", json={"name": "sneaky"}, headers=headers)
    assert answer.status_code == 403
    assert body == answer.json()  # the API's own refusal, word for word
    assert (await plant.registry.list_things(plant.org_id)).total == 1

    # Without the session's CSRF token, even a permitted request is refused.
    forged = await page.request.post(plant.url + "/console/language", form={"language": "ru"})
    assert forged.status == 403
    assert (await forged.json())["error"]["code"] == "csrf_token_invalid"
    assert outside(plant, browser) == []


async def test_the_overview_shows_when_each_thing_last_published_and_its_rate(
    plant: Plant, browser: Browser
) -> None:
    registry = plant.registry
    channel = await registry.create_channel(plant.org_id, name="telemetry")
    press, key = await registry.create_thing(plant.org_id, name="press-1")
    await registry.create_thing(plant.org_id, name="idle-1")
    await registry.connect(plant.org_id, channel.id, press.id)
    now = time.time()
    records = [{"bn": "press-1:", "n": "temperature", "u": "Cel", "v": 20.0 + i, "t": now - i}
               for i in range(6)]  # fmt: skip
    await publish_stored(plant, channel.id, key, records)

    page = browser.page
    await sign_in(page, plant.url, ADMIN)
    cells = page.locator("tr[data-overview-thing='press-1'] td")
    seen = datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    assert await cells.nth(1).text_content() == seen
    assert await cells.nth(2).text_content() == "1.2"  # 6 records in 5 minutes
    idle = page.locator("tr[data-overview-thing='idle-1'] td")
    assert [await idle.nth(i).text_content() for i in (1, 2)] == ["—", "0.0"]
    await snap(page, "overview")


async def test_every_page_loads_only_from_the_platform_in_both_languages(
    plant: Plant, browser: Browser
) -> None:
    registry = plant.registry
    channel = await registry.create_channel(plant.org_id, name="telemetry")
    for index in range(30):
        thing, _key = await registry.create_thing(plant.org_id, name=f"machine-{index:02}")
        if index < 3:
            await registry.connect(plant.org_id, channel.id, thing.id)
    page = browser.page
    await sign_in(page, plant.url, ADMIN)
    assert await page.evaluate("typeof window.htmx") == "object"  # served from node_modules

    await page.goto(plant.url + "/console/things?limit=10&sort=-name")
    first = page.locator("#things-table tbody tr").first
    assert await first.get_attribute("data-thing") == "machine-29"
    await page.click("#things-table a[rel=next]")
    await page.wait_for_url(re.compile(r"offset=10"))
    assert await page.locator("#things-table tbody tr").first.get_attribute("data-thing") == (
        "machine-19"
    )
    await page.fill(".filters input[name=name]", "machine-0")
    await page.click(".filters button[type=submit]")
    await page.wait_for_url(re.compile(r"name=machine-0"))
    await page.wait_for_selector("#things-table >> text=1\N{EN DASH}10 of 10")
    await snap(page, "things")

    await page.goto(f"{plant.url}/console/channels/{channel.id}")
    await page.wait_for_selector("h1:has-text('telemetry')")
    await page.select_option("select[name=thing_id]", label="machine-10")
    await page.uncheck("input[name=subscribe]")
    await page.click("text=Connect")
    await page.wait_for_selector("#connections-table >> text=machine-10")
    connections = await registry.channel_things(plant.org_id, channel.id)
    assert connections.total == 4
    await snap(page, "channel")

    await page.goto(plant.url + "/console/channels")
    await page.wait_for_selector("h1:has-text('Channels')")

    await page.click("form.language button[value=ru]")
    await page.wait_for_selector("h1:has-text('Каналы')")
    await page.goto(plant.url + "/")
    await page.wait_for_selector("h1:has-text('Обзор предприятия')")  # kept in the session
    await snap(page, "overview-ru")
    await page.goto(plant.url + "/console/things")
    await page.wait_for_selector("h1:has-text('Устройства')")

    assert len(browser.requests) > 10
    assert outside(plant, browser) == []
