"""The platform database as a service: one engine, every started capability's migrations."""

from __future__ import annotations

from contextlib import AsyncExitStack
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa
from pydantic import Field, field_validator
from sqlalchemy.ext.asyncio import AsyncEngine

from ._database import MigrationChain, create_engine, migrate
from ._service import Service
from ._settings import CoreSettings, Section, mask_url_passwords

if TYPE_CHECKING:
    from ._platform import Platform

__all__ = ["DatabaseService", "DatabaseSettings", "database_url", "probe_database"]


class DatabaseSettings(Section, section="database"):
    database_url: str = Field(
        default="",
        description="Platform database: empty for SQLite in the data dir, or postgresql://...",
    )

    @field_validator("database_url")
    @classmethod
    def _database_scheme(cls, value: str) -> str:
        if value and not value.startswith(("sqlite", "postgresql", "postgres://")):
            raise ValueError("database_url must be empty, sqlite:///path or postgresql://...")
        return value


def database_url(settings: CoreSettings) -> str:
    """The SQLAlchemy URL of the platform database (registry and every capability's tables)."""
    return (
        settings.section(DatabaseSettings).database_url
        or f"sqlite:///{settings.data_dir / 'registry.db'}"
    )


class DatabaseService(Service, name="database", internal=True):
    """The platform database: applies the migrations of every service of this process."""

    def __init__(self, platform: Platform) -> None:
        super().__init__(platform)
        self.engine: AsyncEngine = create_engine(database_url(platform.settings))

    async def _start(self, stack: AsyncExitStack) -> None:
        stack.push_async_callback(self.engine.dispose)
        chains = [
            MigrationChain(
                cls.name, cls.migrations, cls.version_table or f"alembic_version_{cls.name}"
            )
            for cls in self.platform.plan
            if cls.migrations is not None
        ]
        await migrate(self.engine, chains)


async def probe_database(settings: CoreSettings) -> str | None:
    """None when the platform database answers (an SQLite file is not created to check)."""
    url = database_url(settings)
    shown = mask_url_passwords(url)
    if url.startswith("sqlite"):
        return _sqlite_problem(sa.make_url(url).database or "", shown)
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            await conn.execute(sa.text("SELECT 1"))
    except (sa.exc.SQLAlchemyError, OSError) as exc:
        return f"platform database {shown}: {_database_problem(exc)}"
    finally:
        await engine.dispose()
    return None


def _database_problem(exc: BaseException) -> str:
    """What went wrong, in the operator's words: refused sign-in is not 'unreachable'."""
    text = f"{type(exc).__name__}: {exc}".lower()
    cause = exc.__cause__ or getattr(exc, "orig", None)
    name = type(cause).__name__ if cause is not None else ""
    if "password" in text or "authentication" in text or "InvalidPassword" in name:
        return "the server refused the sign-in (user or password)"
    if "does not exist" in text or "InvalidCatalogName" in name:
        return "the database does not exist"
    if isinstance(exc, OSError) or "connect" in text or "refused" in text:
        return "unreachable (connection refused or timed out)"
    return f"{type(exc).__name__}"


def _sqlite_problem(database: str, shown: str) -> str | None:
    """Opening the file would create it (and its WAL): its header is read instead."""
    path = Path(database)
    if not database or database == ":memory:" or not path.exists():
        return None  # created on first start, in a data dir checked on its own
    try:
        with path.open("rb") as handle:
            header = handle.read(16)
    except OSError as exc:
        return f"platform database {shown}: cannot be read ({exc.strerror})"
    if header and header != b"SQLite format 3\x00":
        return f"platform database {shown} is not an SQLite file"
    return None
