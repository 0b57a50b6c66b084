"""The one interface every time-series backend implements, and the registry of backends."""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Awaitable, Sequence
from pathlib import Path
from types import TracebackType
from typing import ClassVar, Self, TypeVar

from shopfloor.core import Backends, Pluggable
from shopfloor.storage._errors import (
    InvalidQuery,
    InvalidRecord,
    InvalidStoreUrl,
    StorageUnavailable,
)
from shopfloor.storage._message import EARLIEST_TIME, LATEST_TIME, StoredMessage
from shopfloor.storage._query import (
    MAX_AGGREGATE_ROWS,
    MAX_LIMIT,
    MAX_SERIES_POINTS,
    Page,
    Query,
    Series,
    point_of,
)

__all__ = ["TimeseriesStore", "create_store"]

_T = TypeVar("_T")


_BACKENDS: Backends[TimeseriesStore] = Backends(
    "time-series store", keyword="scheme", error=InvalidStoreUrl
)


class TimeseriesStore(Pluggable, abc.ABC, registry=_BACKENDS):
    """Keeps SenML records of channel messages and answers reader queries.

    Backends subclass it with a URL scheme, `class SqliteStore(TimeseriesStore,
    scheme="sqlite")`, and implement `from_url`, `_open`, `_close`, `_write`, `_query`
    (and `_series`, when the backend can answer a long series faster than page by page).
    Use a store as an async context manager: entering connects and creates the schema.

    `write` is idempotent per `(message_id, seq)`: a redelivered message adds nothing,
    while two different messages with the same channel, publisher, name and time are
    both kept (by InfluxDB with a probability of 15,999 in 16,000 per pair: see
    `_line_protocol`). It raises `StorageUnavailable` when the backend is down (retry the same
    batch later) and `StorageError` for anything a retry will not fix.
    """

    scheme: ClassVar[str]

    def __init__(self) -> None:
        self._open_now = False
        self._healthy = False
        # At most this many (name, bucket) rows per aggregation, else InvalidQuery
        # `too_many_buckets`; an operator may raise it for a bigger server.
        self.max_aggregate_rows = MAX_AGGREGATE_ROWS

    @classmethod
    @abc.abstractmethod
    def from_url(cls, url: str, *, data_dir: Path) -> Self:
        """Build a store from its URL; `data_dir` holds files of embedded backends."""

    @abc.abstractmethod
    async def _open(self) -> None:
        """Connect and create the schema; on failure, release what was acquired."""

    @abc.abstractmethod
    async def _close(self) -> None: ...

    @abc.abstractmethod
    async def _write(self, batch: Sequence[StoredMessage]) -> None: ...

    @abc.abstractmethod
    async def _query(self, query: Query) -> Page: ...

    @property
    def ready(self) -> bool:
        """Open, and the last operation did not find the backend unavailable."""
        return self._open_now and self._healthy

    async def open(self) -> None:
        if self._open_now:
            return
        await self._observe(self._open())
        self._open_now = True

    async def close(self) -> None:
        if not self._open_now:
            return
        self._open_now = False
        self._healthy = False
        await self._close()

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def write(self, batch: Sequence[StoredMessage]) -> None:
        """Store a batch in one go; rows already stored (same message_id, seq) are skipped.

        Raises `InvalidRecord`, writing nothing, when a record's time is out of range.
        """
        self._require_open()
        refused = [
            (message.message_id, message.seq)
            for message in batch
            if not EARLIEST_TIME <= message.time <= LATEST_TIME  # NaN fails too
        ]
        if refused:
            raise InvalidRecord(
                f"{len(refused)} record(s) have a time outside the storable range "
                f"({EARLIEST_TIME:.0f} to {LATEST_TIME:.0f} s), first {refused[0]}",
                refused,
            )
        if batch:
            await self._observe(self._write(batch))

    async def query(self, query: Query) -> Page:
        """One page of the records (or aggregate rows) matching `query`."""
        self._require_open()
        return await self._observe(self._query(query))

    async def series(self, query: Query, *, points: int) -> Series:
        """The newest `points` (1 to `MAX_SERIES_POINTS`) records or aggregate rows
        matching `query`, oldest first, as a chart draws them; the query's `offset`,
        `limit` and `dir` are not used. One answer where a page holds at most `MAX_LIMIT`:
        a dashboard panel or the data explorer's chart."""
        if not 1 <= points <= MAX_SERIES_POINTS:
            raise InvalidQuery(
                "invalid_limit", f"a series has 1 to {MAX_SERIES_POINTS} points, not {points}"
            )
        self._require_open()
        return await self._observe(self._series(query, points))

    async def _series(self, query: Query, points: int) -> Series:
        """Page by page through `_query`; SQL backends answer in one statement instead."""
        messages: list[StoredMessage] = []
        while len(messages) < points:
            page = await self._query(
                dataclasses.replace(
                    query, dir="desc", offset=len(messages),
                    limit=min(MAX_LIMIT, points - len(messages)),
                )
            )  # fmt: skip
            messages.extend(page.messages)
            if not page.messages or len(messages) >= page.total:
                break
        messages.reverse()
        return Series([point_of(m) for m in messages], messages[-1].unit if messages else None)

    def _require_open(self) -> None:
        if not self._open_now:
            raise StorageUnavailable(f"{type(self).__name__} is not open")

    async def _observe(self, operation: Awaitable[_T]) -> _T:
        # `ready` follows the backend's health as the operations see it, so /health can
        # report a database that went away without probing it.
        try:
            result = await operation
        except StorageUnavailable:
            self._healthy = False
            raise
        self._healthy = True
        return result


def check_aggregate_rows(total: int, limit: int) -> None:
    if total > limit:
        raise InvalidQuery(
            "too_many_buckets",
            f"the aggregation yields {total} rows, more than {limit}: "
            "use a longer interval or a shorter from/to range",
        )


def create_store(url: str, *, data_dir: Path) -> TimeseriesStore:
    """The store for `url`: `sqlite://`, `postgresql://...`, `influxdb://...`.

    A `+driver` suffix of the scheme (`postgresql+asyncpg://`) is accepted and ignored.
    Raises `InvalidStoreUrl` (a ValueError) for a URL no backend understands.
    """
    return _BACKENDS.for_url(url).from_url(url, data_dir=data_dir)
