"""The console as a service: server-rendered pages (Jinja2 + htmx) at `/`, signed in
with the platform's own accounts or at the OIDC issuer into server-side sessions
(docs/console.md).

Its browser assets (htmx, its SSE extension, ECharts) come from the npm registry,
installed by `make install` (`npm ci` over the committed lock file) into
`node_modules`, and are served by the console itself: no page loads anything from
outside the platform.
"""

from __future__ import annotations

import logging
from contextlib import AsyncExitStack
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import Field, SecretStr

from shopfloor.auth import Action
from shopfloor.auth.capability import IdentityService
from shopfloor.core import Section, Service
from shopfloor.core.capability import DatabaseService

from ._i18n import Catalogue
from ._oidc import OidcSignIn
from ._pages import ConsolePage, pages
from ._sessions import SessionStore
from ._web import VENDOR_FILES, Console

if TYPE_CHECKING:
    from shopfloor.core import Platform

__all__ = ["ConsoleService", "ConsoleSettings", "console_router", "console_templates"]

logger = logging.getLogger(__name__)

#: `node_modules` of the source checkout, where `make install` puts the assets.
CHECKOUT_ASSETS = Path(__file__).resolve().parents[3] / "node_modules"


class ConsoleSettings(Section, section="console", env_prefix="SHOPFLOOR_CONSOLE_"):
    session_ttl_seconds: int = Field(
        default=8 * 3600, ge=60, le=30 * 86400,
        description="Life of a console sign-in session, from sign-in (not renewed by use).",
    )  # fmt: skip
    assets_dir: Path | None = Field(
        default=None,
        description="Folder of the installed npm packages (`node_modules`) whose files the "
        "console serves; unset: `node_modules` of the source checkout (`make install`).",
    )
    language: str = Field(
        default="en", pattern=r"^[a-z]{2}$",
        description="Language of the console when the browser asks for none of its own.",
    )  # fmt: skip
    oidc_client_id: str = Field(
        default="",
        description="Client id of the console at the OIDC issuer (`SHOPFLOOR_OIDC_ISSUER`); "
        "set, the sign-in page offers the issuer's sign-in beside the password form.",
    )
    oidc_client_secret: SecretStr = Field(
        default=SecretStr(""),
        description="Its client secret (confidential client); empty: a public client (PKCE).",
    )
    oidc_redirect_url: str = Field(
        default="",
        description="The callback URL registered at the issuer; empty: "
        "`<the URL the browser used>/console/sign-in/oidc/callback`.",
    )
    oidc_label: str = Field(
        default="", description="Name of the issuer on the sign-in button; empty: its host."
    )
    oidc_scope: str = Field(
        default="openid email profile", description="Scopes asked of the issuer."
    )
    oidc_session_ttl_seconds: int = Field(
        default=3600, ge=60, le=30 * 86400,
        description="Longest life of the console session of an OIDC account (the issuer's "
        "later changes count from its next sign-in).",
    )  # fmt: skip


# The built-in pages; other capabilities add theirs from their own capability.py.
pages.add(ConsolePage(capability="console", path="/", title="nav.overview", order=0))
pages.add(ConsolePage(capability="console", path="/console/things", title="nav.things", order=10))
pages.add(
    ConsolePage(capability="console", path="/console/channels", title="nav.channels", order=20)
)
pages.add(ConsolePage(capability="console", path="/console/explore", title="nav.explore", order=30))
pages.add(ConsolePage(capability="agents", path="/console/agents", title="nav.agents", order=40))
pages.add(
    ConsolePage(
        capability="console", path="/console/users", title="users.title",
        action=Action.MANAGE_USERS, order=80,
    )
)  # fmt: skip
pages.add(
    ConsolePage(capability="console", path="/console/account", title="account.title", order=95)
)
pages.add(ConsolePage(capability="flows", path="/console/flows", title="nav.flows", order=50))


class ConsoleService(Service, name="console", needs=("database", "identity", "timeseries")):
    """The web console at `/`: sign-in, plant overview, things, channels and the data
    explorer (docs/console.md)."""

    routes = (
        "shopfloor.ui.routes:router",
        "shopfloor.ui.overview:router",
        "shopfloor.ui.things:router",
        "shopfloor.ui.explore:router",
        "shopfloor.ui.users:router",
    )
    migrations = Path(__file__).parent / "migrations"
    version_table = "alembic_version_console"
    #: Not ready without its browser assets: every page would load no htmx or ECharts.
    health = "console"

    def __init__(self, platform: Platform) -> None:
        super().__init__(platform)
        self.settings = platform.settings.section(ConsoleSettings)
        catalogue = Catalogue.load()
        if self.settings.language not in catalogue.languages:
            logger.warning("the console has no texts in %s; English it is", self.settings.language)
        self.console = Console(
            sessions=SessionStore(
                platform.get(DatabaseService).engine,
                ttl_seconds=self.settings.session_ttl_seconds,
            ),
            catalogue=catalogue,
            assets_dir=self.settings.assets_dir or CHECKOUT_ASSETS,
            language=self.settings.language,
            oidc=self._oidc_sign_in(platform),
        )

    def _missing_assets(self) -> list[str]:
        return [name for name in VENDOR_FILES if self.console.asset(name) is None]

    @property
    def ready(self) -> bool:
        return super().ready and not self._missing_assets()

    def problem(self) -> str | None:
        missing = self._missing_assets()
        if not missing:
            return None
        return (
            f"the console's browser assets {', '.join(missing)} are not under "
            f"{self.console.assets_dir}: run `make install` (npm ci) or set "
            "SHOPFLOOR_CONSOLE_ASSETS_DIR to the folder of the installed npm packages"
        )

    def _oidc_sign_in(self, platform: Platform) -> OidcSignIn | None:
        auth = platform.get(IdentityService).auth
        if auth.oidc is None or not self.settings.oidc_client_id:
            return None
        return OidcSignIn(
            platform.get(DatabaseService).engine,
            auth,
            auth.oidc,
            client_id=self.settings.oidc_client_id,
            client_secret=self.settings.oidc_client_secret.get_secret_value(),
            scope=self.settings.oidc_scope,
            label=self.settings.oidc_label or urlsplit(auth.oidc.issuer).netloc,
            redirect_url=self.settings.oidc_redirect_url,
            session_ttl_seconds=self.settings.oidc_session_ttl_seconds,
        )

    async def _start(self, stack: AsyncExitStack) -> None:
        problem = self.problem()
        if problem:  # and /health says so until they are there
            logger.warning("%s; pages work without htmx meanwhile", problem)


def console_templates(
    platform: Platform, package: str, *, static: tuple[str, Path] | None = None
) -> None:
    """Let the console render the templates of `package` (its `templates` folder) when it
    runs in this process, and name the files of `static` (`(url, folder)`, as the
    capability serves them) with `asset()`. For a capability's service `__init__`: the
    console may start after it, so both are added once every service has started."""

    async def add() -> None:
        if platform.running(ConsoleService):
            console = platform.get(ConsoleService).console
            console.add_templates(package)
            if static is not None:
                console.add_static(*static)

    platform.on_started.append(add)


def _console_runs(request: Request) -> None:
    platform: Platform = request.app.state.platform
    if not platform.running(ConsoleService):
        raise HTTPException(status_code=404)


def console_router() -> APIRouter:
    """The router of a capability's console pages: listed in the capability's own
    `routes`, so mounted wherever it runs, and answering `404 not_found` (as any path
    that is not there) in a process without the console."""
    return APIRouter(include_in_schema=False, dependencies=[Depends(_console_runs)])
