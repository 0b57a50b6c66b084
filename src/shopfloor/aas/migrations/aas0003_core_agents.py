"""AAS: the agent that is a shell's Core, when one is deployed as an agent.

Revision ID: aas0003
Revises: aas0002
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "aas0003"
down_revision = "aas0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("aas_topics") as table:
        # The agent (name, in the row's organisation) labelled `shopfloor.provision.aas`
        # with this shell; NULL when the Core runs elsewhere.
        table.add_column(sa.Column("core_agent", sa.String(63), nullable=True))
        # True: the Manager was made for that agent and goes with it.
        table.add_column(
            sa.Column("for_agent", sa.Boolean, nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("aas_topics") as table:
        table.drop_column("for_agent")
        table.drop_column("core_agent")
