"""The dashboard document: what a dashboard shows and how, checked whole by pydantic.

A document is JSON of `schemaVersion` `SCHEMA_VERSION`. One of an older version is
brought up to date step by step (`MIGRATIONS`, a function per version) before it is
checked; one of a newer version is refused (`dashboard_schema_unsupported`): this
platform cannot know what its fields mean. Every refusal names the field that is
wrong (`InvalidDashboard.details`, dotted paths such as `panels.2.query.interval`).

A panel's query is the readers API's (`shopfloor.storage.Query`): a channel, and
optionally a record name, publisher and subtopic, an aggregation with an interval.
`channel`, `name` and `publisher` may be a template variable (`$machine`) that the page
fills from a select, its default first.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from shopfloor.storage import MAX_SERIES_POINTS, Aggregation, InvalidQuery, parse_interval

from ._errors import InvalidDashboard

__all__ = [
    "MAX_PANELS",
    "MAX_POINTS",
    "MIGRATIONS",
    "PANEL_TYPES",
    "SCHEMA_VERSION",
    "DashboardDocument",
    "GridPos",
    "Panel",
    "PanelOptions",
    "PanelQuery",
    "Threshold",
    "TimeRange",
    "Variable",
    "check_document",
    "relative_seconds",
]

SCHEMA_VERSION = 1
MAX_PANELS = 50
MAX_VARIABLES = 20
#: Records (or buckets) one panel shows at most: one series of the store.
MAX_POINTS = MAX_SERIES_POINTS
GRID_COLUMNS = 24
PANEL_TYPES = ("line", "gauge", "stat", "table", "bar")

#: version → the function that turns a document of that version into one of the next.
MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {}

_RELATIVE_RE = re.compile(r"now(?:-(?P<ago>[0-9a-z]+))?")
_VARIABLE_RE = re.compile(r"\$([a-z][a-z0-9_]{0,31})")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


Text = Annotated[str, Field(max_length=200)]


class Variable(_Strict):
    """A select on the page whose value stands in for `$name` in the panels' queries."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]{0,31}$")
    kind: Literal["thing", "channel", "name"]
    default: Text = ""
    label: Text = ""


def relative_seconds(bound: str) -> float:
    """`now` → 0, `now-1h` → 3600 (seconds before now); InvalidQuery otherwise."""
    match = _RELATIVE_RE.fullmatch(bound)
    if match is None:
        raise InvalidQuery("invalid_time", f"{bound!r} is not now or now-<interval> (now-1h)")
    ago = match.group("ago")
    return parse_interval(ago) if ago else 0.0


def _bound(value: str | float) -> str | float:
    if isinstance(value, str):
        try:
            relative_seconds(value)
        except InvalidQuery as exc:
            raise ValueError(exc.message) from None
    return value


class TimeRange(_Strict):
    """Relative (`now-1h` .. `now`) or absolute (seconds since the epoch)."""

    from_: str | float = Field(default="now-1h", alias="from")
    to: str | float = "now"

    @field_validator("from_", "to")
    @classmethod
    def _valid_bound(cls, value: str | float) -> str | float:
        return _bound(value)

    @model_validator(mode="after")
    def _ordered(self) -> TimeRange:
        start, end = self.from_, self.to
        if isinstance(start, str) and isinstance(end, str):
            start, end = -relative_seconds(start), -relative_seconds(end)
        if not isinstance(start, str) and not isinstance(end, str) and start >= end:
            raise ValueError("from must be before to")
        return self


class GridPos(_Strict):
    x: int = Field(default=0, ge=0, lt=GRID_COLUMNS)
    y: int = Field(default=0, ge=0, le=1000)
    w: int = Field(default=12, ge=1, le=GRID_COLUMNS)
    h: int = Field(default=8, ge=2, le=40)

    @model_validator(mode="after")
    def _inside(self) -> GridPos:
        if self.x + self.w > GRID_COLUMNS:
            raise ValueError(f"x + w must be at most {GRID_COLUMNS}")
        return self


Reference = Annotated[str, Field(min_length=1, max_length=200)]


