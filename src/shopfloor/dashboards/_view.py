"""What an open dashboard shows: its panels' queries with the variables filled in, the
stored points of every panel in one answer, and the live points of the bus.

The answer gives each panel its series by name, as columns (`{"name", "t": [ms, ...],
"v": [value, ...]}`, and `"texts": [[ms, text], ...]` for records with a text and no
value), which the page hands to ECharts as they are. Rows of `[ms, name, value, text]`
repeated the name in every point; ten panels of 10,000 points were 4.9 MB instead of
2.3 MB, and ECharts took about a fifth longer to draw points it first had to copy.

Live points come from one bus subscription per open dashboard, to the channels its
panels read (`channels.<id>` and `channels.<id>.>`, where the ingress publishes every
accepted message; the records are the SenML normaliser's, as the writer stores them).
They are matched to the panels in the server and sent in batches, at most one per
`batch_seconds`: a point after a quiet spell goes at once, in a busy stream it waits for
the next batch (at most `batch_seconds`) with the points that came meanwhile, so a
dashboard of twenty panels over a busy channel is one event every 200 ms, not one per
record and panel. Panels with an aggregation take no live points (a bucket is not a record); they
are read again when the dashboard refreshes.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from shopfloor.messaging import Bus, Envelope, channel_filters
from shopfloor.registry import Registry, RegistryError
from shopfloor.senml import Record, SenMLError, normalize
from shopfloor.storage import Point, Query, StorageError, TimeseriesStore, parse_interval

from ._model import DashboardDocument, Panel, TimeRange, relative_seconds

__all__ = [
    "Resolved", "TimeWindow", "columns", "live_batches", "panel_data", "resolve", "window",
]  # fmt: skip

#: Points of one panel in one live batch, the newest kept (a flood is thinned, not queued).
MAX_BATCH_POINTS = 1000


@dataclass(frozen=True, slots=True)
class TimeWindow:
    from_: float
    to: float
    #: True when the window ends now: live points extend it.
    live: bool


def window(time_range: TimeRange, *, now: float) -> TimeWindow:
    """Seconds since the epoch of a relative (`now-1h`) or absolute range."""

    def at(bound: str | float) -> float:
        return now - relative_seconds(bound) if isinstance(bound, str) else float(bound)

    live = isinstance(time_range.to, str) and relative_seconds(time_range.to) == 0
    return TimeWindow(from_=at(time_range.from_), to=at(time_range.to), live=live)


@dataclass(frozen=True, slots=True)
class Resolved:
    """A panel's query with its variables filled in."""

    panel: Panel
    channel: str
    name: str | None
    publisher: str | None

    @property
    def live(self) -> bool:
        return self.panel.query.aggregation is None

    def matches(self, envelope: Envelope, record: Record) -> bool:
        query = self.panel.query
        return (
            envelope.channel == self.channel
            and (self.publisher is None or envelope.publisher == self.publisher)
            and (self.name is None or record.name == self.name)
            and (query.subtopic is None or envelope.subtopic == query.subtopic)
        )


def resolve(document: DashboardDocument, chosen: Mapping[str, str]) -> list[Resolved]:
    """Every panel with `$variable`s replaced by the chosen value, else the default.
    A variable left empty drops the filter it stands in (all publishers, all names);
    a panel whose channel is an empty variable has nothing to show."""
    values = {v.name: chosen.get(v.name) or v.default for v in document.variables}
    resolved = []
    for panel in document.panels:
        fields = {"channel": panel.query.channel, "name": panel.query.name,
                  "publisher": panel.query.publisher}  # fmt: skip
        for field, variable in panel.query.references().items():
            fields[field] = values.get(variable) or None
        if fields["channel"]:
            resolved.append(
                Resolved(panel, str(fields["channel"]), fields["name"], fields["publisher"])
            )
    return resolved


async def org_channels(
    registry: Registry, org_id: str, channel_ids: Iterable[str]
) -> dict[str, str | None]:
    """channel id → None if it is the organisation's, else why not (another
    organisation's channel is as unknown as a missing one)."""
    checked: dict[str, str | None] = {}
    for channel_id in set(channel_ids):
        try:
            await registry.get_channel(org_id, channel_id)
            checked[channel_id] = None
        except RegistryError as exc:
            checked[channel_id] = exc.message
    return checked


def _point(record: Record) -> list[Any]:
    """`[time ms, name, number or null, text or null]` (a boolean is 1 or 0)."""
    value: float | None = record.value
    if value is None and record.bool_value is not None:
        value = 1.0 if record.bool_value else 0.0
    text = record.string_value if value is None else None
    return [round(record.time * 1000, 3), record.name, value, text]


