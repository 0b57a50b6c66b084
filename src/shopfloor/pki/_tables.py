"""The `certificates` table (created by `migrations/`), for queries."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from shopfloor.core import MigrationChain

__all__ = ["MIGRATIONS", "certificates"]

MIGRATIONS = MigrationChain("pki", Path(__file__).parent / "migrations", "alembic_version_pki")

_metadata = sa.MetaData()
TIMESTAMP = sa.DateTime(timezone=True)

certificates = sa.Table(
    "certificates",
    _metadata,
    sa.Column("serial", sa.String(40), primary_key=True),
    sa.Column("entity_type", sa.String(16), nullable=False),
    sa.Column("entity_id", sa.String(128), nullable=False),
    sa.Column("org_id", sa.String(36), nullable=True),
    sa.Column("issued_at", TIMESTAMP, nullable=False),
    sa.Column("expires_at", TIMESTAMP, nullable=False),
    sa.Column("backend", sa.String(16), nullable=False),
    sa.Column("cert_pem", sa.Text, nullable=False),
    sa.Column("revoked_at", TIMESTAMP, nullable=True),
    sa.Column("revocation_reason", sa.String(32), nullable=True),
)
