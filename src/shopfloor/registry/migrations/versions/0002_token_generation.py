"""Users: a token generation, bumped by every password change, that ends older tokens.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Existing rows start at 0, which is also what tokens issued before this revision
    # (they carry no generation) count as: nobody is signed out by the upgrade.
    op.add_column(
        "users",
        sa.Column("token_generation", sa.Integer, nullable=False, server_default="0"),
    )


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.drop_column("token_generation")
