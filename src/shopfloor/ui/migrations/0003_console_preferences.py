"""Console: each user's language, kept across sign-ins.

Revision ID: ui0003
Revises: ui0002
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "ui0003"
down_revision = "ui0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "console_preferences",
        sa.Column(
            "user_id",
            sa.String(36),
            sa.ForeignKey("users.id", ondelete="CASCADE", name="fk_console_preferences_user_id"),
            primary_key=True,
        ),
        sa.Column("language", sa.String(8), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("console_preferences")
