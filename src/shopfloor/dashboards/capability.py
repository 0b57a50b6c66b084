"""Dashboards as a service: documents per organisation in the platform database, their
API, and (when the console runs here) their console pages with live panels."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import Field

from shopfloor.auth import Action
from shopfloor.core import Section, Service
from shopfloor.core.capability import DatabaseService
from shopfloor.messaging.capability import BusService
from shopfloor.ui import PREFIX, ConsolePage, pages
from shopfloor.ui.capability import console_templates

from ._store import DashboardStore
from ._tables import MIGRATIONS

#: The console pages' path, and where their script and style are served from.
BASE = PREFIX + "/dashboards"
STATIC_URL = BASE + "/static"
STATIC = Path(str(files(__package__) / "static"))

if TYPE_CHECKING:
    from shopfloor.core import Platform

__all__ = ["DashboardsService", "DashboardsSettings"]

pages.add(
    ConsolePage(
        capability="dashboards", path="/console/dashboards", title="nav.dashboards",
        action=Action.READ, order=30,
    )
)  # fmt: skip


class DashboardsSettings(Section, section="dashboards", env_prefix="SHOPFLOOR_DASHBOARDS_"):
    live_batch_seconds: float = Field(
        default=0.2, ge=0.05, le=5.0,
        description="Shortest time between two batches of live points of a dashboard's "
        "stream (points arriving meanwhile go in the next; a point after a quiet spell at "
        "once).",
    )  # fmt: skip


class DashboardsService(
    Service, name="dashboards", needs=("database", "bus", "identity", "timeseries")
):
    """Dashboards: panels of stored and live telemetry, their API and console pages."""

    routes = ("shopfloor.dashboards.routes:router", "shopfloor.dashboards.pages:router")
    migrations = MIGRATIONS.versions
    version_table = MIGRATIONS.version_table

    def __init__(self, platform: Platform) -> None:
        super().__init__(platform)
        self.settings = platform.settings.section(DashboardsSettings)
        self.store = DashboardStore(
            platform.get(DatabaseService).engine, announce=platform.get(BusService).events.emit
        )
        console_templates(platform, "shopfloor.dashboards", static=(STATIC_URL, STATIC))
