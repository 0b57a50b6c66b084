"""Agents: the last state each agent reported to the platform (its state via the bus).

Revision ID: agents0002
Revises: agents0001
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "agents0002"
down_revision = "agents0001"
branch_labels = None
depends_on = None

TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "agent_states",
        sa.Column("org_id", sa.String(36), primary_key=True),
        sa.Column("name", sa.String(63), primary_key=True),
        # A run of the agent (a process start) numbers its states 1, 2, ...: a state of
        # the same run with a lower sequence is an old one, arriving late.
        sa.Column("run", sa.String(64), nullable=False),
        sa.Column("sequence", sa.BigInteger, nullable=False),
        sa.Column("state", sa.JSON, nullable=False),
        sa.Column("published_at", TIMESTAMP, nullable=False),
        sa.Column("reported_at", TIMESTAMP, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("agent_states")
