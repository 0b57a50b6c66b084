"""The AAS tables (created by `migrations/`), for queries."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from shopfloor.core import MigrationChain

__all__ = ["MIGRATIONS", "aas_files", "aas_objects", "aas_submodel_refs", "aas_topics"]

MIGRATIONS = MigrationChain("aas", Path(__file__).parent / "migrations", "alembic_version_aas")

_metadata = sa.MetaData()
TIMESTAMP = sa.DateTime(timezone=True)

aas_objects = sa.Table(
    "aas_objects",
    _metadata,
    sa.Column("org_id", sa.String(36), primary_key=True),
    sa.Column("kind", sa.String(24), primary_key=True),
    sa.Column("id", sa.String(2048), primary_key=True),
    sa.Column("id_short", sa.String(128), nullable=True),
    sa.Column("global_asset_id", sa.String(2048), nullable=True),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("updated_at", TIMESTAMP, nullable=False),
)

aas_files = sa.Table(
    "aas_files",
    _metadata,
    sa.Column("org_id", sa.String(36), primary_key=True),
    sa.Column("path", sa.String(1024), primary_key=True),
    sa.Column("content_type", sa.String(255), nullable=False),
    sa.Column("data", sa.LargeBinary, nullable=False),
    sa.Column("updated_at", TIMESTAMP, nullable=False),
)

#: A row per shell that has a Manager: the topic it talks to its Core on (and back).
aas_topics = sa.Table(
    "aas_topics",
    _metadata,
    sa.Column("org_id", sa.String(36), primary_key=True),
    sa.Column("aas_id", sa.String(2048), primary_key=True),
    sa.Column("topic", sa.String(249), nullable=False, unique=True),
    sa.Column("created_at", TIMESTAMP, nullable=False),
    sa.Column("core_agent", sa.String(63), nullable=True),
    sa.Column("for_agent", sa.Boolean, nullable=False, server_default=sa.false()),
)

#: A row per submodel reference of a shell (its first key), kept with the shell's row.
aas_submodel_refs = sa.Table(
    "aas_submodel_refs",
    _metadata,
    sa.Column("org_id", sa.String(36), nullable=False),
    sa.Column("aas_id", sa.String(2048), nullable=False),
    sa.Column("submodel_id", sa.String(2048), nullable=False),
)
