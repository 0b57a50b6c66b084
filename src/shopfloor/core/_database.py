"""The platform database: one engine per process, every capability's migrations.

Each capability keeps its tables and its Alembic revisions in its own folder, as its
own chain with its own version table (`alembic_version_<capability>`; the registry
keeps Alembic's default table, which existing databases already have). `migrate`
applies every chain of a process in one transaction, under one lock (a file lock
on SQLite, an advisory lock on PostgreSQL), so several processes starting at once
migrate once. The Alembic environment is shared (`migrations/env.py` beside this
file): a capability's folder holds only its revision files.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from ._errors import ErrorKind, ShopfloorError
from ._files import private_file

__all__ = ["DatabaseError", "MigrationChain", "async_url", "create_engine", "migrate"]

ENVIRONMENT = Path(__file__).parent / "migrations"
#: Arbitrary constant: serialises concurrent `migrate()` calls of several processes on PostgreSQL.
_PG_MIGRATION_LOCK = 0x5F00_0001


class DatabaseError(ShopfloorError):
    code = "database_unavailable"
    kind = ErrorKind.UNAVAILABLE


@dataclass(frozen=True, slots=True)
class MigrationChain:
    """One capability's revisions: its folder and its version table."""

    name: str
    versions: Path
    version_table: str


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


async def migrate(
    engine: AsyncEngine, chains: Sequence[MigrationChain], *, target: str = "heads"
) -> None:
    """Apply every pending revision of every chain (idempotent, safe with several processes).

    `target` stops at a revision instead (tests of upgrades from an older schema).
    """
    if not chains:
        return
    database = engine.url.database
    if engine.dialect.name == "sqlite" and database and database != ":memory:":
        # SQLite answers "database is locked" at once when two deferred transactions both
        # upgrade to writing, busy timeout or not; a lock file serialises the migrators.
        async with _file_lock(Path(database + ".migrate.lock")):
            await _migrate(engine, chains, target)
    else:
        await _migrate(engine, chains, target)


@asynccontextmanager
async def _file_lock(path: Path) -> AsyncIterator[None]:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        await asyncio.to_thread(fcntl.flock, fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


async def _migrate(engine: AsyncEngine, chains: Sequence[MigrationChain], target: str) -> None:
    async with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            await connection.execute(
                sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATION_LOCK}
            )
        for chain in chains:
            await connection.run_sync(_upgrade, chain, target)


def _upgrade(connection: sa.Connection, chain: MigrationChain, target: str) -> None:
    # alembic (with mako and pygments) is 0.2 s of every command's start: imported here.
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(ENVIRONMENT))
    config.set_main_option("path_separator", "os")
    config.set_main_option("version_locations", str(chain.versions))
    config.attributes["connection"] = connection
    config.attributes["version_table"] = chain.version_table
    command.upgrade(config, target)
