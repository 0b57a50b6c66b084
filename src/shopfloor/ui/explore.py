"""The data explorer: a channel's stored messages, raw or aggregated, as a chart, a
table paged on the server and a CSV download.

The query lives in the page's address (a GET form), so it can be bookmarked and
shared; `range` is a preset relative to the time of the request (`1h`: the last hour)
or `custom` (`from`/`to`, UTC, as the form's `datetime-local` fields send them, or Unix
seconds). Everything else is a readers API parameter and goes through the readers'
own `reader_query` (the store's `Query` and its messages), with the caller's principal
and the readers' authorisation (`reader_channel`: the organisation's channels only);
the CSV is the readers' own writer (`csv_response`).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import Response

from shopfloor.api import ApiError, csv_response, reader_channel, reader_query
from shopfloor.auth.capability import IdentityService
from shopfloor.storage import MAX_LIMIT, MAX_SERIES_POINTS, InvalidQuery, Series, StoredMessage
from shopfloor.storage import Query as ReadQuery
from shopfloor.storage.capability import TimeseriesService

from ._pages import PREFIX
from ._web import SignedIn, console_page, platform_of, render

router = APIRouter(include_in_schema=False)

PATH = PREFIX + "/explore"
#: Time ranges ending now, in seconds; `custom` takes `from` and `to`.
PRESETS: Mapping[str, int] = {"15m": 900, "1h": 3600, "6h": 6 * 3600, "24h": 86400, "7d": 7 * 86400}
DEFAULT_PRESET = "1h"
AGGREGATIONS = ("min", "max", "avg", "sum", "count")
PAGE_SIZES = (20, 50, 100)
#: The page's own parameters; readers parameters besides these are not taken from it.
FIELDS = ("channel", "name", "publisher", "range", "from", "to", "aggregation", "interval")
PAGING = ("offset", "limit")


def _seconds(key: str, text: str) -> str:
    """A form's time (`2026-12-02T05:30`, UTC) or Unix seconds, as the readers' seconds."""
    try:
        return str(float(text))
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidQuery(
            f"invalid_{key}", f"{key} must be a time (YYYY-MM-DDTHH:MM, UTC) or Unix seconds"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return str(moment.timestamp())


def reader_params(asked: Mapping[str, str], *, now: float) -> dict[str, str]:
    """The readers parameters of the page's address (empty fields left out)."""
    params = {
        key: asked[key].strip()
        for key in ("name", "publisher", "aggregation", "interval", *PAGING)
        if asked.get(key, "").strip()
    }
    preset = asked.get("range", DEFAULT_PRESET)
    if preset in PRESETS:
        params["from"], params["to"] = str(now - PRESETS[preset]), str(now)
    elif preset == "custom":
        for key in ("from", "to"):
            if asked.get(key, "").strip():
                params[key] = _seconds(key, asked[key].strip())
    else:
        raise InvalidQuery("invalid_range", f"range must be one of {', '.join(PRESETS)}, custom")
    params.setdefault("limit", str(PAGE_SIZES[0]))
    return params


def _chart(points: Series) -> dict[str, list[list[float]]]:
    """Numeric points by name, oldest first, as ECharts' `[time ms, value]` pairs."""
    series: dict[str, list[list[float]]] = {}
    for time_ms, name, value, _text in points.points:
        if value is not None:
            series.setdefault(name or "value", []).append([time_ms, value])
    return series


def _shown(message: StoredMessage) -> str:
    """A value for the table: numbers to 6 significant digits (an average's
    36.040350877192985 reads 36.0404; the CSV keeps every digit)."""
    if message.value is not None:
        return f"{message.value:.6g}"
    for value in (message.string_value, message.bool_value, message.data_value):
        if value is not None:
            return str(value).lower() if isinstance(value, bool) else str(value)
    return ""


async def _query(request: Request, caller: SignedIn) -> tuple[dict[str, Any], ReadQuery]:
    """The organisation's channels, the chosen one and its query (ShopfloorError when
    the channel is not the organisation's or the query is not valid)."""
    registry = platform_of(request).get(IdentityService).registry
    org_id = caller.principal.require_org()
    channels = (await registry.list_channels(org_id, limit=1000)).items
    asked = dict(request.query_params)
    channel_id = asked.get("channel") or (channels[0].id if channels else "")
    context: dict[str, Any] = {"channels": channels, "channel_id": channel_id, "asked": asked}
    if not channel_id:
        raise InvalidQuery("invalid_channel", "this organisation has no channels yet")
    await reader_channel(registry, caller.principal, channel_id)
    return context, reader_query(channel_id, reader_params(asked, now=time.time()))


@router.get(PATH)
async def explore_page(request: Request) -> Response:
    async def build(caller: SignedIn) -> Response:
        store = platform_of(request).get(TimeseriesService).store
        context: dict[str, Any] = {
            "presets": PRESETS, "default_preset": DEFAULT_PRESET, "aggregations": AGGREGATIONS,
            "page_sizes": PAGE_SIZES, "channels": [], "channel_id": "",
            "asked": dict(request.query_params), "error": None, "page": None,
        }  # fmt: skip
        try:
            found, query = await _query(request, caller)
            context.update(found)
            page = await store.query(query)
            chart = await store.series(query, points=MAX_SERIES_POINTS)
        except (InvalidQuery, ApiError) as exc:  # the readers' own message, beside the form
            context["error"] = {"code": exc.code, "message": exc.message}
            return render(request, "console/explore.html", context, caller=caller, status_code=400)
        current = {k: v for k, v in request.query_params.items() if k in FIELDS + PAGING}
        current["channel"] = query.channel
        context.update(
            page=page,
            rows=[(message, _shown(message)) for message in page.messages],
            chart={"series": _chart(chart), "truncated": page.total > MAX_SERIES_POINTS},
            export=f"{PATH}/export.csv?{urlencode(current)}",
            previous=_at(current, max(page.offset - page.limit, 0)) if page.offset else None,
            next=_at(current, page.offset + page.limit)
            if page.offset + page.limit < page.total
            else None,
        )
        return render(request, "console/explore.html", context, caller=caller)

    return await console_page(request, build)


def _at(current: Mapping[str, str], offset: int) -> str:
    return f"{PATH}?{urlencode({**current, 'offset': str(offset)})}"


@router.get(PATH + "/export.csv")
async def explore_export(request: Request) -> Response:
    """The page's query as CSV, from its first row up to the readers' page limit."""

    async def build(caller: SignedIn) -> Response:
        _context, query = await _query(request, caller)
        store = platform_of(request).get(TimeseriesService).store
        page = await store.query(dataclasses.replace(query, offset=0, limit=MAX_LIMIT))
        return csv_response(page, filename=f"channel-{query.channel}.csv")

    return await console_page(request, build)
