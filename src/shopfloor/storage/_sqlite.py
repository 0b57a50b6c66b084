"""The embedded store: one SQLite file in WAL mode, each connection in its own thread.

The stdlib `sqlite3` is used directly rather than through SQLAlchemy: inserting 100,000
rows in batches of 10,000 ran at about 170,000 rows/s this way and about 85,000 rows/s
with SQLAlchemy Core on the same machine, the difference being per-row statement
handling. Nor through aiosqlite, which sends each statement to its thread on its own:
a batch is BEGIN, INSERT and COMMIT, and every hop to the thread may wait for the GIL
behind a busy event loop (up to the 5 ms switch interval), which showed as
publish → readable latency. `_ThreadConnection` runs a whole transaction in one hop.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import logging
import sqlite3
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Final, Self, TypeVar
from urllib.parse import urlsplit

from shopfloor.core import private_file
from shopfloor.storage._errors import StorageError, StorageUnavailable
from shopfloor.storage._message import StoredMessage, to_micros
from shopfloor.storage._query import Page, Query, Series
from shopfloor.storage._sql import (
    COLUMNS,
    INDEXES,
    TABLE,
    Fetch,
    SqlDialect,
    row_values,
    sql_page,
    sql_series,
)
from shopfloor.storage._store import TimeseriesStore

__all__ = ["SqliteStore"]

logger = logging.getLogger(__name__)

DEFAULT_FILE: Final = "timeseries.db"

_SCHEMA: Final = f"""
CREATE TABLE IF NOT EXISTS {TABLE} (
    channel TEXT NOT NULL,
    subtopic TEXT NOT NULL,
    publisher TEXT NOT NULL,
    protocol TEXT NOT NULL,
    message_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    name TEXT NOT NULL,
    unit TEXT,
    time_us INTEGER NOT NULL,
    value REAL,
    string_value TEXT,
    bool_value INTEGER,
    data_value TEXT,
    sum REAL,
    UNIQUE (message_id, seq)
)
"""
# Rows go in as multi-row INSERTs of up to this many rows (14 parameters each, well
# under SQLite's 32,766): `executemany` takes the GIL back for every row, and behind a
# busy event loop each take could wait out the 5 ms switch interval, which held the
# writer to about 2,000 rows/s under load; one statement binds its rows at once and
# runs them all with the GIL released.
_ROWS_PER_INSERT: Final = 500


@functools.cache
def _insert_statement(rows: int) -> str:
    one_row = f"({', '.join('?' for _ in COLUMNS)})"
    return (
        f"INSERT INTO {TABLE} ({', '.join(COLUMNS)}) "  # noqa: S608
        f"VALUES {', '.join(one_row for _ in range(rows))} ON CONFLICT DO NOTHING"
    )


# Rows of equal time come in insertion order; every index ends with the rowid, so this
# order is read straight from (channel, name, time_us) without a sort.
_DIALECT: Final = SqlDialect(placeholders="qmark", tiebreak=("rowid",))
# SQLite's own wording for conditions that pass: another process holds the write lock,
# the file is on a full or failing disk, or it cannot be opened right now.
_TRANSIENT: Final = ("locked", "busy", "disk", "full", "unable to open")

_T = TypeVar("_T")


class _ThreadConnection:
    """A `sqlite3` connection owned by one thread; `run(fn, ...)` calls `fn(connection, ...)`
    there. A call cancelled while waiting still runs to its end in the thread, so a
    transaction function is never cut between its statements."""

    def __init__(self, connection: sqlite3.Connection, executor: ThreadPoolExecutor) -> None:
        self._connection = connection
        self._executor = executor

    @classmethod
    async def open(cls, path: Path, *, busy_timeout: float) -> _ThreadConnection:
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite")

        def connect() -> sqlite3.Connection:
            # isolation_level=None: transactions are begun explicitly, IMMEDIATE for
            # writes so that two processes sharing the file queue on busy_timeout
            # instead of failing when a read transaction tries to upgrade.
            connection = sqlite3.connect(
                path, timeout=busy_timeout, isolation_level=None, check_same_thread=False
            )
            try:
                connection.execute("PRAGMA synchronous=NORMAL")
                connection.execute(f"PRAGMA busy_timeout={int(busy_timeout * 1000)}")
            except BaseException:
                connection.close()
                raise
            return connection

        try:
            connection = await asyncio.get_running_loop().run_in_executor(executor, connect)
        except BaseException:
            executor.shutdown(wait=False)
            raise
        return cls(connection, executor)

    async def run(self, fn: Callable[..., _T], *args: Any) -> _T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self._executor, functools.partial(fn, self._connection, *args)
        )

    async def execute(self, statement: str, params: Sequence[Any] = ()) -> None:
        await self.run(_execute, statement, params)

    async def close(self) -> None:
        try:
            await self.run(sqlite3.Connection.close)
        finally:
            self._executor.shutdown(wait=False)


def _execute(connection: sqlite3.Connection, statement: str, params: Sequence[Any]) -> None:
    connection.execute(statement, params)


def _fetchall(connection: sqlite3.Connection, statement: str, params: Sequence[Any]) -> list[Any]:
    return connection.execute(statement, params).fetchall()


def _checkpoint(connection: sqlite3.Connection, mode: str) -> tuple[int, int, int]:
    """`(busy, pages in the WAL, pages copied)`, as SQLite reports a checkpoint."""
    busy, wal_pages, copied = connection.execute(f"PRAGMA wal_checkpoint({mode})").fetchone()
    return int(busy), int(wal_pages), int(copied)


def _insert(connection: sqlite3.Connection, rows: Sequence[Sequence[Any]]) -> None:
    connection.execute("BEGIN IMMEDIATE")
    try:
        for start in range(0, len(rows), _ROWS_PER_INSERT):
            chunk = rows[start : start + _ROWS_PER_INSERT]
            connection.execute(
                _insert_statement(len(chunk)), tuple(itertools.chain.from_iterable(chunk))
            )
        connection.execute("COMMIT")
    except BaseException:
        connection.execute("ROLLBACK")
        raise


class SqliteStore(TimeseriesStore, scheme="sqlite"):
    """Records in a SQLite file: `sqlite://` (`timeseries.db` in the data directory)
    or `sqlite:///absolute/path.db`.

    One connection writes and another reads, so readers never wait for a batch being
    written (WAL). `synchronous=NORMAL` keeps every committed batch through a crash or
    kill of the process; only a power cut may lose the last commits.

    Checkpoints (copying the WAL into the database file, with fsyncs) run on a third
    connection every `checkpoint_interval` seconds, not inside the writer's commits as
    SQLite does by default: in the writer they stalled a 40-row batch for 20 ms at p99
    and up to 1.7 s at worst on this kind of disk; passive checkpoints beside it do not
    hold up writes. But under steady writes a passive checkpoint never finds the WAL
    all copied, and the WAL would grow for ever; once it holds more than
    `max_wal_pages`, the passive copy is followed by a RESTART checkpoint, which holds
    writes back only to copy what arrived meanwhile, and the WAL starts over.
    """

    def __init__(
        self,
        path: Path,
        *,
        busy_timeout: float = 5.0,
        checkpoint_interval: float = 1.0,
        max_wal_pages: int = 4096,
    ) -> None:
        super().__init__()
        self.path = path
        self._busy_timeout = busy_timeout
        self._checkpoint_interval = checkpoint_interval
        self._max_wal_pages = max_wal_pages
        self._writer: _ThreadConnection | None = None
        self._reader: _ThreadConnection | None = None
        self._checkpointer: _ThreadConnection | None = None
        self._checkpointing: asyncio.Task[None] | None = None
        # Each connection runs one transaction at a time; concurrent callers queue here.
        self._write_lock = asyncio.Lock()
        self._read_lock = asyncio.Lock()

    @classmethod
    def from_url(cls, url: str, *, data_dir: Path) -> Self:
        parts = urlsplit(url)
        if parts.netloc:
            raise ValueError("a sqlite URL has no host: use sqlite:// or sqlite:///abs/path.db")
        path = Path(parts.path) if parts.path not in ("", "/") else data_dir / DEFAULT_FILE
        return cls(path)

    async def _open(self) -> None:
        try:
            # Owner only, and the WAL files SQLite makes take the database file's mode.
            await asyncio.to_thread(private_file, self.path)
            self._writer = await self._connect()
            await self._writer.execute("PRAGMA journal_mode=WAL")
            await self._writer.execute("PRAGMA wal_autocheckpoint=0")
            await self._writer.execute(_SCHEMA)
            for statement in INDEXES:
                await self._writer.execute(statement)
            self._reader = await self._connect()
            self._checkpointer = await self._connect()
        except (sqlite3.Error, OSError) as exc:
            await self._close()
            raise _translate(exc) from exc
        self._checkpointing = asyncio.create_task(
            self._checkpoint_forever(self._checkpointer), name="sqlite-checkpoints"
        )

    async def _checkpoint_forever(self, connection: _ThreadConnection) -> None:
        while True:
            await asyncio.sleep(self._checkpoint_interval)
            try:
                _busy, wal_pages, _copied = await connection.run(_checkpoint, "PASSIVE")
                if wal_pages > self._max_wal_pages:
                    # Writes went on during the passive copy, so the WAL cannot start
                    # afresh by itself; this copies the little that is left while
                    # holding writes back, and the next write starts the WAL over.
                    await connection.run(_checkpoint, "RESTART")
            except (sqlite3.Error, OSError) as exc:
                # The next commit or checkpoint will report a real problem; keep trying.
                logger.warning("SQLite checkpoint failed: %s", exc)

    async def _connect(self) -> _ThreadConnection:
        return await _ThreadConnection.open(self.path, busy_timeout=self._busy_timeout)

    async def _close(self) -> None:
        if self._checkpointing is not None:
            self._checkpointing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._checkpointing
            self._checkpointing = None
        for connection in (self._checkpointer, self._reader, self._writer):
            if connection is not None:
                await connection.close()
        self._checkpointer = self._reader = self._writer = None

    async def _write(self, batch: Sequence[StoredMessage]) -> None:
        rows = [row_values(message, to_micros(message.time)) for message in batch]
        writer = self._connection(self._writer)
        async with self._write_lock:
            try:
                await writer.run(_insert, rows)
            except (sqlite3.Error, OSError) as exc:
                raise _translate(exc) from exc

    async def _query(self, query: Query) -> Page:
        async with self._read_transaction() as fetch:
            return await sql_page(
                query, _DIALECT, fetch, max_aggregate_rows=self.max_aggregate_rows
            )

    async def _series(self, query: Query, points: int) -> Series:
        if query.aggregation is not None:
            return await super()._series(query, points)
        async with self._read_transaction() as fetch:
            return await sql_series(query, _DIALECT, fetch, points)

    @asynccontextmanager
    async def _read_transaction(self) -> AsyncIterator[Fetch]:
        # One read transaction for the count and the page, so `total` describes the same
        # snapshot as the rows even while batches are being written.
        reader = self._connection(self._reader)

        async def fetch(statement: str, params: Sequence[Any]) -> Sequence[Sequence[Any]]:
            return await reader.run(_fetchall, statement, params)

        async with self._read_lock:
            try:
                await reader.execute("BEGIN")
                try:
                    yield fetch
                finally:
                    await reader.execute("COMMIT")
            except (sqlite3.Error, OSError) as exc:
                raise _translate(exc) from exc

    def _connection(self, connection: _ThreadConnection | None) -> _ThreadConnection:
        if connection is None:
            raise StorageUnavailable("the SQLite store is closed")
        return connection


def _translate(exc: sqlite3.Error | OSError) -> StorageError:
    if isinstance(exc, OSError):
        return StorageUnavailable(f"SQLite file unavailable: {exc}")
    if isinstance(exc, sqlite3.OperationalError) and any(
        word in str(exc).lower() for word in _TRANSIENT
    ):
        return StorageUnavailable(f"SQLite unavailable: {exc}")
    return StorageError(f"SQLite failed: {exc}")
