"""AAS: the identifiables of every organisation's environment, and supplementary files.

Revision ID: aas0001
Revises:
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "aas0001"
down_revision = None
branch_labels = None
depends_on = None

TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "aas_objects",
        sa.Column("org_id", sa.String(36), primary_key=True),
        # shell, submodel or concept_description; `id` is the identifiable's own id.
        sa.Column("kind", sa.String(24), primary_key=True),
        sa.Column("id", sa.String(2048), primary_key=True),
        sa.Column("id_short", sa.String(128), nullable=True),
        sa.Column("global_asset_id", sa.String(2048), nullable=True),
        # The object in the metamodel's JSON serialisation (basyx), read back strictly.
        sa.Column("body", sa.Text, nullable=False),
        # 1, 2, ...: a change is written only over the version it was made from.
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
    )
    op.create_index("aas_objects_id_short", "aas_objects", ["org_id", "kind", "id_short"])
    op.create_table(
        "aas_files",
        sa.Column("org_id", sa.String(36), primary_key=True),
        # As File elements name it: an AASX part ("/aasx/files/manual.pdf") or a name.
        sa.Column("path", sa.String(1024), primary_key=True),
        sa.Column("content_type", sa.String(255), nullable=False),
        sa.Column("data", sa.LargeBinary, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("aas_files")
    op.drop_index("aas_objects_id_short", table_name="aas_objects")
    op.drop_table("aas_objects")
