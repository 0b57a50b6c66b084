"""Where the registry's tables come from: its own migration chain in the platform database.

The registry keeps Alembic's default version table, which databases made before
capabilities had chains of their own already have.
"""

from __future__ import annotations

from pathlib import Path

from shopfloor.core import MigrationChain

MIGRATIONS = MigrationChain(
    "registry", Path(__file__).parent / "migrations" / "versions", "alembic_version"
)
