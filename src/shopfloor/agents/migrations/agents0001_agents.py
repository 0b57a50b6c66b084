"""Agents: their specs, what was provisioned for them, their observed status; shipped logs.

Revision ID: agents0001
Revises:
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "agents0001"
down_revision = None
branch_labels = None
depends_on = None

TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "agents",
        # No foreign key to organisations: deleting an organisation must first let the
        # reconciler stop its agents and remove their credentials.
        sa.Column("org_id", sa.String(36), primary_key=True),
        sa.Column("name", sa.String(63), primary_key=True),
        # The spec as validated (no credentials), and the one an upgrade rolls back to.
        sa.Column("spec", sa.JSON, nullable=False),
        sa.Column("previous_spec", sa.JSON, nullable=True),
        sa.Column("rollout", sa.JSON, nullable=True),
        sa.Column("generation", sa.Integer, nullable=False),
        sa.Column("deleting", sa.Boolean, nullable=False),
        # Bumped by every restart asked for (API, CLI); the reconciler restarts on a rise.
        sa.Column("restarts_asked", sa.Integer, nullable=False),
        # Provisioner names that made credentials: what deleting must remove.
        sa.Column("provisioned", sa.JSON, nullable=False),
        # Credentials and the certificate's key, sealed (AES-GCM, key in the data dir).
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
    op.create_table(
        "agent_logs",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
        sa.Column("org_id", sa.String(36), nullable=False),
        sa.Column("name", sa.String(63), nullable=False),
        sa.Column("time", TIMESTAMP, nullable=False),
        sa.Column("stream", sa.String(8), nullable=False),
        sa.Column("text", sa.Text, nullable=False),
    )
    op.create_index("ix_agent_logs_agent_time", "agent_logs", ["org_id", "name", "time"])


def downgrade() -> None:
    op.drop_index("ix_agent_logs_agent_time", "agent_logs")
    op.drop_table("agent_logs")
    op.drop_table("agents")
