"""Table definitions (SQLAlchemy Core); the schema itself is made by the migrations."""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

ID = sa.String(36)
TIMESTAMP = sa.DateTime(timezone=True)
EXTERNAL_ID = sa.String(200)

configs = sa.Table(
    "bootstrap_configs",
    metadata,
    sa.Column("thing_id", ID, primary_key=True),
    sa.Column("org_id", ID, nullable=False),
    sa.Column("external_id", EXTERNAL_ID, nullable=False, unique=True),
    sa.Column("external_key_digest", sa.String(64), nullable=False),
    sa.Column("external_key_sealed", sa.Text, nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("channels", sa.JSON, nullable=False),
    sa.Column("content", sa.Text, nullable=False),
    sa.Column("client_cert", sa.Text, nullable=False),
    sa.Column("client_key_sealed", sa.Text, nullable=False),
    sa.Column("ca_cert", sa.Text, nullable=False),
    sa.Column("state", sa.Integer, nullable=False),
    sa.Column("failed_attempts", sa.Integer, nullable=False),
    sa.Column("created_at", TIMESTAMP, nullable=False),
    sa.Column("updated_at", TIMESTAMP, nullable=False),
)

challenges = sa.Table(
    "bootstrap_challenges",
    metadata,
    sa.Column("challenge", sa.String(64), primary_key=True),
    sa.Column("external_id", EXTERNAL_ID, nullable=False),
    sa.Column("expires_at", TIMESTAMP, nullable=False),
)

unknown = sa.Table(
    "bootstrap_unknown",
    metadata,
    sa.Column("external_id", EXTERNAL_ID, primary_key=True),
    sa.Column("first_seen", TIMESTAMP, nullable=False),
    sa.Column("last_seen", TIMESTAMP, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("last_address", sa.String(64), nullable=False),
)

# The registry's tables, as far as a configuration refers to them (read only).
things = sa.table("things", sa.column("id"), sa.column("org_id"), sa.column("name"))
channels = sa.table(
    "channels", sa.column("id"), sa.column("org_id"), sa.column("name"), sa.column("metadata")
)
