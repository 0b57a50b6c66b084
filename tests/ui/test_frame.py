"""The console's frame without a browser: texts, the page registry, sessions."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from shopfloor.app import create_app
from shopfloor.auth import Principal, hash_password
from shopfloor.auth.capability import IdentityService
from shopfloor.core.capability import DatabaseService
from shopfloor.registry import Role
from shopfloor.ui import Catalogue, ConsolePage, ConsolePages, SessionStore

from ..serving import ADMIN, lifespan


def test_every_language_has_every_text_and_no_other() -> None:
    catalogue = Catalogue.load()
    assert catalogue.languages == ("en", "ru")
    assert catalogue.check() == {}
    assert catalogue.missing("ru") == []
    assert catalogue.text("ru", "nav.things") == "Устройства"
    assert catalogue.text("ru", "common.saved", name="press") == "Сохранено: press."
    assert catalogue.text("de", "nav.things") == "Things"  # English when unknown


@pytest.mark.parametrize(
    ("header", "language"),
    [("ru-RU,ru;q=0.9,en;q=0.8", "ru"), ("de-DE,en;q=0.5,ru;q=0.4", "en"), ("fr", "en")],
)
def test_the_browser_language_picks_among_ours(header: str, language: str) -> None:
    assert Catalogue.load().best(header) == language


def _principal(role: Role | None) -> Principal:
    return Principal(
        subject="u", email="u@plant.example", org_id="org" if role else None, role=role,
        platform_admin=False, source="local",
    )  # fmt: skip


def test_the_navigation_lists_running_pages_the_role_may_see() -> None:
    from shopfloor.auth import Action

    registry = ConsolePages()
    registry.add(ConsolePage(capability="console", path="/console/things", title="nav.things"))
    registry.add(
        ConsolePage(
            capability="agents",
            path="/console/agents",
            title="nav.agents",
            action=Action.MANAGE_AGENTS,
            order=1,
        )
    )
    with pytest.raises(ValueError, match="registered already"):
        registry.add(ConsolePage(capability="x", path="/console/things", title="nav.x"))
    with pytest.raises(ValueError, match="/console/"):
        registry.add(ConsolePage(capability="x", path="/flows", title="nav.x"))

    engineer, viewer = _principal(Role.ENGINEER), _principal(Role.VIEWER)
    assert [p.path for p in registry.visible(engineer, {"console", "agents"})] == [
        "/console/agents", "/console/things",
    ]  # fmt: skip
    assert [p.path for p in registry.visible(engineer, {"console"})] == ["/console/things"]
    assert [p.path for p in registry.visible(viewer, {"console", "agents"})] == ["/console/things"]
    assert registry.visible(_principal(None), {"console"}) == []


async def test_sessions_are_stored_hashed_expire_and_end_with_a_new_password(
    make_settings: Callable[..., Any], database_url: str
) -> None:
    """On SQLite and PostgreSQL: the console's migration and its sessions table."""
    app = create_app(make_settings(services="console", database_url=database_url))
    async with lifespan(app):
        platform = app.state.platform
        registry = platform.get(IdentityService).registry
        auth = platform.get(IdentityService).auth
        admin = await registry.find_user_by_email(ADMIN[0])
        assert admin is not None
        clock = [datetime(2026, 12, 2, tzinfo=UTC)]
        store = SessionStore(
            platform.get(DatabaseService).engine, ttl_seconds=60, clock=lambda: clock[0]
        )
        session_id, session = await store.create(admin.id, generation=0, language="ru")
        engine = platform.get(DatabaseService).engine
        async with engine.connect() as conn:
            stored = (await conn.exec_driver_sql("SELECT id_hash FROM console_sessions")).all()
        assert session_id not in {row[0] for row in stored}
        found = await store.get(session_id)
        assert found is not None and found.language == "ru"
        assert found.csrf_token == session.csrf_token

        clock[0] += timedelta(seconds=61)
        assert await store.get(session_id) is None  # expired

        # The language a user chose is theirs, kept across sessions; it goes with them.
        assert await store.user_language(admin.id) is None
        await store.remember_language(admin.id, "ru")
        await store.remember_language(admin.id, "en")
        assert await store.user_language(admin.id) == "en"

        clock[0] = datetime(2026, 12, 2, tzinfo=UTC)
        await registry.update_user(admin.id, password_hash=hash_password("another-password"))
        assert (await registry.get_user(admin.id)).token_generation == 1
        with pytest.raises(Exception, match="password was changed"):
            await auth.user_principal(admin.id, generation=found.generation)


