"""Bootstrap: device configurations, secure-bootstrap challenges, unknown devices.

Revision ID: b0001
Revises:
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "b0001"
down_revision = None
branch_labels = None
depends_on = None

ID = sa.String(36)
TIMESTAMP = sa.DateTime(timezone=True)
EXTERNAL_ID = sa.String(200)


def upgrade() -> None:
    op.create_table(
        "bootstrap_configs",
        sa.Column(
            "thing_id",
            ID,
            # Deleting the thing deletes its configuration, in every process at once.
            sa.ForeignKey("things.id", ondelete="CASCADE", name="fk_bootstrap_configs_thing_id"),
            primary_key=True,
        ),
        sa.Column(
            "org_id",
            ID,
            sa.ForeignKey("orgs.id", ondelete="CASCADE", name="fk_bootstrap_configs_org_id"),
            nullable=False,
        ),
        sa.Column("external_id", EXTERNAL_ID, nullable=False),
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
        sa.UniqueConstraint("external_id", name="uq_bootstrap_configs_external_id"),
    )
    op.create_index("ix_bootstrap_configs_org_id", "bootstrap_configs", ["org_id", "name"])
    op.create_table(
        "bootstrap_challenges",
        sa.Column("challenge", sa.String(64), primary_key=True),
        sa.Column("external_id", EXTERNAL_ID, nullable=False),
        sa.Column("expires_at", TIMESTAMP, nullable=False),
    )
    op.create_index("ix_bootstrap_challenges_expires_at", "bootstrap_challenges", ["expires_at"])
    op.create_table(
        "bootstrap_unknown",
        sa.Column("external_id", EXTERNAL_ID, primary_key=True),
        sa.Column("first_seen", TIMESTAMP, nullable=False),
        sa.Column("last_seen", TIMESTAMP, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("last_address", sa.String(64), nullable=False),
    )
    op.create_index("ix_bootstrap_unknown_last_seen", "bootstrap_unknown", ["last_seen"])


def downgrade() -> None:
    op.drop_table("bootstrap_unknown")
    op.drop_table("bootstrap_challenges")
    op.drop_index("ix_bootstrap_configs_org_id", "bootstrap_configs")
    op.drop_table("bootstrap_configs")
