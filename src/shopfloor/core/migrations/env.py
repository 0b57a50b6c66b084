"""Alembic environment of every capability: runs on a connection handed in by `migrate()`.

Revisions are written by hand (`op.create_table` ...), so no metadata is compared.
"""

from __future__ import annotations

from alembic import context

attributes = context.config.attributes
connection = attributes.get("connection")
if connection is None:
    raise RuntimeError("migrations run through shopfloor.core.migrate()")

context.configure(
    connection=connection,
    version_table=attributes["version_table"],
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
