"""A dashboard in a real browser: a thing made and connected in the console, a dashboard
made there, a panel added and saved, a value published over HTTP with the key the
console showed appearing on it live (no reload), a save made elsewhere told by the
stream and a save over it refused in the API's words; nothing requested but the
platform."""

from __future__ import annotations

import time
from typing import Any

import httpx

from shopfloor.dashboards import check_document
from shopfloor.dashboards.capability import DashboardsService

from ..serving import ADMIN
from .conftest import Browser, Plant, publish_stored
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
    await page.wait_for_selector("#dashboard:not([data-rendered='0'])")  # drawn once
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


async def test_every_panel_type_draws_the_stored_records_and_takes_live_ones(
    plant: Plant, browser: Browser
) -> None:
    registry = plant.registry
    channel = await registry.create_channel(plant.org_id, name="line-4")
    press, key = await registry.create_thing(plant.org_id, name="press-4")
    await registry.connect(plant.org_id, channel.id, press.id)
    now = time.time()
    records = [{"n": "temp", "v": 20.0 + i, "t": now - 100 + i} for i in range(10)] + [
        {"n": "door", "vb": True, "t": now - 95}, {"n": "door", "vb": False, "t": now - 90},
        {"n": "state", "vs": "running", "t": now - 89},
    ]  # fmt: skip
    headers = {"Authorization": f"Thing {key}", "Content-Type": "application/senml+json"}
    await publish_stored(plant, channel.id, key, records)

    def panel(id: str, type: str, x: int, **query: Any) -> dict[str, Any]:
        return {"id": id, "type": type, "grid": {"x": x, "y": 0, "w": 4, "h": 8},
                "query": {"channel": channel.id, **query}, "options": {"unit": ""}}  # fmt: skip

    document = check_document({"title": "Every type", "panels": [
        panel("line", "line", 0, limit=100), panel("bar", "bar", 4, name="temp"),
        panel("gauge", "gauge", 8, name="temp"), panel("stat", "stat", 12, name="temp"),
        panel("table", "table", 16, limit=5),
    ]})  # fmt: skip
    stored = await plant.platform.get(DashboardsService).store.create(plant.org_id, document)
    page = browser.page
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    await sign_in(page, plant.url, ADMIN)
    await page.goto(f"{plant.url}/console/dashboards/{stored.id}")
    await page.wait_for_selector("#dashboard:not([data-rendered='0'])")  # drawn once

    async def last_values() -> dict[str, str | None]:
        values: dict[str, str | None] = await page.evaluate(
            "() => Object.fromEntries([...document.querySelectorAll('[data-panel-id]')]"
            ".map((el) => [el.dataset.panelId, el.dataset.lastValue]))"
        )
        return values

    async def table() -> list[list[str]]:
        rows: list[list[str]] = await page.evaluate(
            "() => [...document.querySelectorAll('[data-panel-id=table] tbody tr')]"
            ".map((tr) => [...tr.cells].slice(1).map((td) => td.textContent))"
        )
        return rows

    # the newest value of each: the door's false (a boolean reads 0) is the line's newest
    assert await last_values() == {"line": "0", "bar": "29", "gauge": "29", "stat": "29",
                                   "table": "0"}  # fmt: skip
    # the newest 5 records of every name, the text among them
    assert await table() == [["state", "running"], ["door", "0"], ["temp", "29"],
                             ["temp", "28"], ["temp", "27"]]  # fmt: skip
    charts: dict[str, list[str]] = await page.evaluate(
        "() => Object.fromEntries(['line', 'bar'].map((id) => [id, echarts.getInstanceByDom("
        "document.querySelector(`[data-panel-id=${id}] .dash-body`)).getOption().series"
        ".map((s) => s.name)]))"
    )
    assert charts == {"line": ["temp", "door"], "bar": ["temp"]}  # the text draws no line

    await page.wait_for_selector("#dashboard[data-live='open']")
    async with httpx.AsyncClient(base_url=plant.url) as http:
        sent = await http.post(f"/http/channels/{channel.id}/messages",
                               json=[{"n": "temp", "v": 31.0}], headers=headers)  # fmt: skip
        assert sent.status_code == 202
    await page.wait_for_selector("[data-panel-id=stat][data-last-value='31']")
    assert await last_values() == {"line": "31", "bar": "31", "gauge": "31", "stat": "31",
                                   "table": "31"}  # fmt: skip
    # still the newest 5: the oldest of them is gone
    assert await table() == [["temp", "31"], ["state", "running"], ["door", "0"],
                             ["temp", "29"], ["temp", "28"]]  # fmt: skip
    await snap(page, "dashboard-types")
    assert errors == []
    assert outside(plant, browser) == []
