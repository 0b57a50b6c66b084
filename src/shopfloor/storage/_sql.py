"""SQL shared by the SQLite and PostgreSQL stores: table layout and query building.

Both keep one `messages` table with time as integer microseconds (`time_us`), so range
filters and buckets are exact integer arithmetic, identical to the InfluxDB store.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal, cast

from shopfloor.storage._message import StoredMessage, finite_or_none, from_micros
from shopfloor.storage._query import Page, Point, Query, Series, aggregate_row
from shopfloor.storage._store import check_aggregate_rows

__all__ = [
    "COLUMNS",
    "INDEXES",
    "TABLE",
    "SqlDialect",
    "Statements",
    "build_statements",
    "row_values",
    "sql_page",
]

TABLE: Final = "messages"
COLUMNS: Final = (
    "channel",
    "subtopic",
    "publisher",
    "protocol",
    "message_id",
    "seq",
    "name",
    "unit",
    "time_us",
    "value",
    "string_value",
    "bool_value",
    "data_value",
    "sum",
)
# (channel, name, time_us) answers "latest points of one name" by walking the index
# backwards; (channel, time_us) does the same for a whole channel. Other filters
# (publisher, subtopic, value) are checked on the rows these indexes lead to.
INDEXES: Final = (
    f"CREATE INDEX IF NOT EXISTS {TABLE}_channel_name_time ON {TABLE} (channel, name, time_us)",
    f"CREATE INDEX IF NOT EXISTS {TABLE}_channel_time ON {TABLE} (channel, time_us)",
)

_COMPARATORS: Final = {"eq": "=", "lt": "<", "le": "<=", "gt": ">", "ge": ">="}
_AGGREGATES: Final = {
    "min": "MIN(value)",
    "max": "MAX(value)",
    "avg": "AVG(value)",
    "sum": "SUM(value)",
    "count": "COUNT(*)",
}

Fetch = Callable[[str, Sequence[Any]], Awaitable[Sequence[Sequence[Any]]]]


@dataclass(frozen=True, slots=True)
class SqlDialect:
    """What differs between the two SQL backends in the statements built here."""

    placeholders: Literal["qmark", "numeric"]
    # Orders rows of equal time so that pages never overlap; it must match an index
    # suffix (or be cheap to sort within one timestamp).
    tiebreak: Sequence[str]


class _Params:
    def __init__(self, dialect: SqlDialect) -> None:
        self._dialect = dialect
        self.values: list[Any] = []

    def __call__(self, value: Any) -> str:
        self.values.append(value)
        return "?" if self._dialect.placeholders == "qmark" else f"${len(self.values)}"


def row_values(message: StoredMessage, time_us: int) -> tuple[Any, ...]:
    """A message as a row in `COLUMNS` order."""
    return (
        message.channel,
        message.subtopic,
        message.publisher,
        message.protocol,
        message.message_id,
        message.seq,
        message.name,
        message.unit,
        time_us,
        finite_or_none(message.value),
        message.string_value,
        message.bool_value,
        message.data_value,
        finite_or_none(message.sum),
    )


def _message(row: Sequence[Any]) -> StoredMessage:
    bool_value = row[11]
    return StoredMessage(
        channel=row[0],
        subtopic=row[1],
        publisher=row[2],
        protocol=row[3],
        message_id=row[4],
        seq=row[5],
        name=row[6],
        unit=row[7],
        time=from_micros(row[8]),
        value=row[9],
        string_value=row[10],
        bool_value=None if bool_value is None else bool(bool_value),
        data_value=row[12],
        sum=row[13],
    )


def _where(query: Query, param: _Params) -> str:
    clauses = [f"channel = {param(query.channel)}"]
    for column in ("subtopic", "publisher", "name"):
        wanted = getattr(query, column)
        if wanted is not None:
            clauses.append(f"{column} = {param(wanted)}")
    if query.v is not None:
        clauses.append(f"value {_COMPARATORS[query.comparator]} {param(float(query.v))}")
    if query.vs is not None:
        clauses.append(f"string_value = {param(query.vs)}")
    if query.vb is not None:
        clauses.append(f"bool_value = {param(query.vb)}")
    if query.from_us is not None:
        clauses.append(f"time_us >= {param(query.from_us)}")
    if query.to_us is not None:
        clauses.append(f"time_us < {param(query.to_us)}")
    if query.aggregation not in (None, "count"):
        clauses.append("value IS NOT NULL")
    return " AND ".join(clauses)


@dataclass(frozen=True, slots=True)
class Statements:
    """The two statements answering a query: how many rows match, and one page of them."""

    count: str
    count_params: Sequence[Any]
    page: str
    page_params: Sequence[Any]


def build_statements(query: Query, dialect: SqlDialect) -> Statements:
    if query.aggregation is not None:
        return _aggregate_statements(query, dialect)
    param = _Params(dialect)
    where = _where(query, param)
    # Only fixed identifiers and placeholders are formatted in; values travel as parameters.
    count = f"SELECT COUNT(*) FROM {TABLE} WHERE {where}"  # noqa: S608
    count_params = list(param.values)
    direction = "ASC" if query.dir == "asc" else "DESC"
    order = ", ".join(f"{key} {direction}" for key in ("time_us", *dialect.tiebreak))
    page = (
        f"SELECT {', '.join(COLUMNS)} FROM {TABLE} WHERE {where} ORDER BY {order} "  # noqa: S608
        f"LIMIT {param(query.limit)} OFFSET {param(query.offset)}"
    )
    return Statements(count, count_params, page, param.values)


def _aggregate_statements(query: Query, dialect: SqlDialect) -> Statements:
    param = _Params(dialect)
    interval = query.interval_us
    if interval is not None:
        # Floor towards minus infinity (SQL `%` keeps the sign of the dividend), so
        # buckets are aligned on the epoch like InfluxDB's GROUP BY time().
        n = (param(interval), param(interval), param(interval))
        keys = f"SELECT name, time_us - ((time_us % {n[0]}) + {n[1]}) % {n[2]} AS bucket"
        groups = "name, bucket"
    else:
        keys = "SELECT name, MIN(time_us) AS bucket"
        groups = "name"
    grouped = f"FROM {TABLE} WHERE {_where(query, param)} GROUP BY {groups}"
    count = f"SELECT COUNT(*) FROM ({keys} {grouped}) AS buckets"  # noqa: S608
    count_params = list(param.values)
    if interval is None and query.from_us is not None:
        order = "name ASC"  # the whole-range bucket starts at `from` for every name
    else:
        order = f"bucket {'ASC' if query.dir == 'asc' else 'DESC'}, name ASC"
    page = (
        f"{keys}, {_AGGREGATES[query.aggregation or 'count']} {grouped} ORDER BY {order} "
        f"LIMIT {param(query.limit)} OFFSET {param(query.offset)}"
    )
    return Statements(count, count_params, page, param.values)


async def sql_page(
    query: Query, dialect: SqlDialect, fetch: Fetch, *, max_aggregate_rows: int
) -> Page:
    """Run the count and the page statements of `query` through `fetch`."""
    statements = build_statements(query, dialect)
    total = int((await fetch(statements.count, statements.count_params))[0][0])
    if query.aggregation is not None:
        check_aggregate_rows(total, max_aggregate_rows)
    rows = await fetch(statements.page, statements.page_params) if query.offset < total else []
    # Without interval and with `from`, every name's single bucket starts at `from`.
    whole_range_start = query.from_us if query.interval_us is None else None
    if query.aggregation is None:
        messages = [_message(row) for row in rows]
    else:
        messages = [
            aggregate_row(
                query, name, int(start) if whole_range_start is None else whole_range_start, value
            )
            for name, start, value in rows
        ]
    return Page(total=total, offset=query.offset, limit=query.limit, messages=messages)


_SERIES_COLUMNS: Final = ("name", "value", "string_value", "bool_value", "unit")


async def sql_series(query: Query, dialect: SqlDialect, fetch: Fetch, points: int) -> Series:
    """A raw query's newest `points` records in one statement that shapes them as chart
    points itself (milliseconds, a boolean as 1.0 or 0.0, the text only of a record with
    neither), oldest first: no count, no `StoredMessage` and no Python arithmetic per
    row. A dashboard of ten panels of 10,000 points spent most of its answer building
    `StoredMessage`s at first, then about a third of it converting each row here."""
    param = _Params(dialect)
    where = _where(query, param)
    keys = ("time_us", *dialect.tiebreak)
    real = "CAST({} AS DOUBLE PRECISION)"  # a float in both dialects, never a NUMERIC
    statement = (
        f"SELECT {real.format('time_us')} / 1000, name, "  # noqa: S608
        f"CASE WHEN value IS NOT NULL THEN value WHEN bool_value IS NULL THEN NULL "
        f"WHEN bool_value THEN {real.format(1)} ELSE {real.format(0)} END, "
        "CASE WHEN value IS NULL AND bool_value IS NULL THEN string_value END, unit "
        f"FROM (SELECT {', '.join(dict.fromkeys((*keys, *_SERIES_COLUMNS)))} "
        f"FROM {TABLE} WHERE {where} "
        f"ORDER BY {', '.join(f'{key} DESC' for key in keys)} LIMIT {param(points)}) AS newest "
        f"ORDER BY {', '.join(keys)}"
    )
    rows = await fetch(statement, param.values)
    series = cast(list[Point], [row[:4] for row in rows])  # each row is already a point
    return Series(series, rows[-1][4] if rows else None)
