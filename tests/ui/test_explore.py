"""The data explorer in a real browser: points published through the HTTP adapter,
explored aggregated (chart, table, the query in the address), downloaded as CSV, and
bad input told with the readers' own messages beside the form."""

from __future__ import annotations

import asyncio
import csv
import time
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx

from shopfloor.storage import Query
from shopfloor.storage.capability import TimeseriesService

from ..serving import ADMIN
from .conftest import Browser, Plant
from .test_console import outside, sign_in, snap


def form_time(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")


async def test_points_are_explored_aggregated_and_downloaded_as_csv(
    plant: Plant, browser: Browser, tmp_path: Path
) -> None:
    registry = plant.registry
    await registry.create_channel(plant.org_id, name="audit")
    channel = await registry.create_channel(plant.org_id, name="telemetry")
    press, key = await registry.create_thing(plant.org_id, name="press-1")
    await registry.connect(plant.org_id, channel.id, press.id)
    start = (time.time() // 60 - 3) * 60  # two whole minutes, three minutes ago
    records = [{"n": "temperature", "u": "Cel", "v": float(i), "t": start + 10 * i}
               for i in range(12)]  # fmt: skip
    records.append({"n": "pressure", "u": "bar", "v": 99.0, "t": start + 5})
    async with httpx.AsyncClient(base_url=plant.url) as http:
        sent = await http.post(
            f"/http/channels/{channel.id}/messages", json=records,
            headers={"Authorization": f"Thing {key}", "Content-Type": "application/senml+json"},
        )  # fmt: skip
        assert sent.status_code == 202
        token = (
            await http.post("/api/v1/auth/token", json={"email": ADMIN[0], "password": ADMIN[1]})
        ).json()["access_token"]
        readers = await http.get(
            f"/api/v1/channels/{channel.id}/messages",
            params={"aggregation": "avg", "interval": "5 parsecs"},
            headers={"Authorization": f"Bearer {token}"},
        )
    store = plant.platform.get(TimeseriesService).store
    deadline = time.monotonic() + 10
    while (await store.query(Query(channel=channel.id))).total < len(records):
        assert time.monotonic() < deadline, "the writer stored the records"
        await asyncio.sleep(0.05)

    page = browser.page
    await sign_in(page, plant.url, ADMIN)
    await page.click("nav >> text=Explore")
    await page.wait_for_selector("h1:has-text('Explore')")
    await page.select_option("[data-testid=channel]", label="telemetry")
    await page.fill("[data-testid=name]", "temperature")
    await page.select_option("[data-testid=range]", "custom")
    await page.fill("[data-testid=from]", form_time(start))
    await page.fill("[data-testid=to]", form_time(start + 120))
    await page.select_option("[data-testid=aggregation]", "avg")
    await page.fill("[data-testid=interval]", "1m")
    await page.click("[data-testid=show]")
    await page.wait_for_selector("#explore-chart[data-drawn=true]")  # ECharts drew it
    asked = parse_qs(urlsplit(page.url).query)
    assert asked["channel"] == [channel.id] and asked["aggregation"] == ["avg"]
    assert asked["interval"] == ["1m"] and asked["range"] == ["custom"]
    rows = page.locator("[data-testid=explore-table] tbody tr")
    cells = [[await cell.text_content() for cell in await row.locator("td").all()]
             for row in await rows.all()]  # fmt: skip
    minute = datetime.fromtimestamp(start, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    later = datetime.fromtimestamp(start + 60, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    assert cells == [[later, "temperature", "8.5"], [minute, "temperature", "2.5"]]
    await snap(page, "explore")

    # The bookmarked address shows the same; the CSV is the same query.
    await page.goto(page.url)
    await page.wait_for_selector("#explore-chart[data-drawn=true]")
    async with page.expect_download() as waiting:
        await page.click("[data-testid=export]")
    download = await waiting.value
    saved = tmp_path / download.suggested_filename
    await download.save_as(saved)
    assert download.suggested_filename == f"channel-{channel.id}.csv"
    with saved.open(newline="") as file:
        exported = list(csv.DictReader(file))
    assert [(row["name"], float(row["time"]), row["value"]) for row in exported] == [
        ("temperature", start + 60, "8.5"),
        ("temperature", start, "2.5"),
    ]

    # Bad input: the readers' own messages beside the form.
    await page.fill("[data-testid=from]", form_time(start + 120))
    await page.fill("[data-testid=to]", form_time(start))
    await page.click("[data-testid=show]")
    refusal = page.locator("[data-testid=explore-error]")
    await refusal.wait_for()
    assert await refusal.get_attribute("data-code") == "invalid_time_range"
    assert await refusal.text_content() == "from must not be after to"
    await page.fill("[data-testid=from]", form_time(start))
    await page.fill("[data-testid=to]", form_time(start + 120))
    await page.fill("[data-testid=interval]", "5 parsecs")
    await page.click("[data-testid=show]")
    await page.wait_for_selector("[data-testid=explore-error][data-code=invalid_interval]")
    assert readers.status_code == 400
    assert await refusal.text_content() == readers.json()["error"]["message"]
    assert outside(plant, browser) == []


async def test_a_channel_of_another_organisation_is_not_explored(
    plant: Plant, browser: Browser
) -> None:
    other = await plant.registry.create_org("Elsewhere")
    foreign = await plant.registry.create_channel(other.id, name="secret")
    page = browser.page
    await sign_in(page, plant.url, ADMIN)
    for path in ("/console/explore", "/console/explore/export.csv"):
        answer = await page.goto(f"{plant.url}{path}?channel={foreign.id}")
        assert answer is not None and answer.status == 404
        assert "channel_not_found" in await page.content()
