"""AAS: the shells that have a Manager, and the topic each one talks to its Core on.

Revision ID: aas0002
Revises: aas0001
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "aas0002"
down_revision = "aas0001"
branch_labels = None
depends_on = None

TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "aas_topics",
        sa.Column("org_id", sa.String(36), primary_key=True),
        sa.Column("aas_id", sa.String(2048), primary_key=True),
        # protocol.topic_for(org_id, aas_id): readable, but not reversible without this row.
        sa.Column("topic", sa.String(249), nullable=False, unique=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("aas_topics")
