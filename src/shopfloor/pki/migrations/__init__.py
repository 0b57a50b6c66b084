"""Alembic revisions of the pki chain (version table `alembic_version_pki`)."""
