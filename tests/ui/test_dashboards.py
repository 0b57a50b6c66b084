"""A dashboard in a real browser: a thing made and connected in the console, a dashboard
made there, a panel added and saved, a value published over HTTP with the key the
console showed appearing on it live (no reload), a save made elsewhere told by the
stream and a save over it refused in the API's words; nothing requested but the
platform."""

from __future__ import annotations

import time

import httpx

from shopfloor.dashboards import check_document
from shopfloor.dashboards.capability import DashboardsService

from ..serving import ADMIN
from .conftest import Browser, Plant
from .test_console import outside, sign_in, snap


async def test_a_published_value_appears_live_on_a_new_dashboard_panel(
    plant: Plant, browser: Browser
) -> None:
    registry = plant.registry
    channel = await registry.create_channel(plant.org_id, name="line-9")
    page = browser.page
    await sign_in(page, plant.url, ADMIN)

    # The thing, made and connected as a newcomer would: its key is shown once.
    await page.click("nav >> text=Things")
    await page.click("details[data-testid=create-thing] summary")
    await page.fill("details[data-testid=create-thing] [data-testid=name]", "press-9")
    await page.click("details[data-testid=create-thing] button[type=submit]")
    key = (await page.locator("[data-testid=key]").text_content() or "").strip()
    press = await registry.thing_by_key(key)
    assert press is not None and press.name == "press-9"
    await page.goto(f"{plant.url}/console/channels/{channel.id}")
    await page.select_option("select[name=thing_id]", label="press-9")
    await page.click("text=Connect")
    await page.wait_for_selector("#connections-table >> text=press-9")

    await page.click("nav >> text=Dashboards")
    await page.click("details[data-testid=create-dashboard] summary")
    await page.fill("details[data-testid=create-dashboard] [data-testid=title]", "Line 9")
    await page.click("details[data-testid=create-dashboard] button[type=submit]")
    await page.wait_for_selector("h1[data-testid=dashboard-title]:has-text('Line 9')")

    await page.click("[data-testid=panel-add]")
    form = page.locator("#panel-form")
    await form.locator("input[name=title]").fill("Pressure")
    await form.locator("select[name=type]").select_option("stat")
    await form.locator("select[name=channel]").select_option(channel.id)
    await form.locator("input[name=name]").fill("pressure")
    await form.locator("select[name=publisher]").select_option(press.id)
    await form.locator("input[name=unit]").fill("bar")
    await page.click("[data-testid=panel-ok]")
    dashboard = page.locator("#dashboard")
    await page.wait_for_selector("#dashboard article[data-panel-id]")
    await page.wait_for_function(
        "Number(document.getElementById('dashboard').dataset.rendered) >= 1"
    )
    await page.click("[data-testid=dashboard-save]")
    await page.wait_for_selector("#dashboard[data-version='2'][data-live='open']")

    sent_at = time.time()
    async with httpx.AsyncClient(base_url=plant.url) as http:
        sent = await http.post(
            f"/http/channels/{channel.id}/messages",
            json=[{"n": "pressure", "u": "bar", "v": 42.5, "t": sent_at}],
            headers={"Authorization": f"Thing {key}", "Content-Type": "application/senml+json"},
        )  # fmt: skip
        assert sent.status_code == 202
    await page.wait_for_selector("#dashboard article[data-panel-id][data-last-value='42.5']")
    assert int(await dashboard.get_attribute("data-live-points") or 0) >= 1
    await snap(page, "dashboard-new")

    # Someone else saves meanwhile: this page's save is refused, nothing is overwritten.
    service = plant.platform.get(DashboardsService)
    stored = (await service.store.page(plant.org_id)).items[0]
    changed = check_document(stored.document.to_json() | {"title": "Line 9 (theirs)"})
    await service.store.put(plant.org_id, stored.id, changed, version=stored.version)
    async with httpx.AsyncClient(base_url=plant.url) as http:  # the stream's next event
        await http.post(
            f"/http/channels/{channel.id}/messages",
            json=[{"n": "pressure", "v": 43.0}],
            headers={"Authorization": f"Thing {key}", "Content-Type": "application/senml+json"},
        )  # fmt: skip
    error = page.locator("#dashboard-error")
    await error.wait_for(state="visible")  # told by the stream, before saving
    assert "changed by someone else" in (await error.text_content() or "")
    await page.click("[data-testid=dashboard-save]")
    await page.wait_for_selector("#dashboard-error:has-text('version 3 is stored')")
    assert "changed by someone else: reload" in (await error.text_content() or "")
    assert (await service.store.get(plant.org_id, stored.id)).document.title == "Line 9 (theirs)"
    assert outside(plant, browser) == []
