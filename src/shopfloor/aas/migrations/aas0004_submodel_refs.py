"""AAS: which shells refer to which submodels, so a submodel's shell is found by an
index instead of reading every shell of the organisation.

Revision ID: aas0004
Revises: aas0003
Create Date: 2026-12-01
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

revision = "aas0004"
down_revision = "aas0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    refs = op.create_table(
        "aas_submodel_refs",
        # No primary key: two identifiers of up to 2048 characters would pass the size
        # PostgreSQL allows an index row; each is indexed with the organisation instead.
        sa.Column("org_id", sa.String(36), nullable=False),
        sa.Column("aas_id", sa.String(2048), nullable=False),
        sa.Column("submodel_id", sa.String(2048), nullable=False),
    )
    op.create_index("aas_submodel_refs_submodel", "aas_submodel_refs", ["org_id", "submodel_id"])
    op.create_index("aas_submodel_refs_shell", "aas_submodel_refs", ["org_id", "aas_id"])
    objects = sa.table(
        "aas_objects", sa.column("org_id"), sa.column("kind"), sa.column("id"), sa.column("body")
    )
    shells = op.get_bind().execute(
        sa.select(objects.c.org_id, objects.c.id, objects.c.body).where(objects.c.kind == "shell")
    )
    rows = [
        {"org_id": org_id, "aas_id": aas_id, "submodel_id": submodel_id}
        for org_id, aas_id, body in shells
        for submodel_id in referred_submodels(json.loads(body))
    ]
    if rows:
        op.bulk_insert(refs, rows)


def referred_submodels(shell: dict[str, object]) -> list[str]:
    """The first key of each of a shell's submodel references, in its metamodel JSON."""
    found: list[str] = []
    for reference in shell.get("submodels") or []:  # type: ignore[attr-defined]
        keys = reference.get("keys") if isinstance(reference, dict) else None
        if keys and isinstance(keys[0], dict) and isinstance(keys[0].get("value"), str):
            found.append(keys[0]["value"])
    return sorted(set(found))


def downgrade() -> None:
    op.drop_table("aas_submodel_refs")
