"""Dashboards: per-organisation documents of panels (line, gauge, stat, table, bar) over
the stored telemetry, their API at `/api/v1/dashboards`, and console pages whose panels
follow the bus live (docs/console.md, "Dashboards")."""

from ._errors import DashboardConflict, DashboardError, DashboardNotFound, InvalidDashboard
from ._model import (
    MAX_PANELS,
    MAX_POINTS,
    PANEL_TYPES,
    SCHEMA_VERSION,
    DashboardDocument,
    Panel,
    PanelQuery,
    check_document,
)
from ._store import Dashboard, DashboardPage, DashboardStore, changed_subject

__all__ = [
    "MAX_PANELS",
    "MAX_POINTS",
    "PANEL_TYPES",
    "SCHEMA_VERSION",
    "Dashboard",
    "DashboardConflict",
    "DashboardDocument",
    "DashboardError",
    "DashboardNotFound",
    "DashboardPage",
    "DashboardStore",
    "InvalidDashboard",
    "Panel",
    "PanelQuery",
    "changed_subject",
    "check_document",
]