class PanelQuery(_Strict):
    channel: Reference
    name: Reference | None = None
    publisher: Reference | None = None
    subtopic: Annotated[str, Field(max_length=1024)] | None = None
    aggregation: Aggregation | None = None
    interval: str | None = None
    limit: int = Field(default=500, ge=1, le=MAX_POINTS)

    @field_validator("interval")
    @classmethod
    def _interval(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                parse_interval(value)
            except InvalidQuery as exc:
                raise ValueError(exc.message) from None
        return value

    @model_validator(mode="after")
    def _interval_needs_aggregation(self) -> PanelQuery:
        if self.interval is not None and self.aggregation is None:
            raise ValueError("interval needs an aggregation (avg, min, max, sum, count)")
        return self

    def references(self) -> dict[str, str]:
        """field → the variable it names (`$machine` → `machine`)."""
        found = {}
        for field in ("channel", "name", "publisher"):
            value = getattr(self, field)
            match = _VARIABLE_RE.fullmatch(value) if value else None
            if match:
                found[field] = match.group(1)
        return found


class Threshold(_Strict):
    value: float
    color: str = Field(pattern=r"^#[0-9a-fA-F]{6}$")


class PanelOptions(_Strict):
    unit: Annotated[str, Field(max_length=32)] = ""
    min: float | None = None
    max: float | None = None
    decimals: int | None = Field(default=None, ge=0, le=10)
    thresholds: list[Threshold] = Field(default_factory=list, max_length=10)

    @model_validator(mode="after")
    def _range(self) -> PanelOptions:
        if self.min is not None and self.max is not None and self.min >= self.max:
            raise ValueError("min must be below max")
        return self


class Panel(_Strict):
    id: str = Field(pattern=r"^[A-Za-z0-9_-]{1,36}$")
    type: Literal["line", "gauge", "stat", "table", "bar"]
    title: Text = ""
    grid: GridPos = Field(default_factory=GridPos)
    query: PanelQuery
    options: PanelOptions = Field(default_factory=PanelOptions)


class DashboardDocument(_Strict):
    """A dashboard as it is stored, exported and imported (without id and version)."""

    schema_version: int = Field(default=SCHEMA_VERSION, alias="schemaVersion")
    title: str = Field(min_length=1, max_length=200)
    description: Annotated[str, Field(max_length=2000)] = ""
    variables: list[Variable] = Field(default_factory=list, max_length=MAX_VARIABLES)
    time: TimeRange = Field(default_factory=TimeRange)
    refresh: Literal["off", "5s", "10s", "30s", "1m", "5m"] = "off"
    panels: list[Panel] = Field(default_factory=list, max_length=MAX_PANELS)

    @model_validator(mode="after")
    def _consistent(self) -> DashboardDocument:
        names = [v.name for v in self.variables]
        if len(set(names)) != len(names):
            raise ValueError("two variables have one name")
        ids = [p.id for p in self.panels]
        if len(set(ids)) != len(ids):
            raise ValueError("two panels have one id")
        for index, panel in enumerate(self.panels):
            for field, name in panel.query.references().items():
                if name not in names:
                    raise ValueError(f"panels.{index}.query.{field}: no variable ${name}")
        return self

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)


def _migrated(raw: dict[str, Any]) -> dict[str, Any]:
    version = raw.get("schemaVersion", SCHEMA_VERSION)
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise InvalidDashboard(
            "schemaVersion: a whole number from 1",
            details=[{"field": "schemaVersion", "problem": "a whole number from 1"}],
        )
    if version > SCHEMA_VERSION:
        problem = f"version {version} is newer than this platform reads ({SCHEMA_VERSION})"
        raise InvalidDashboard(
            f"schemaVersion: {problem}", code="dashboard_schema_unsupported",
            details=[{"field": "schemaVersion", "problem": problem}],
        )  # fmt: skip
    while version < SCHEMA_VERSION:
        raw = MIGRATIONS[version](dict(raw))
        version += 1
        raw["schemaVersion"] = version
    return raw


def check_document(raw: object) -> DashboardDocument:
    """The document `raw` (parsed JSON) describes, migrated to `SCHEMA_VERSION`;
    `InvalidDashboard` naming every wrong field otherwise."""
    if not isinstance(raw, dict):
        raise InvalidDashboard(
            "a dashboard is a JSON object",
            details=[{"field": "document", "problem": "not an object"}],
        )
    try:
        return DashboardDocument.model_validate(_migrated(raw))
    except ValidationError as exc:
        details = [
            {"field": ".".join(str(p) for p in e["loc"]) or "document", "problem": e["msg"]}
            for e in exc.errors(include_input=False)
        ]
        message = "; ".join(f"{d['field']}: {d['problem']}" for d in details[:5])
        raise InvalidDashboard(message, details=details) from None
