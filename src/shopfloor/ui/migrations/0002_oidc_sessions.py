"""Console: sessions of OIDC accounts (no local user) and pending OIDC sign-ins.

Revision ID: ui0002
Revises: ui0001
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "ui0002"
down_revision = "ui0001"
branch_labels = None
depends_on = None

TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("console_sessions") as table:
        table.alter_column("user_id", existing_type=sa.String(36), nullable=True)
        table.add_column(sa.Column("principal", sa.JSON, nullable=True))
    op.create_table(
        "console_oidc_sign_ins",
        sa.Column("id_hash", sa.String(64), primary_key=True),
        sa.Column("state", sa.String(64), nullable=False),
        sa.Column("nonce", sa.String(64), nullable=False),
        sa.Column("code_verifier", sa.String(128), nullable=False),
        sa.Column("next", sa.String(2000), nullable=False),
        sa.Column("expires_at", TIMESTAMP, nullable=False),
    )
    op.create_index("ix_console_oidc_sign_ins_expires_at", "console_oidc_sign_ins", ["expires_at"])


def downgrade() -> None:
    op.drop_table("console_oidc_sign_ins")
    op.execute(sa.text("DELETE FROM console_sessions WHERE user_id IS NULL"))
    with op.batch_alter_table("console_sessions") as table:
        table.drop_column("principal")
        table.alter_column("user_id", existing_type=sa.String(36), nullable=False)
