"""Alembic environment: migrations run on a connection handed in by `migrate()`."""

from __future__ import annotations

from alembic import context

from shopfloor.registry._tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("registry migrations run through shopfloor.registry.migrate()")

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
