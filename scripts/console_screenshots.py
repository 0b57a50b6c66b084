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

from playwright.async_api import async_playwright

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


if __name__ == "__main__":
    if len(sys.argv) != 5:
        sys.exit(__doc__)
    target = Path(sys.argv[4])
    target.mkdir(parents=True, exist_ok=True)
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], target))
