"""Certificates issued by the platform, and their revocation.

Revision ID: pki0001
Revises:
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "pki0001"
down_revision = None
branch_labels = None
depends_on = None

TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "certificates",
        # Lowercase hex without leading zeros: 20 bytes at most (RFC 5280).
        sa.Column("serial", sa.String(40), primary_key=True),
        sa.Column("entity_type", sa.String(16), nullable=False),
        sa.Column("entity_id", sa.String(128), nullable=False),
        # No foreign key: a service certificate has no organisation, and records
        # outlive a deleted organisation for the CRL.
        sa.Column("org_id", sa.String(36), nullable=True),
        sa.Column("issued_at", TIMESTAMP, nullable=False),
        sa.Column("expires_at", TIMESTAMP, nullable=False),
        sa.Column("backend", sa.String(16), nullable=False),
        sa.Column("cert_pem", sa.Text, nullable=False),
        sa.Column("revoked_at", TIMESTAMP, nullable=True),
        sa.Column("revocation_reason", sa.String(32), nullable=True),
    )
    op.create_index("ix_certificates_org_entity", "certificates", ["org_id", "entity_id"])
    op.create_index("ix_certificates_revoked_at", "certificates", ["revoked_at"])


def downgrade() -> None:
    op.drop_index("ix_certificates_revoked_at", "certificates")
    op.drop_index("ix_certificates_org_entity", "certificates")
    op.drop_table("certificates")
