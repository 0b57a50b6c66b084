"""Database engines for the registry and the migrations applied on start."""

from __future__ import annotations

import asyncio
import fcntl
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from shopfloor._files import private_file

MIGRATIONS = Path(__file__).parent / "migrations"
#: Arbitrary constant: serialises concurrent `migrate()` calls of several processes on PostgreSQL.
_PG_MIGRATION_LOCK = 0x5F00_0001


def async_url(url: str) -> str:
    """Turn a user-facing database URL into the async-driver URL SQLAlchemy needs."""
    for prefix in ("postgresql+asyncpg://", "sqlite+aiosqlite://"):
        if url.startswith(prefix):
            return url
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    if url.startswith("sqlite://"):
        return "sqlite+aiosqlite://" + url[len("sqlite://") :]
    raise ValueError(f"unsupported database URL scheme in {sa.make_url(url).drivername!r}")


def create_engine(url: str) -> AsyncEngine:
    """An async engine; SQLite gets foreign keys, WAL and a busy timeout."""
    full = async_url(url)
    if full.startswith("sqlite"):
        database = sa.make_url(full).database
        if database and database != ":memory:":
            private_file(Path(database))  # owner only: it holds the password hashes
        engine = create_async_engine(full, connect_args={"timeout": 30})
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    return create_async_engine(full, pool_pre_ping=True, pool_size=10, max_overflow=10)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


async def migrate(engine: AsyncEngine) -> None:
    """Apply every pending migration (idempotent, safe with several processes)."""
    database = engine.url.database
    if engine.dialect.name == "sqlite" and database and database != ":memory:":
        # SQLite answers "database is locked" at once when two deferred transactions both
        # upgrade to writing, busy timeout or not; a lock file serialises the migrators.
        async with _file_lock(Path(database + ".migrate.lock")):
            await _migrate(engine)
    else:
        await _migrate(engine)


@asynccontextmanager
async def _file_lock(path: Path) -> AsyncIterator[None]:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        await asyncio.to_thread(fcntl.flock, fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


async def _migrate(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            await connection.execute(
                sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATION_LOCK}
            )
        await connection.run_sync(_upgrade)


def _upgrade(connection: sa.Connection) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    command.upgrade(config, "head")
