"""Screenshots of the console's main pages for docs/console.md, from a running server.

    make run                      # in one terminal: the demo plant, live telemetry
    .venv/bin/python scripts/console_screenshots.py http://127.0.0.1:8000 \\
        admin@demo.plant shopfloor-demo docs/images

Drives Debian's chromium (`/usr/bin/chromium`) with Playwright, as tests/ui does.
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

from playwright.async_api import Page, async_playwright

ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


async def main(url: str, email: str, password: str, folder: Path) -> None:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
        try:
            page = await browser.new_page(viewport={"width": 1280, "height": 800})
            await page.goto(url + "/")
            await page.screenshot(path=str(folder / "console-sign-in.png"))
            await page.fill("input[name=email]", email)
            await page.fill("input[name=password]", password)
            await page.click("form[data-testid=sign-in-form] button[type=submit]")
            await page.wait_for_selector("h1:has-text('Plant overview')")
            await page.screenshot(path=str(folder / "console-overview.png"), full_page=True)
            await page.goto(url + "/console/things")
            await page.click("details[data-testid=create-thing] summary")
            await page.fill("details[data-testid=create-thing] [data-testid=name]", "mixer-04")
            await page.fill("details[data-testid=create-thing] [data-testid=tags]", "line-2")
            await page.click("details[data-testid=create-thing] button[type=submit]")
            await page.wait_for_selector("tr[data-thing='mixer-04']")
            await page.screenshot(path=str(folder / "console-things.png"), full_page=True)
            await page.goto(url + "/console/channels")
            await page.click("#channels-table tbody a")
            await page.wait_for_selector("#connections-table")
            await page.screenshot(path=str(folder / "console-channel.png"), full_page=True)
            await page.goto(url + "/console/explore?range=1h&aggregation=avg&interval=1m")
            await page.wait_for_selector("#explore-chart[data-drawn=true]")
            await page.screenshot(path=str(folder / "console-explore.png"), full_page=True)
            await admin_pages(page, url, folder)
            # The demo's dashboard, linked from the overview, once its panels have drawn
            # and live points have come in (the page's data-rendered, data-live-points).
            await page.goto(url + "/")
            await page.click("[data-testid=overview-dashboards] a")
            dashboard = page.locator("#dashboard:not([data-rendered='0'])")
            await dashboard.wait_for()
            deadline = time.monotonic() + 30  # (the page's CSP forbids evaluated waits)
            while int(await dashboard.get_attribute("data-live-points") or 0) < 10:
                assert time.monotonic() < deadline, "live points reached the dashboard"
                await asyncio.sleep(0.2)
            await page.screenshot(path=str(folder / "console-dashboard.png"), full_page=True)
            await page.click("form.language button[value=ru]")
            await page.wait_for_selector("html[lang=ru]")
            await page.goto(url + "/")
            await page.wait_for_selector("h1:has-text('Обзор предприятия')")
            await page.screenshot(path=str(folder / "console-overview-ru.png"), full_page=True)
        finally:
            await browser.close()


async def admin_pages(page: Page, url: str, folder: Path) -> None:
    """Users (a new operator), certificates (one issued to the first thing) and bootstrap
    (a configuration of a gateway, activated)."""
    await page.goto(url + "/console/users")
    await page.click("details[data-testid=create-user] summary")
    create = page.locator("details[data-testid=create-user] form")
    await create.locator("[data-testid=email]").fill("operator@demo.plant")
    await create.locator("[data-testid=password]").fill("operator-demo")
    await create.locator("[data-testid=role]").select_option("operator")
    await create.locator("button[type=submit]").click()
    await page.wait_for_selector("tr[data-user='operator@demo.plant']")
    await page.screenshot(path=str(folder / "console-users.png"), full_page=True)

    await page.goto(url + "/console/certificates")
    await page.click("details[data-testid=issue-certificate] summary")
    issue = page.locator("details[data-testid=issue-certificate] form")
    first_thing = page.locator("#certificate-things option").first
    await issue.locator("[data-testid=entity-id]").fill(
        await first_thing.get_attribute("value") or ""
    )
    await issue.locator("[data-testid=ttl]").fill("720h")
    await issue.locator("button[type=submit]").click()
    await page.wait_for_selector("[data-testid=issued]")
    await page.screenshot(path=str(folder / "console-certificates.png"), full_page=True)

    await page.goto(url + "/console/bootstrap")
    await page.click("details[data-testid=create-config] summary")
    config = page.locator("details[data-testid=create-config] form")
    await config.locator("[data-testid=external-id]").fill("00:1a:2b:3c:4d:5e")
    await config.locator("[data-testid=external-key]").fill("gateway-secret-demo")
    await config.locator("[data-testid=config-name]").fill("gateway-north")
    await config.locator("[data-testid=config-channels]").select_option(index=0)
    await config.locator("button[type=submit]").click()
    row = page.locator("tr[data-config='00:1a:2b:3c:4d:5e']")
    await row.locator("[data-testid=toggle-state]").click()
    await row.locator('[data-testid=state] >> text="active"').wait_for()
    await page.screenshot(path=str(folder / "console-bootstrap.png"), full_page=True)


if __name__ == "__main__":
    if len(sys.argv) != 5:
        sys.exit(__doc__)
    target = Path(sys.argv[4])
    target.mkdir(parents=True, exist_ok=True)
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], target))
