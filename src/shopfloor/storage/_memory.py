"""The in-memory twin of the stores, for tests of other capabilities (`memory://`).

It passes the same contract suite as the real backends, so a writer or readers API
tested against it behaves the same on SQLite, PostgreSQL or InfluxDB.
"""

from __future__ import annotations

import dataclasses
import operator
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Final, Self

from shopfloor.storage._message import StoredMessage, finite_or_none, from_micros, to_micros
from shopfloor.storage._query import Page, Query, aggregate_page
from shopfloor.storage._store import TimeseriesStore, check_aggregate_rows

__all__ = ["MemoryStore"]

_COMPARATORS: Final[dict[str, Callable[[float, float], bool]]] = {
    "eq": operator.eq,
    "lt": operator.lt,
    "le": operator.le,
    "gt": operator.gt,
    "ge": operator.ge,
}
# Query parameter → StoredMessage field it must equal.
_EXACT_FILTERS: Final = (
    ("subtopic", "subtopic"),
    ("publisher", "publisher"),
    ("name", "name"),
    ("vs", "string_value"),
    ("vb", "bool_value"),
)
_AGGREGATES: Final[dict[str, Callable[[list[float]], float]]] = {
    "min": min,
    "max": max,
    "avg": lambda values: sum(values) / len(values),
    "sum": sum,
    "count": len,
}


class MemoryStore(TimeseriesStore, scheme="memory"):
    """Records in a dict, lost when the process ends. Times are kept to the microsecond
    and equal times come in insertion order, like the SQLite store."""

    def __init__(self) -> None:
        super().__init__()
        # channel → [(time_us, arrival, message)]; ids of everything stored for dedupe.
        self._rows: dict[str, list[tuple[int, int, StoredMessage]]] = defaultdict(list)
        self._ids: set[tuple[str, int]] = set()

    @classmethod
    def from_url(cls, url: str, *, data_dir: Path) -> Self:
        return cls()

    async def _open(self) -> None:
        pass  # nothing to connect to; the data outlives close() like a database would

    async def _close(self) -> None:
        pass

    async def _write(self, batch: Sequence[StoredMessage]) -> None:
        for message in batch:
            identity = (message.message_id, message.seq)
            if identity in self._ids:
                continue
            self._ids.add(identity)
            time_us = to_micros(message.time)
            stored = dataclasses.replace(
                message,
                time=from_micros(time_us),
                value=finite_or_none(message.value),
                sum=finite_or_none(message.sum),
            )
            self._rows[message.channel].append((time_us, len(self._ids), stored))

    async def _query(self, query: Query) -> Page:
        rows = [row for row in self._rows.get(query.channel, []) if _matches(query, *row)]
        if query.aggregation is not None:
            return self._aggregate(query, rows)
        rows.sort(key=lambda row: (row[0], row[1]), reverse=query.dir == "desc")
        page = [message for _, _, message in rows[query.offset : query.offset + query.limit]]
        return Page(total=len(rows), offset=query.offset, limit=query.limit, messages=page)

    def _aggregate(self, query: Query, rows: list[tuple[int, int, StoredMessage]]) -> Page:
        counting = query.aggregation == "count"
        interval = query.interval_us
        groups: dict[tuple[str, int], list[float]] = defaultdict(list)
        starts: dict[str, int] = {}
        for time_us, _, message in sorted(rows, key=lambda row: (row[0], row[1])):
            if not counting and message.value is None:
                continue
            bucket = 0 if interval is None else time_us - time_us % interval
            starts.setdefault(message.name, time_us)
            groups[(message.name, bucket)].append(1.0 if counting else message.value or 0.0)
        check_aggregate_rows(len(groups), self.max_aggregate_rows)
        function = _AGGREGATES[query.aggregation or "count"]
        results = []
        for (name, bucket), values in groups.items():
            if interval is None:
                bucket = query.from_us if query.from_us is not None else starts[name]
            results.append((bucket, name, float(function(values))))
        return aggregate_page(query, results)


def _matches(query: Query, time_us: int, _: int, message: StoredMessage) -> bool:
    for parameter, field in _EXACT_FILTERS:
        wanted = getattr(query, parameter)
        if wanted is not None and getattr(message, field) != wanted:
            return False
    if query.v is not None and (
        message.value is None or not _COMPARATORS[query.comparator](message.value, query.v)
    ):
        return False
    if query.from_us is not None and time_us < query.from_us:
        return False
    return query.to_us is None or time_us < query.to_us
