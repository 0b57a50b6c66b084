"""`DashboardStore`: every organisation's dashboards in the platform database.

A row holds one document as JSON, read back through the model (so a row written by an
older platform is migrated as it is read). Every row has a `version` (1, 2, ...):
`put(..., version=n)` writes only over version n, in one UPDATE whose WHERE holds the
version, so of two editors saving the same version one wins and the other is told
`dashboard_version_conflict` (409), as Grafana and ThingsBoard answer. Each change is
announced as `dashboards.<org_id>.changed` (`dashboard_id`, `version`, `op`).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from ._errors import DashboardConflict, DashboardNotFound
from ._model import DashboardDocument, check_document
from ._tables import dashboards

__all__ = ["Announce", "Dashboard", "DashboardPage", "DashboardStore", "changed_subject"]

#: `announce(subject, data)`: the bus's `EventHub.emit`.
Announce = Callable[[str, dict[str, Any]], object]


def changed_subject(org_id: str) -> str:
    return f"dashboards.{org_id}.changed"


@dataclass(frozen=True, slots=True)
class Dashboard:
    id: str
    org_id: str
    version: int
    document: DashboardDocument
    created_at: datetime
    updated_at: datetime

    def to_json(self) -> dict[str, Any]:
        """The API's shape: the document's fields beside id, version and times."""
        return {
            "id": self.id,
            "version": self.version,
            **self.document.to_json(),
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
        }


@dataclass(frozen=True, slots=True)
class DashboardPage:
    items: list[Dashboard]
    total: int


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


class DashboardStore:
    def __init__(self, engine: AsyncEngine, *, announce: Announce | None = None) -> None:
        self._engine = engine
        self._announce = announce

    async def page(self, org_id: str, *, offset: int = 0, limit: int = 100) -> DashboardPage:
        """A page of the organisation's dashboards, by title."""
        t = dashboards
        query = (
            sa.select(t).where(t.c.org_id == org_id).order_by(t.c.title, t.c.id)
            .offset(offset).limit(limit)
        )  # fmt: skip
        count = sa.select(sa.func.count()).select_from(t).where(t.c.org_id == org_id)
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
            total = (await conn.execute(count)).scalar_one()
        return DashboardPage(items=[self._dashboard(row) for row in rows], total=int(total))

    async def get(self, org_id: str, dashboard_id: str) -> Dashboard:
        """One dashboard; another organisation's is `DashboardNotFound` as a missing one."""
        t = dashboards
        query = sa.select(t).where(t.c.org_id == org_id, t.c.id == dashboard_id)
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).first()
        if row is None:
            raise DashboardNotFound(f"no dashboard {dashboard_id!r}")
        return self._dashboard(row)

    async def find(self, org_id: str, title: str) -> Dashboard | None:
        """The first dashboard of that title (the demo seeds its own once)."""
        t = dashboards
        query = (
            sa.select(t).where(t.c.org_id == org_id, t.c.title == title).order_by(t.c.created_at)
            .limit(1)
        )  # fmt: skip
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).first()
        return None if row is None else self._dashboard(row)

    async def create(self, org_id: str, document: DashboardDocument) -> Dashboard:
        now = datetime.now(UTC)
        dashboard = Dashboard(
            id=str(uuid.uuid4()), org_id=org_id, version=1, document=document,
            created_at=now, updated_at=now,
        )  # fmt: skip
        async with self._engine.begin() as conn:
            await conn.execute(
                sa.insert(dashboards).values(
                    id=dashboard.id,
                    org_id=org_id,
                    title=document.title,
                    document=_encode(document),
                    version=1,
                    created_at=now,
                    updated_at=now,
                )
            )
        self._changed(dashboard, "put")
        return dashboard

    async def put(
        self, org_id: str, dashboard_id: str, document: DashboardDocument, *, version: int
    ) -> Dashboard:
        """Write `document` over version `version`; `DashboardConflict` when the stored
        one is another (someone saved in between), `DashboardNotFound` when none is."""
        t = dashboards
        now = datetime.now(UTC)
        async with self._engine.begin() as conn:
            result = await conn.execute(
                sa.update(t)
                .where(t.c.org_id == org_id, t.c.id == dashboard_id, t.c.version == version)
                .values(
                    title=document.title,
                    document=_encode(document),
                    version=version + 1,
                    updated_at=now,
                )
            )
            row = None
            if result.rowcount == 0:
                query = sa.select(t.c.version).where(t.c.org_id == org_id, t.c.id == dashboard_id)
                row = (await conn.execute(query)).first()
                if row is None:
                    raise DashboardNotFound(f"no dashboard {dashboard_id!r}")
            created = (
                await conn.execute(sa.select(t.c.created_at).where(t.c.id == dashboard_id))
            ).scalar_one()
        if row is not None:
            raise DashboardConflict(
                f"the dashboard was changed by someone else: reload (version {row.version} "
                f"is stored, the change was made to version {version})"
            )
        dashboard = Dashboard(
            id=dashboard_id, org_id=org_id, version=version + 1, document=document,
            created_at=_utc(created), updated_at=now,
        )  # fmt: skip
        self._changed(dashboard, "put")
        return dashboard

    async def delete(self, org_id: str, dashboard_id: str) -> None:
        t = dashboards
        async with self._engine.begin() as conn:
            result = await conn.execute(
                sa.delete(t).where(t.c.org_id == org_id, t.c.id == dashboard_id)
            )
        if result.rowcount == 0:
            raise DashboardNotFound(f"no dashboard {dashboard_id!r}")
        if self._announce is not None:
            self._announce(
                changed_subject(org_id),
                {"org_id": org_id, "dashboard_id": dashboard_id, "version": None, "op": "delete"},
            )

    def _changed(self, dashboard: Dashboard, op: str) -> None:
        if self._announce is not None:
            self._announce(
                changed_subject(dashboard.org_id),
                {
                    "org_id": dashboard.org_id, "dashboard_id": dashboard.id,
                    "version": dashboard.version, "op": op,
                },
            )  # fmt: skip

    @staticmethod
    def _dashboard(row: Any) -> Dashboard:
        return Dashboard(
            id=row.id, org_id=row.org_id, version=row.version,
            document=check_document(json.loads(row.document)),
            created_at=_utc(row.created_at), updated_at=_utc(row.updated_at),
        )  # fmt: skip


def _encode(document: DashboardDocument) -> str:
    return json.dumps(document.to_json(), separators=(",", ":"))
