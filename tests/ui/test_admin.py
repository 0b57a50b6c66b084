"""The console's admin pages in a real browser: an admin makes a user who is then
refused the admin parts; a certificate issued, downloaded and revoked; a bootstrap
configuration created and activated. The details (every refusal, other organisations)
are in test_admin_routes.py, without a browser.
"""

from __future__ import annotations

from pathlib import Path

from shopfloor.bootstrap import State
from shopfloor.bootstrap.capability import BootstrapService
from shopfloor.pki.capability import PkiService

from ..serving import ADMIN
from .conftest import Browser, Plant
from .test_console import outside, sign_in, snap

OPERATOR = ("op@plant.example", "operator-password")


async def test_an_admin_makes_an_operator_who_is_refused_the_admin_parts(
    admin_plant: Plant, browser: Browser
) -> None:
    page = browser.page
    await sign_in(page, admin_plant.url, ADMIN)
    await page.click("nav >> text=Users")
    await page.click("details[data-testid=create-user] summary")
    form = page.locator("details[data-testid=create-user] form")
    await form.locator("[data-testid=email]").fill(OPERATOR[0])
    await form.locator("[data-testid=password]").fill("short")
    await form.locator("button[type=submit]").click()  # the browser stops it: minlength
    assert not await form.locator("[data-testid=password]").evaluate("e => e.validity.valid")
    await form.locator("[data-testid=password]").fill(OPERATOR[1])
    await form.locator("[data-testid=role]").select_option("operator")
    await form.locator("button[type=submit]").click()
    await page.locator(f"tr[data-user='{OPERATOR[0]}']").wait_for()  # the table reloaded
    await snap(page, "users")
    user = await admin_plant.registry.find_user_by_email(OPERATOR[0])
    assert user is not None and user.role == "operator"
    await page.click("[data-testid=sign-out]")
    await page.wait_for_selector("form[data-testid=sign-in-form]")  # back on the front page

    await sign_in(page, admin_plant.url, OPERATOR)
    nav = await page.locator("header nav").text_content() or ""
    assert "Users" not in nav and "My account" in nav
    # A forged request from the page (htmx, with the session's CSRF token): the API's 403.
    await page.evaluate(
        "htmx.ajax('POST', '/console/users', "
        "{values: {email: 'sneaky@plant.example', password: 'sneaky-password'}})"
    )
    error = page.locator("#console-error")
    await error.wait_for(state="visible")
    assert await error.text_content() == "role operator may not manage users"
    assert await admin_plant.registry.find_user_by_email("sneaky@plant.example") is None
    assert outside(admin_plant, browser) == []


async def test_a_certificate_is_issued_downloaded_and_revoked(
    admin_plant: Plant, browser: Browser, tmp_path: Path
) -> None:
    thing, _key = await admin_plant.registry.create_thing(admin_plant.org_id, name="press-1")
    page = browser.page
    await sign_in(page, admin_plant.url, ADMIN)
    await page.click("nav >> text=Certificates")
    await page.click("details[data-testid=issue-certificate] summary")
    form = page.locator("details[data-testid=issue-certificate] form")
    await form.locator("[data-testid=entity-id]").fill(thing.id)
    await form.locator("[data-testid=ttl]").fill("a week")
    await form.locator("button[type=submit]").click()  # the browser stops it: pattern
    assert not await form.locator("[data-testid=ttl]").evaluate("e => e.validity.valid")
    await form.locator("[data-testid=ttl]").fill("720h")
    await form.locator("button[type=submit]").click()
    key = page.locator("[data-testid=issued] [data-testid=key]")
    assert (await key.text_content() or "").startswith("-----BEGIN PRIVATE KEY-----")
    [record] = (await admin_plant.platform.get(PkiService).certs.list(admin_plant.org_id)).items
    row = page.locator(f"tr[data-certificate='{record.serial}']")
    await row.wait_for()
    await snap(page, "certificates")

    async with page.expect_download() as downloading:
        await page.click("[data-testid=issued-download]")
    saved = tmp_path / "cert.pem"
    await (await downloading.value).save_as(saved)
    assert saved.read_text() == record.cert_pem

    await row.locator("[data-testid=revoke]").click()  # confirmed (the dialog is accepted)
    await page.locator(f"tr[data-certificate='{record.serial}'] >> text=revoked").wait_for()
    assert (await admin_plant.platform.get(PkiService).certs.get(None, record.serial)).revoked
    assert outside(admin_plant, browser) == []


async def test_a_bootstrap_configuration_is_created_and_activated(
    admin_plant: Plant, browser: Browser
) -> None:
    channel = await admin_plant.registry.create_channel(admin_plant.org_id, name="telemetry")
    page = browser.page
    await sign_in(page, admin_plant.url, ADMIN)
    await page.click("nav >> text=Bootstrap")
    await page.click("details[data-testid=create-config] summary")
    form = page.locator("details[data-testid=create-config] form")
    await form.locator("[data-testid=external-id]").fill("00:1a:2b:3c:4d:5e")
    await form.locator("[data-testid=external-key]").fill("device-secret-1234")
    await form.locator("[data-testid=config-name]").fill("gateway-1")
    await form.locator("[data-testid=config-channels]").select_option(channel.id)
    await form.locator("button[type=submit]").click()
    row = page.locator("tr[data-config='00:1a:2b:3c:4d:5e']")
    await row.locator('[data-testid=state] >> text="inactive"').wait_for()
    await row.locator("[data-testid=toggle-state]").click()
    await page.locator(
        "tr[data-config='00:1a:2b:3c:4d:5e'] [data-testid=state] >> text=\"active\""
    ).wait_for()
    await snap(page, "bootstrap")
    bootstrap = admin_plant.platform.get(BootstrapService).bootstrap
    [config] = (await bootstrap.configs.page(admin_plant.org_id)).items
    assert config.state == State.ACTIVE and config.channels == (channel.id,)
    assert outside(admin_plant, browser) == []
