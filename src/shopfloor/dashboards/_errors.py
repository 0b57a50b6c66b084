"""Dashboard failures (a subtree of `shopfloor.core`'s error tree).

DashboardError                  every failure of the dashboards capability
├── InvalidDashboard            a document the model refuses: `details` names each wrong
│                               field (`field`, `problem`) (invalid); code
│                               `dashboard_schema_unsupported` for a `schemaVersion`
│                               newer than this platform reads
├── DashboardNotFound           no such dashboard in this organisation (not_found)
└── DashboardConflict           a save over a version that is no longer the stored one
                                (conflict, `dashboard_version_conflict`)
"""

from __future__ import annotations

from typing import Any

from shopfloor.core import ErrorKind, ShopfloorError

__all__ = ["DashboardConflict", "DashboardError", "DashboardNotFound", "InvalidDashboard"]


class DashboardError(ShopfloorError):
    code = "dashboard_error"
    kind = ErrorKind.UNAVAILABLE


class InvalidDashboard(DashboardError):
    code = "invalid_dashboard"
    kind = ErrorKind.INVALID

    def __init__(
        self, message: str, *, details: list[dict[str, Any]] | None = None,
        code: str | None = None,
    ) -> None:  # fmt: skip
        super().__init__(message, code=code)
        #: Each wrong field of the document: `{"field": "panels.0.type", "problem": ...}`.
        self.details = details or []


class DashboardNotFound(DashboardError):
    code = "dashboard_not_found"
    kind = ErrorKind.NOT_FOUND


class DashboardConflict(DashboardError):
    code = "dashboard_version_conflict"
    kind = ErrorKind.CONFLICT
