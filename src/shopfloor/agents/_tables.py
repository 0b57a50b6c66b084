"""The agents tables (created by `migrations/`), for queries."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from shopfloor.core import MigrationChain

__all__ = ["MIGRATIONS", "agent_logs", "agent_states", "agents"]

MIGRATIONS = MigrationChain(
    "agents", Path(__file__).parent / "migrations", "alembic_version_agents"
)

_metadata = sa.MetaData()
TIMESTAMP = sa.DateTime(timezone=True)

agents = sa.Table(
    "agents",
    _metadata,
    sa.Column("org_id", sa.String(36), primary_key=True),
    sa.Column("name", sa.String(63), primary_key=True),
    sa.Column("spec", sa.JSON, nullable=False),
    sa.Column("previous_spec", sa.JSON, nullable=True),
    sa.Column("rollout", sa.JSON, nullable=True),
    sa.Column("generation", sa.Integer, nullable=False),
    sa.Column("deleting", sa.Boolean, nullable=False),
    sa.Column("restarts_asked", sa.Integer, nullable=False),
    sa.Column("provisioned", sa.JSON, nullable=False),
    sa.Column("credentials", sa.Text, nullable=True),
    sa.Column("cert_serial", sa.String(40), nullable=True),
    sa.Column("cert_expires_at", TIMESTAMP, nullable=True),
    sa.Column("observed_state", sa.String(16), nullable=False),
    sa.Column("observed_version", sa.String(128), nullable=False),
    sa.Column("restarts", sa.Integer, nullable=False),
    sa.Column("exit_code", sa.Integer, nullable=True),
    sa.Column("error", sa.Text, nullable=False),
    sa.Column("endpoint", sa.String(255), nullable=False),
    sa.Column("started_at", TIMESTAMP, nullable=True),
    sa.Column("observed_at", TIMESTAMP, nullable=True),
    sa.Column("created_at", TIMESTAMP, nullable=False),
    sa.Column("updated_at", TIMESTAMP, nullable=False),
)

agent_logs = sa.Table(
    "agent_logs",
    _metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("org_id", sa.String(36), nullable=False),
    sa.Column("name", sa.String(63), nullable=False),
    sa.Column("time", TIMESTAMP, nullable=False),
    sa.Column("stream", sa.String(8), nullable=False),
    sa.Column("text", sa.Text, nullable=False),
)

agent_states = sa.Table(
    "agent_states",
    _metadata,
    sa.Column("org_id", sa.String(36), primary_key=True),
    sa.Column("name", sa.String(63), primary_key=True),
    sa.Column("run", sa.String(64), nullable=False),
    sa.Column("sequence", sa.BigInteger, nullable=False),
    sa.Column("state", sa.JSON, nullable=False),
    sa.Column("published_at", TIMESTAMP, nullable=False),
    sa.Column("reported_at", TIMESTAMP, nullable=False),
)
