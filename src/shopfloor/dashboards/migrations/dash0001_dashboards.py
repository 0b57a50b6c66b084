"""Dashboards: one row per dashboard of an organisation, its document as JSON.

Revision ID: dash0001
Revises:
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "dash0001"
down_revision = None
branch_labels = None
depends_on = None

TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "dashboards",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("org_id", sa.String(36), nullable=False),
        # A copy of the document's title, for listing in order without parsing documents.
        sa.Column("title", sa.String(200), nullable=False),
        # The document (schemaVersion, variables, time, panels ...) as JSON.
        sa.Column("document", sa.Text, nullable=False),
        # 1, 2, ...: a save is written only over the version it was made from.
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
    )
    op.create_index("dashboards_org_title", "dashboards", ["org_id", "title"])


def downgrade() -> None:
    op.drop_index("dashboards_org_title", table_name="dashboards")
    op.drop_table("dashboards")