async def panel_data(store: TimeseriesStore, target: Resolved, span: TimeWindow) -> dict[str, Any]:
    """The stored points of one panel in the window, oldest first, or its error."""
    query = target.panel.query
    try:
        series = await store.series(
            Query(
                channel=target.channel, publisher=target.publisher, name=target.name,
                subtopic=query.subtopic, from_=span.from_, to=span.to,
                aggregation=query.aggregation,
                interval=parse_interval(query.interval) if query.interval else None,
            ),
            points=query.limit,
        )  # fmt: skip
    except StorageError as exc:
        return {"error": {"code": exc.code, "message": exc.message}}
    return {"series": columns(series.points), "unit": series.unit}


def columns(points: list[Point]) -> list[dict[str, Any]]:
    """Points (oldest first) as one column set per name, in the order names first occur;
    a record with no value goes to its name's `texts` (charts skip it, tables show it)."""
    if not points:
        return []
    times, names, values, _texts = zip(*points, strict=True)
    if None not in values and names.count(names[0]) == len(names):
        return [{"name": names[0], "t": times, "v": values}]  # one name, all values: C speed
    by_name: dict[str, dict[str, Any]] = {}
    for at, name, value, text in points:
        column = by_name.get(name)
        if column is None:
            column = by_name[name] = {"name": name, "t": [], "v": []}
        if value is not None:
            column["t"].append(at)
            column["v"].append(value)
        else:
            column.setdefault("texts", []).append((at, text))
    return list(by_name.values())


def _records(envelope: Envelope) -> list[Record]:
    if isinstance(envelope.decoded, list):
        return envelope.decoded
    try:
        return normalize(envelope.payload, envelope.content_type, now=envelope.created / 1e9)
    except SenMLError:
        return []  # the ingress refuses these; nothing of it would be stored either


async def live_batches(
    bus: Bus,
    targets: list[Resolved],
    *,
    batch_seconds: float,
    keepalive: float,
    still_allowed: Callable[[], Awaitable[bool]],
) -> AsyncIterator[dict[str, list[list[Any]]] | None]:
    """Batches of live points (`{panel id: [point, ...]}`) from the bus, None once
    subscribed and as a keep-alive every `keepalive` seconds without points; ends when
    `still_allowed()` (asked at each keep-alive) says no: the session ended."""
    live = [t for t in targets if t.live]
    filters = sorted({f for t in live for f in channel_filters(t.channel)})
    if not filters:
        yield None
        while await still_allowed():
            await asyncio.sleep(keepalive)
            yield None
        return
    pending: dict[str, list[list[Any]]] = {}
    arrived = asyncio.Event()
    subscribed = asyncio.Event()

    async def receive() -> None:
        async with bus.subscribe(filters) as subscription:
            subscribed.set()
            async for envelope in subscription:
                if envelope.subtopic.startswith("_"):
                    continue  # platform subtopics (error reports) are no telemetry
                for record in _records(envelope):
                    for target in live:
                        if target.matches(envelope, record):
                            points = pending.setdefault(target.panel.id, [])
                            points.append(_point(record))
                            if len(points) > MAX_BATCH_POINTS:
                                del points[: len(points) - MAX_BATCH_POINTS]
                            arrived.set()

    receiving = asyncio.create_task(receive(), name="dashboard-live")
    try:
        # The first keep-alive says the subscription is in place: what is published
        # from then on reaches the page.
        waiting = asyncio.ensure_future(subscribed.wait())
        await asyncio.wait((receiving, waiting), return_when=asyncio.FIRST_COMPLETED)
        waiting.cancel()
        if receiving.done():
            receiving.result()
            return
        yield None
        last_check = time.monotonic()
        last_sent = 0.0
        while True:
            try:
                await asyncio.wait_for(arrived.wait(), timeout=keepalive)
            except TimeoutError:
                if receiving.done():
                    receiving.result()  # the subscription failed: raise its error
                    return
                if not await still_allowed():
                    return
                last_check = time.monotonic()
                yield None
                continue
            # At most one batch per `batch_seconds`: a point after a quiet spell goes at
            # once, one in a busy stream waits for the batch it joins.
            await asyncio.sleep(max(0.0, last_sent + batch_seconds - time.monotonic()))
            batch, pending = pending, {}
            arrived.clear()
            last_sent = time.monotonic()
            yield batch
            if time.monotonic() - last_check > keepalive:
                if not await still_allowed():
                    return
                last_check = time.monotonic()
    finally:
        receiving.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await receiving
