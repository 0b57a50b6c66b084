"""The relations tables (created by `migrations/`), for queries."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from shopfloor.core import MigrationChain

__all__ = ["MIGRATIONS", "changes", "revisions", "schemas", "tuples"]

MIGRATIONS = MigrationChain(
    "relations", Path(__file__).parent / "migrations", "alembic_version_relations"
)

_metadata = sa.MetaData()
TIMESTAMP = sa.DateTime(timezone=True)
ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")

tuples = sa.Table(
    "relation_tuples",
    _metadata,
    sa.Column("id", ID, primary_key=True, autoincrement=True),
    sa.Column("org_id", sa.String(36), nullable=False),
    sa.Column("subject", sa.String(400), nullable=False),
    sa.Column("relation", sa.String(64), nullable=False),
    sa.Column("object", sa.String(200), nullable=False),
    sa.Column("object_type", sa.String(64), nullable=False),
    sa.Column("created_at", TIMESTAMP, nullable=False),
)

changes = sa.Table(
    "relation_changes",
    _metadata,
    sa.Column("org_id", sa.String(36), primary_key=True),
    sa.Column("revision", sa.BigInteger, primary_key=True),
    sa.Column("position", sa.Integer, primary_key=True),
    sa.Column("op", sa.String(8), nullable=False),
    sa.Column("subject", sa.String(400), nullable=True),
    sa.Column("relation", sa.String(64), nullable=True),
    sa.Column("object", sa.String(200), nullable=True),
    sa.Column("schema", sa.JSON, nullable=True),
    sa.Column("created_at", TIMESTAMP, nullable=False),
)

revisions = sa.Table(
    "relation_revisions",
    _metadata,
    sa.Column("org_id", sa.String(36), primary_key=True),
    sa.Column("revision", sa.BigInteger, nullable=False),
    sa.Column("pruned_through", sa.BigInteger, nullable=False),
)

schemas = sa.Table(
    "relation_schemas",
    _metadata,
    sa.Column("org_id", sa.String(36), primary_key=True),
    sa.Column("document", sa.JSON, nullable=False),
    sa.Column("updated_at", TIMESTAMP, nullable=False),
    sa.Column("updated_by", sa.String(255), nullable=True),
)
