"""Table definitions (SQLAlchemy Core). Schema changes go through Alembic migrations."""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_name)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

ID = sa.String(36)
TIMESTAMP = sa.DateTime(timezone=True)

orgs = sa.Table(
    "orgs",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("name", sa.String(200), nullable=False, unique=True),
    sa.Column("created_at", TIMESTAMP, nullable=False),
)

users = sa.Table(
    "users",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("email", sa.String(320), nullable=False, unique=True),
    sa.Column("password_hash", sa.String(255), nullable=False),
    sa.Column("org_id", ID, sa.ForeignKey("orgs.id", ondelete="CASCADE"), nullable=True),
    sa.Column("role", sa.String(20), nullable=True),
    sa.Column("platform_admin", sa.Boolean, nullable=False, default=False),
    sa.Column("created_at", TIMESTAMP, nullable=False),
    # Bumped by every new password; bearer tokens carry the value they were issued under.
    sa.Column("token_generation", sa.Integer, nullable=False, default=0, server_default="0"),
)

things = sa.Table(
    "things",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("org_id", ID, sa.ForeignKey("orgs.id", ondelete="CASCADE"), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("key_ciphertext", sa.Text, nullable=False),
    sa.Column("metadata", sa.JSON, nullable=False),
    sa.Column("created_at", TIMESTAMP, nullable=False),
    sa.UniqueConstraint("org_id", "name", name="uq_things_org_id_name"),
)

channels = sa.Table(
    "channels",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("org_id", ID, sa.ForeignKey("orgs.id", ondelete="CASCADE"), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("metadata", sa.JSON, nullable=False),
    sa.Column("created_at", TIMESTAMP, nullable=False),
    sa.UniqueConstraint("org_id", "name", name="uq_channels_org_id_name"),
)

thing_tags = sa.Table(
    "thing_tags",
    metadata,
    sa.Column("thing_id", ID, sa.ForeignKey("things.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("tag", sa.String(100), primary_key=True, index=True),
)

channel_tags = sa.Table(
    "channel_tags",
    metadata,
    sa.Column("channel_id", ID, sa.ForeignKey("channels.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("tag", sa.String(100), primary_key=True, index=True),
)

connections = sa.Table(
    "connections",
    metadata,
    sa.Column("channel_id", ID, sa.ForeignKey("channels.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("thing_id", ID, sa.ForeignKey("things.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("can_publish", sa.Boolean, nullable=False),
    sa.Column("can_subscribe", sa.Boolean, nullable=False),
    sa.Column("created_at", TIMESTAMP, nullable=False),
    sa.Index("ix_connections_thing_id", "thing_id"),
)
