"""What a reader may ask a store for, validated once, and the page it gets back."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal, cast, get_args

from shopfloor.storage._errors import InvalidQuery
from shopfloor.storage._message import (
    EARLIEST_TIME,
    LATEST_TIME,
    StoredMessage,
    from_micros,
    to_micros,
)

__all__ = [
    "MAX_AGGREGATE_ROWS",
    "MAX_LIMIT",
    "MAX_OFFSET",
    "MAX_SERIES_POINTS",
    "QUERY_PARAMETERS",
    "Aggregation",
    "Comparator",
    "Direction",
    "Order",
    "Page",
    "Point",
    "Query",
    "Series",
    "parse_interval",
]

Comparator = Literal["eq", "lt", "le", "gt", "ge"]
Direction = Literal["asc", "desc"]
# InfluxQL can only sort by time, and every backend keeps the same contract, so `time`
# is the one order; the field exists so that readers can name it explicitly.
Order = Literal["time"]
Aggregation = Literal["min", "max", "avg", "sum", "count"]

MAX_LIMIT: Final = 1000
#: Points one `series` answer holds at most (a chart of a time range, not a page).
MAX_SERIES_POINTS: Final = 10_000
# Well inside the signed 64-bit integers every backend's OFFSET takes.
MAX_OFFSET: Final = 2**62
# The longest interval that fits into the storable time range; a longer one would
# overflow the 64-bit microsecond arithmetic of the SQL backends' buckets.
_MAX_INTERVAL: Final = LATEST_TIME - EARLIEST_TIME
# The query-string parameters `Query.from_params` reads.
QUERY_PARAMETERS: Final = frozenset(
    {
        "offset", "limit", "subtopic", "publisher", "name", "v", "vs", "vb", "comparator",
        "from", "to", "order", "dir", "aggregation", "interval",
    }
)  # fmt: skip
_INTEGER_RE = re.compile(r"[+-]?[0-9]+")
DEFAULT_LIMIT: Final = 10
# An aggregation answers at most this many (name, bucket) rows: a 1 s interval over a
# year of data would otherwise build millions of rows to hand out ten at a time.
MAX_AGGREGATE_ROWS: Final = 100_000

_INTERVAL_RE = re.compile(r"([1-9][0-9]{0,9})(us|ms|s|m|h|d|w)")
_UNIT_MICROS: Final = {
    "us": 1,
    "ms": 1_000,
    "s": 1_000_000,
    "m": 60_000_000,
    "h": 3_600_000_000,
    "d": 86_400_000_000,
    "w": 604_800_000_000,
}


def parse_interval(text: str) -> float:
    """`"500ms"`, `"10s"`, `"1m"`, `"1h"`, `"1d"`, `"1w"` (also `"us"`) → seconds."""
    match = _INTERVAL_RE.fullmatch(text.strip())
    if match is None:
        raise InvalidQuery(
            "invalid_interval",
            f"interval {text!r} is not a positive whole number followed by one of "
            "us, ms, s, m, h, d, w (e.g. 500ms, 10s, 1m, 1h, 1d)",
        )
    return int(match.group(1)) * _UNIT_MICROS[match.group(2)] / 1_000_000


@dataclass(frozen=True, slots=True, kw_only=True)
class Query:
    """The readers API parameters (SPEC "Readers"), checked when built.

    Filters are exact matches and combine with AND. `from_` is inclusive and `to`
    exclusive, in seconds since the epoch. `comparator` applies to `v` only. At most one
    of `v`, `vs`, `vb` may be given: a record holds one kind of value.

    `aggregation` folds the matching records into one row per `(name, bucket)`:
    `min`/`max`/`avg`/`sum` over numeric `value`s, `count` over records of every kind.
    `interval` (seconds, see `parse_interval`) cuts time into buckets aligned on the
    epoch; without it the whole range is one bucket, whose time is `from_` when given
    and otherwise the earliest record counted. Rows come ordered by bucket time in
    `dir`, then by name; `offset`/`limit` page over them like over records. A store
    refuses aggregations of more than `max_aggregate_rows` rows (default
    `MAX_AGGREGATE_ROWS`) with `InvalidQuery` code `too_many_buckets`.

    `from_` and `to` must lie inside the storable range (`EARLIEST_TIME` to
    `LATEST_TIME`); a record at exactly `LATEST_TIME` is found by leaving `to` out.

    Invalid parameters raise `InvalidQuery` here, with codes `invalid_<parameter>`
    (the message names the parameter), `conflicting_value_filters`,
    `comparator_without_value`, `interval_without_aggregation` or `invalid_time_range`
    (`from` after `to`).
    """

    channel: str
    offset: int = 0
    limit: int = DEFAULT_LIMIT
    subtopic: str | None = None
    publisher: str | None = None
    name: str | None = None
    v: float | None = None
    vs: str | None = None
    vb: bool | None = None
    comparator: Comparator = "eq"
    from_: float | None = None
    to: float | None = None
    order: Order = "time"
    dir: Direction = "desc"
    aggregation: Aggregation | None = None
    interval: float | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.channel, str) or not self.channel:
            raise InvalidQuery("invalid_channel", "channel must be a non-empty string")
        if not _is_int(self.offset) or not 0 <= self.offset <= MAX_OFFSET:
            raise InvalidQuery(
                "invalid_offset", f"offset must be an integer from 0 to {MAX_OFFSET}"
            )
        if not _is_int(self.limit) or not 1 <= self.limit <= MAX_LIMIT:
            raise InvalidQuery("invalid_limit", f"limit must be an integer from 1 to {MAX_LIMIT}")
        _check_choice("comparator", self.comparator, Comparator)
        _check_choice("order", self.order, Order)
        _check_choice("dir", self.dir, Direction)
        if self.aggregation is not None:
            _check_choice("aggregation", self.aggregation, Aggregation)
        self._check_values()
        self._check_time_range()
        self._check_interval()

    def _check_values(self) -> None:
        if sum(f is not None for f in (self.v, self.vs, self.vb)) > 1:
            raise InvalidQuery("conflicting_value_filters", "give at most one of v, vs and vb")
        if self.v is not None and (_is_bool(self.v) or not _is_finite(self.v)):
            raise InvalidQuery("invalid_v", "v must be a finite number")
        if self.vb is not None and not isinstance(self.vb, bool):
            raise InvalidQuery("invalid_vb", "vb must be true or false")
        if self.comparator != "eq" and self.v is None:
            raise InvalidQuery("comparator_without_value", "comparator applies to v; give v")

    def _check_time_range(self) -> None:
        for label, bound in (("from", self.from_), ("to", self.to)):
            if bound is None:
                continue
            if (
                _is_bool(bound)
                or not _is_finite(bound)
                or not EARLIEST_TIME <= bound <= LATEST_TIME
            ):
                raise InvalidQuery(
                    f"invalid_{label}",
                    f"{label} must be seconds from {EARLIEST_TIME:.0f} to {LATEST_TIME:.0f} "
                    "(1677-09-21 to 2262-04-11, the range every store can hold)",
                )
        if self.from_ is not None and self.to is not None and self.from_ > self.to:
            raise InvalidQuery("invalid_time_range", "from must not be after to")

    def _check_interval(self) -> None:
        if self.interval is None:
            return
        if self.aggregation is None:
            raise InvalidQuery(
                "interval_without_aggregation", "interval needs an aggregation to apply"
            )
        if (
            _is_bool(self.interval)
            or not _is_finite(self.interval)
            or not 1e-6 <= self.interval <= _MAX_INTERVAL
        ):
            raise InvalidQuery(
                "invalid_interval",
                f"interval must be from one microsecond to {_MAX_INTERVAL:.0f} s",
            )

    @property
    def from_us(self) -> int | None:
        return None if self.from_ is None else to_micros(self.from_)

    @property
    def to_us(self) -> int | None:
        return None if self.to is None else to_micros(self.to)

    @property
    def interval_us(self) -> int | None:
        return None if self.interval is None else to_micros(self.interval)

    @classmethod
    def from_params(cls, channel: str, params: Mapping[str, str]) -> Query:
        """Build a query from the readers API's query-string parameters (strings).

        Parameters not in `QUERY_PARAMETERS` (e.g. `format`) are ignored; malformed ones raise
        `InvalidQuery` with the code `invalid_<parameter>`.
        """
        kwargs: dict[str, Any] = {}
        for key in ("offset", "limit"):
            if key in params:
                kwargs[key] = _parse_int(key, params[key])
        for key in ("subtopic", "publisher", "name", "vs", "comparator", "order", "dir"):
            if key in params:
                kwargs[key] = params[key]
        if "v" in params:
            kwargs["v"] = _parse_float("v", params["v"])
        if "vb" in params:
            kwargs["vb"] = _parse_bool(params["vb"])
        for key, field in (("from", "from_"), ("to", "to")):
            if key in params:
                kwargs[field] = _parse_float(key, params[key])
        if params.get("aggregation"):
            kwargs["aggregation"] = params["aggregation"]
        if params.get("interval"):
            kwargs["interval"] = parse_interval(params["interval"])
        return cls(channel=channel, **kwargs)


@dataclass(frozen=True, slots=True, kw_only=True)
class Page:
    """One page of results; `total` counts every match, not only this page."""

    total: int
    offset: int
    limit: int
    messages: Sequence[StoredMessage]

    def to_reader_json(self) -> dict[str, Any]:
        """The readers API response body (SPEC "Readers")."""
        return {
            "total": self.total,
            "offset": self.offset,
            "limit": self.limit,
            "messages": [message.to_reader_json() for message in self.messages],
        }


def aggregate_row(query: Query, name: str, start_us: int, value: float) -> StoredMessage:
    """The row of one `(name, bucket)` of an aggregation (shape: see `StoredMessage`)."""
    return StoredMessage(
        channel=query.channel,
        subtopic=query.subtopic or "",
        publisher=query.publisher or "",
        protocol="",
        message_id="",
        seq=0,
        name=name,
        time=from_micros(start_us),
        value=float(value),
    )


def aggregate_page(query: Query, rows: Sequence[tuple[int, str, float]]) -> Page:
    """Order `(bucket start µs, name, value)` rows as the contract says and cut the page."""
    ordered = sorted(rows, key=lambda row: row[1])
    ordered.sort(key=lambda row: row[0], reverse=query.dir == "desc")
    page = ordered[query.offset : query.offset + query.limit]
    return Page(
        total=len(ordered),
        offset=query.offset,
        limit=query.limit,
        messages=[aggregate_row(query, name, start, value) for start, name, value in page],
    )


def _is_bool(value: object) -> bool:
    return isinstance(value, bool)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_finite(value: object) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


def _check_choice(label: str, value: object, choices: Any) -> None:
    allowed = cast(tuple[str, ...], get_args(choices))
    if value not in allowed:
        raise InvalidQuery(
            f"invalid_{label}", f"{label} must be one of {', '.join(allowed)}, not {value!r}"
        )


def _parse_int(label: str, text: str) -> int:
    # Stricter than `int()`, which also takes "1_000" and surrounding blanks.
    if _INTEGER_RE.fullmatch(text) is None:
        raise InvalidQuery(f"invalid_{label}", f"{label} {text!r} is not an integer")
    return int(text)


def _parse_float(label: str, text: str) -> float:
    try:
        if "_" in text:  # `float()` takes digit separators; nobody means them here
            raise ValueError(text)
        return float(text)
    except ValueError:
        raise InvalidQuery(f"invalid_{label}", f"{label} {text!r} is not a number") from None


def _parse_bool(text: str) -> bool:
    lowered = text.lower()
    if lowered not in ("true", "false"):
        raise InvalidQuery("invalid_vb", f"vb must be true or false, not {text!r}")
    return lowered == "true"


#: A record as a chart draws it: milliseconds since the epoch, name, the number (a
#: boolean as 1.0 or 0.0), and the text where there is no number.
Point = tuple[float, str, float | None, str | None]


@dataclass(frozen=True, slots=True)
class Series:
    """The newest records (or aggregate rows) of a query, oldest first, as points."""

    points: list[Point]
    #: The unit of the newest record, if it has one.
    unit: str | None


def point_of(message: StoredMessage) -> Point:
    value = message.value
    if value is None and message.bool_value is not None:
        value = 1.0 if message.bool_value else 0.0
    text = message.string_value if value is None else None
    return (round(message.time * 1000, 3), message.name, value, text)
