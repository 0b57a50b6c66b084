"""The dashboards table (created by `migrations/`), for queries."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from shopfloor.core import MigrationChain

__all__ = ["MIGRATIONS", "dashboards"]

MIGRATIONS = MigrationChain(
    "dashboards", Path(__file__).parent / "migrations", "alembic_version_dashboards"
)

_metadata = sa.MetaData()
TIMESTAMP = sa.DateTime(timezone=True)

dashboards = sa.Table(
    "dashboards",
    _metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("org_id", sa.String(36), nullable=False),
    sa.Column("title", sa.String(200), nullable=False),
    sa.Column("document", sa.Text, nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("created_at", TIMESTAMP, nullable=False),
    sa.Column("updated_at", TIMESTAMP, nullable=False),
)