async def test_sign_in_redirects_only_within_the_platform(
    make_settings: Callable[..., Any],
) -> None:
    app = create_app(make_settings(services="console"))
    async with lifespan(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://console") as http:
            page = await http.get("/console/sign-in?next=//evil.example/")
            assert 'name="next" value="/"' in page.text
            csrf = http.cookies["shopfloor_csrf"]
            signed = await http.post(
                "/console/sign-in",
                data={"email": ADMIN[0], "password": ADMIN[1], "csrf_token": csrf,
                      "next": "https://evil.example/"},
            )  # fmt: skip
            assert signed.status_code == 303 and signed.headers["location"] == "/"
            assert page.headers["content-security-policy"].startswith("default-src 'self'")
            odd = await http.post(
                "/console/language", data={"language": "ru"},
                headers={"X-CSRF-Token": "\u00e9t\u00e9".encode()},
            )  # fmt: skip
            assert odd.status_code == 403  # refused, not a 500
            http.cookies.clear()
            without_csrf = await http.post(
                "/console/sign-in", data={"email": ADMIN[0], "password": ADMIN[1]}
            )
            assert without_csrf.status_code == 403


async def test_the_session_cookie_is_secure_over_https(make_settings: Callable[..., Any]) -> None:
    app = create_app(make_settings(services="console"))
    async with lifespan(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="https://console") as http:
            await http.get("/")
            signed = await http.post(
                "/console/sign-in",
                data={"email": ADMIN[0], "password": ADMIN[1],
                      "csrf_token": http.cookies["shopfloor_csrf"]},
            )  # fmt: skip
    cookie = signed.headers["set-cookie"].lower()
    assert cookie.startswith("shopfloor_session=")
    assert {"httponly", "secure", "samesite=lax", "path=/"} <= {
        part.strip() for part in cookie.split(",")[0].split(";")
    }


async def test_a_refused_page_is_a_page_and_sign_in_comes_back_to_it(
    make_settings: Callable[..., Any],
) -> None:
    app = create_app(make_settings(services="console"))
    async with lifespan(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://console") as http:
            away = await http.get("/console/channels/nowhere?limit=10")
            assert away.status_code == 303
            assert away.headers["location"] == (
                "/console/sign-in?next=/console/channels/nowhere%3Flimit%3D10"
            )
            await http.get(away.headers["location"])
            signed = await http.post(
                "/console/sign-in",
                data={"email": ADMIN[0], "password": ADMIN[1],
                      "csrf_token": http.cookies["shopfloor_csrf"],
                      "next": "/console/channels/nowhere?limit=10"},
            )  # fmt: skip
            assert signed.headers["location"] == "/console/channels/nowhere?limit=10"
            # The first admin is a platform admin of no organisation: the API's refusal.
            page = await http.get("/console/channels/nowhere")
            assert page.status_code == 403
            assert page.headers["content-type"].startswith("text/html")
            assert "this account belongs to no organisation" in page.text
            assert "no_organisation" in page.text

            registry = app.state.platform.get(IdentityService).registry
            org = await registry.create_org("Plant")
            admin = await registry.find_user_by_email(ADMIN[0])
            assert admin is not None
            await registry.update_user(admin.id, org_id=org.id, role=Role.ADMIN)
            missing = await http.get("/console/channels/nowhere")
            assert missing.status_code == 404 and "channel_not_found" in missing.text
            by_htmx = await http.get("/console/channels/nowhere", headers={"HX-Request": "true"})
            assert by_htmx.json()["error"]["code"] == "channel_not_found"


async def test_health_names_missing_browser_assets_and_their_fix(
    make_settings: Callable[..., Any], tmp_path: Any
) -> None:
    empty = tmp_path / "no-node-modules"
    empty.mkdir()
    app = create_app(make_settings(services="api,console", console_assets_dir=empty))
    async with lifespan(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://console") as http:
            health = await http.get("/health")
    assert health.status_code == 503
    assert health.json()["services"]["console"] is False
    problem = health.json()["problems"]["console"]
    assert "htmx.min.js" in problem and str(empty) in problem and "npm ci" in problem


async def test_scripts_and_styles_are_cached_by_their_digest(
    make_settings: Callable[..., Any], tmp_path: Any
) -> None:
    import re

    from shopfloor.dashboards.pages import STATIC
    from shopfloor.ui._web import file_digest

    app = create_app(make_settings(services="api,console,dashboards"))
    async with lifespan(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://console") as http:
            page = (await http.get("/console/sign-in")).text
            urls = re.findall(r'(?:src|href)="(/console/[^"]+\?v=[0-9a-f]{16})"', page)
            assert {u.split("?")[0] for u in urls} >= {
                "/console/static/console.css", "/console/static/console.js",
                "/console/vendor/htmx.min.js",
            }  # fmt: skip
            for url in urls:
                kept = await http.get(url)
                assert kept.status_code == 200
                assert kept.headers["cache-control"] == "public, max-age=31536000, immutable"
                stale = await http.get(url.split("?")[0] + "?v=0000000000000000")
                assert stale.headers["cache-control"] == "no-cache" and "etag" in stale.headers
            digest = file_digest(STATIC / "dashboard.js")
            script = await http.get(f"/console/dashboards/static/dashboard.js?v={digest}")
            assert "immutable" in script.headers["cache-control"]
    changed = tmp_path / "a.js"
    changed.write_text("one")
    first = file_digest(changed)
    changed.write_text("other")
    assert file_digest(changed) != first
