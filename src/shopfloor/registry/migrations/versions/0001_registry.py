"""Registry: organisations, users, things, channels, tags and connections.

Revision ID: 0001
Revises:
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

ID = sa.String(36)
TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "orgs",
        sa.Column("id", ID, primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.UniqueConstraint("name", name="uq_orgs_name"),
    )
    op.create_table(
        "users",
        sa.Column("id", ID, primary_key=True),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column(
            "org_id",
            ID,
            sa.ForeignKey("orgs.id", ondelete="CASCADE", name="fk_users_org_id_orgs"),
            nullable=True,
        ),
        sa.Column("role", sa.String(20), nullable=True),
        sa.Column("platform_admin", sa.Boolean, nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.UniqueConstraint("email", name="uq_users_email"),
    )
    op.create_table(
        "things",
        sa.Column("id", ID, primary_key=True),
        sa.Column(
            "org_id",
            ID,
            sa.ForeignKey("orgs.id", ondelete="CASCADE", name="fk_things_org_id_orgs"),
            nullable=False,
        ),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False),
        sa.Column("key_ciphertext", sa.Text, nullable=False),
        sa.Column("metadata", sa.JSON, nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.UniqueConstraint("key_hash", name="uq_things_key_hash"),
        sa.UniqueConstraint("org_id", "name", name="uq_things_org_id_name"),
    )
    op.create_table(
        "channels",
        sa.Column("id", ID, primary_key=True),
        sa.Column(
            "org_id",
            ID,
            sa.ForeignKey("orgs.id", ondelete="CASCADE", name="fk_channels_org_id_orgs"),
            nullable=False,
        ),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("metadata", sa.JSON, nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.UniqueConstraint("org_id", "name", name="uq_channels_org_id_name"),
    )
    op.create_table(
        "thing_tags",
        sa.Column(
            "thing_id",
            ID,
            sa.ForeignKey("things.id", ondelete="CASCADE", name="fk_thing_tags_thing_id_things"),
            primary_key=True,
        ),
        sa.Column("tag", sa.String(100), primary_key=True),
    )
    op.create_index("ix_thing_tags_tag", "thing_tags", ["tag"])
    op.create_table(
        "channel_tags",
        sa.Column(
            "channel_id",
            ID,
            sa.ForeignKey(
                "channels.id", ondelete="CASCADE", name="fk_channel_tags_channel_id_channels"
            ),
            primary_key=True,
        ),
        sa.Column("tag", sa.String(100), primary_key=True),
    )
    op.create_index("ix_channel_tags_tag", "channel_tags", ["tag"])
    op.create_table(
        "connections",
        sa.Column(
            "channel_id",
            ID,
            sa.ForeignKey(
                "channels.id", ondelete="CASCADE", name="fk_connections_channel_id_channels"
            ),
            primary_key=True,
        ),
        sa.Column(
            "thing_id",
            ID,
            sa.ForeignKey("things.id", ondelete="CASCADE", name="fk_connections_thing_id_things"),
            primary_key=True,
        ),
        sa.Column("can_publish", sa.Boolean, nullable=False),
        sa.Column("can_subscribe", sa.Boolean, nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
    )
    op.create_index("ix_connections_thing_id", "connections", ["thing_id"])


def downgrade() -> None:
    for table in ("connections", "channel_tags", "thing_tags", "channels", "things", "users"):
        op.drop_table(table)
    op.drop_table("orgs")
