"""Relations: tuples, their changes by revision, per-organisation revisions and schemas.

Revision ID: rel0001
Revises:
Create Date: 2026-12-15
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "rel0001"
down_revision = None
branch_labels = None
depends_on = None

TIMESTAMP = sa.DateTime(timezone=True)
ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    # No foreign keys to organisations: tuples name objects of any kind (agents, users,
    # groups that exist nowhere else), and the org id only scopes them.
    op.create_table(
        "relation_tuples",
        # Listing pages by id (a cursor), which holds while tuples come and go.
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("org_id", sa.String(36), nullable=False),
        sa.Column("subject", sa.String(400), nullable=False),
        sa.Column("relation", sa.String(64), nullable=False),
        sa.Column("object", sa.String(200), nullable=False),
        sa.Column("object_type", sa.String(64), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.UniqueConstraint("org_id", "object", "relation", "subject", name="uq_relation_tuples"),
    )
    op.create_index("ix_relation_tuples_subject", "relation_tuples", ["org_id", "subject"])
    op.create_index("ix_relation_tuples_type", "relation_tuples", ["org_id", "object_type"])
    # Every write of an organisation is one revision; its changes are kept for a while
    # so that caches catch up after a reconnect. Schema changes are ops too.
    op.create_table(
        "relation_changes",
        sa.Column("org_id", sa.String(36), primary_key=True),
        sa.Column("revision", sa.BigInteger, primary_key=True),
        sa.Column("position", sa.Integer, primary_key=True),
        sa.Column("op", sa.String(8), nullable=False),
        sa.Column("subject", sa.String(400), nullable=True),
        sa.Column("relation", sa.String(64), nullable=True),
        sa.Column("object", sa.String(200), nullable=True),
        sa.Column("schema", sa.JSON, nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
    )
    op.create_index("ix_relation_changes_created", "relation_changes", ["org_id", "created_at"])
    # The revision row of an organisation is locked by each write (one writer at a time
    # per organisation, revisions in commit order); `pruned_through` is the newest
    # revision whose changes were removed.
    op.create_table(
        "relation_revisions",
        sa.Column("org_id", sa.String(36), primary_key=True),
        sa.Column("revision", sa.BigInteger, nullable=False),
        sa.Column("pruned_through", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "relation_schemas",
        sa.Column("org_id", sa.String(36), primary_key=True),
        sa.Column("document", sa.JSON, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.Column("updated_by", sa.String(255), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("relation_schemas")
    op.drop_table("relation_revisions")
    op.drop_index("ix_relation_changes_created", "relation_changes")
    op.drop_table("relation_changes")
    op.drop_index("ix_relation_tuples_type", "relation_tuples")
    op.drop_index("ix_relation_tuples_subject", "relation_tuples")
    op.drop_table("relation_tuples")
