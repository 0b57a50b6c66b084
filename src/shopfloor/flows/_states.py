"""Where the FlowManager keeps each flow's state: one SQLite file, written by group commit.

    states = StateStore(root / "state.db")
    await states.open()                  # every flow's last saved state, by (org, flow)
    await states.save(("org", "line-3"), state.saved)   # on disk when it returns
    await states.close()

A running flow saves its state at every task boundary, so a thousand flows on a one
second timer save thousands of times a second. A file per flow with an fsync each
cannot keep up; one SQLite database in WAL mode can, when the saves of the flows that
reach a boundary together go in one transaction: `save` hands its data to the writer
and waits for the commit that holds it. While one commit runs, the saves that come
meanwhile gather for the next (a flow saving twice keeps only its newest). Each commit
is synchronous (`synchronous=FULL`): a save that returned survives a crash of the
process or of the machine. `save_soon` does not wait: the task boundaries of a run are
saved so, the commands' changes with `save`.

SQLite comes with Python and does the hard part (atomic commits, recovery after a
crash, locking between processes); only the batching is here, and a writer thread
owns the connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

from shopfloor.core import private_dir

__all__ = ["StateStore"]

logger = logging.getLogger(__name__)

Key = tuple[str, str]
#: A flow's state as JSON values, asked for when its commit begins.
Snapshot = Callable[[], dict[str, Any]]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS flow_states (
    org_id  TEXT NOT NULL,
    flow_id TEXT NOT NULL,
    data    TEXT NOT NULL,
    PRIMARY KEY (org_id, flow_id)
)
"""


class StateStore:
    """The flows' states in `path` (SQLite), saved in batches, one writer at a time."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db: sqlite3.Connection | None = None
        self._pending: dict[Key, Snapshot] = {}
        #: Resolved when the commit of what is pending now is done.
        self._next: asyncio.Future[None] | None = None
        self._writer: asyncio.Task[None] | None = None
        #: Commits made, and states written by them (for the benchmark and the tests).
        self.commits = 0
        self.written = 0

    async def open(self) -> dict[Key, dict[str, Any]]:
        """Open (or make) the database; every flow's saved state."""
        self._db = await asyncio.to_thread(self._connect)
        rows = await asyncio.to_thread(
            lambda: (
                self._required().execute("SELECT org_id, flow_id, data FROM flow_states").fetchall()
            )
        )
        found: dict[Key, dict[str, Any]] = {}
        for org_id, flow_id, data in rows:
            with contextlib.suppress(ValueError):
                found[(org_id, flow_id)] = json.loads(data)
        return found

    async def close(self) -> None:
        """Commit what is pending, then close."""
        if self._writer is not None:
            with contextlib.suppress(Exception):
                await asyncio.shield(self._writer)
        if self._pending:
            with contextlib.suppress(Exception):
                await self._flush()
        db, self._db = self._db, None
        if db is not None:
            await asyncio.to_thread(db.close)

    async def save(self, key: Key, state: Snapshot) -> None:
        """Save flow `key`'s state; returns once it is committed."""
        await asyncio.shield(self.save_soon(key, state))

    def save_soon(self, key: Key, state: Snapshot) -> asyncio.Future[None]:
        """Save flow `key`'s state with the next commit, without waiting for it; the
        future is that commit's (a failed one is logged by the writer). `state()` is
        called when that commit begins: a flow that changes three times before it is
        serialised once, as it is then."""
        self._pending[key] = state
        if self._next is None:
            self._next = asyncio.get_running_loop().create_future()
            # Nobody may wait for it: its exception is then only logged, not warned about.
            self._next.add_done_callback(_consumed)
        if self._writer is None or self._writer.done():
            self._writer = asyncio.get_running_loop().create_task(self._write())
        return self._next

    async def _write(self) -> None:
        # One commit after another while saves keep coming; each takes all that waited.
        while self._next is not None:
            await self._flush()

    async def _flush(self) -> None:
        pending, self._pending = self._pending, {}
        done, self._next = self._next, None
        try:
            rows = [(*key, json.dumps(state(), default=str)) for key, state in pending.items()]
            await asyncio.to_thread(self._commit, rows)
        except BaseException as exc:
            logger.error("flow states not saved (%d flows): %s", len(pending), exc)
            if done is not None and not done.done():
                done.set_exception(exc if isinstance(exc, Exception) else RuntimeError(exc))
            if not isinstance(exc, Exception):
                raise
        else:
            self.commits += 1
            self.written += len(pending)
            if done is not None and not done.done():
                done.set_result(None)

    def _commit(self, rows: list[tuple[str, str, str]]) -> None:
        db = self._required()
        with db:  # one transaction
            db.executemany(
                "INSERT INTO flow_states (org_id, flow_id, data) VALUES (?, ?, ?) "
                "ON CONFLICT (org_id, flow_id) DO UPDATE SET data = excluded.data",
                rows,
            )

    def _connect(self) -> sqlite3.Connection:
        private_dir(self.path.parent)
        fresh = not self.path.exists()
        # The connection moves between worker threads, one commit at a time.
        db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        if fresh:
            self.path.chmod(0o600)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.execute("PRAGMA busy_timeout=10000")
        db.execute(_SCHEMA)
        db.isolation_level = "DEFERRED"  # `with db:` opens a transaction and commits it
        return db

    def _required(self) -> sqlite3.Connection:
        if self._db is None:
            raise RuntimeError("the state store is not open")
        return self._db


def _consumed(future: asyncio.Future[None]) -> None:
    if not future.cancelled():
        future.exception()
