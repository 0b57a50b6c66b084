"""Readers: stored messages of a channel, as JSON pages or CSV."""

from __future__ import annotations

import csv
import difflib
import io
from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse

from shopfloor.auth import Forbidden, Unauthenticated, thing_key
from shopfloor.registry import Permission
from shopfloor.storage import (
    EARLIEST_TIME,
    LATEST_TIME,
    MAX_OFFSET,
    QUERY_PARAMETERS,
)
from shopfloor.storage import Query as ReadQuery

from ._deps import ServicesDep
from ._errors import ApiError

router = APIRouter(prefix="/api/v1", tags=["readers"])

CSV_COLUMNS = (
    "channel", "subtopic", "publisher", "protocol", "name", "unit", "time",
    "value", "string_value", "bool_value", "data_value", "sum",
)  # fmt: skip
FORMATS = ("json", "csv")
PARAMETERS = QUERY_PARAMETERS | {"format"}
# A text cell starting with one of these is a formula to Excel, LibreOffice and Google
# Sheets (OWASP "CSV injection"); a leading apostrophe makes it text again.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


async def _authorise(channel_id: str, request: Request, platform: ServicesDep) -> None:
    """A user of the channel's organisation, or a thing connected with `subscribe`."""
    authorization = request.headers.get("authorization", "")
    if authorization[:6].lower() == "thing ":
        thing = await platform.access.authenticate(thing_key(authorization))
        if thing is None:
            raise Unauthenticated("unknown thing key", code="invalid_credentials")
        if not await platform.access.allowed(thing.id, channel_id, Permission.SUBSCRIBE):
            raise Forbidden("the thing may not read this channel", code="subscribe_not_allowed")
        return
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated(
            "send `Authorization: Bearer <token>` or `Thing <key>`", code="missing_credentials"
        )
    principal = await platform.auth.principal(token.strip())
    await platform.registry.get_channel(principal.require_org(), channel_id)


def _read_query(channel_id: str, request: Request) -> ReadQuery:
    """The query the parameters ask for; every bad or unknown one is a 400 naming it.

    This runs as a dependency, before FastAPI validates the parameters declared on the
    route (they are there for the OpenAPI document), so its answers are the ones a
    client sees: `invalid_<parameter>` or `unknown_parameter`, never a 422.
    """
    params = request.query_params
    for key in params:
        if key not in PARAMETERS:
            close = difflib.get_close_matches(key, sorted(PARAMETERS), n=1)
            hint = (
                f"; did you mean {close[0]!r}?"
                if close
                else f"; known: {', '.join(sorted(PARAMETERS))}"
            )
            raise ApiError(400, "unknown_parameter", f"unknown parameter {key[:64]!r}{hint}")
    if params.get("format", "json") not in FORMATS:
        raise ApiError(
            400,
            "invalid_format",
            f"format must be one of {', '.join(FORMATS)}, not {params['format'][:64]!r}",
        )
    return ReadQuery.from_params(channel_id, params)  # InvalidQuery: 400 by its kind


@router.get(
    "/channels/{channel_id}/messages",
    summary="Stored messages of a channel",
    # dependencies, so that credentials are checked before the parameters, and the
    # parameters by the store's rules before FastAPI's (which would answer 422)
    dependencies=[Depends(_authorise)],
)
async def read_messages(
    channel_id: str,
    query: Annotated[ReadQuery, Depends(_read_query)],
    platform: ServicesDep,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 10,
    subtopic: str | None = None,
    publisher: str | None = None,
    name: str | None = None,
    v: float | None = None,
    vs: str | None = None,
    vb: bool | None = None,
    comparator: Annotated[str, Query(pattern="^(eq|lt|le|gt|ge)$")] = "eq",
    from_: Annotated[float | None, Query(alias="from", ge=EARLIEST_TIME, le=LATEST_TIME)] = None,
    to: Annotated[float | None, Query(ge=EARLIEST_TIME, le=LATEST_TIME)] = None,
    order: Annotated[str, Query(pattern="^time$")] = "time",
    dir: Annotated[str, Query(pattern="^(asc|desc)$")] = "desc",
    aggregation: Annotated[str | None, Query(pattern="^(min|max|avg|sum|count)$")] = None,
    interval: Annotated[str | None, Query(description="10s, 1m, 1h, 1d, 500ms ...")] = None,
    format: Annotated[str, Query(pattern="^(json|csv)$")] = "json",
) -> Response:
    """Readers API (SPEC "Readers"); the parameters are declared for the docs and
    validated by the store's `Query` (see `_read_query`), the one source of truth. The
    store's errors (a query it cannot answer, a store that is down) are answered by their
    kind."""
    page = await platform.store.query(query)
    if format == "csv":
        rows = [m.to_reader_json() for m in page.messages]
        return StreamingResponse(
            _csv(rows),
            media_type="text/csv",
            headers={
                "Content-Disposition": f'attachment; filename="channel-{channel_id}.csv"',
                "X-Total-Count": str(page.total),
            },
        )
    return JSONResponse(page.to_reader_json())


def _csv_cell(value: object) -> object:
    """A reader field as a CSV cell: booleans as JSON writes them, text made inert.

    Numbers are written as numbers (a negative value stays `-12.5`); every text cell
    that a spreadsheet would run as a formula gets a leading `'`, whatever follows,
    since `-2+3` is a formula too. That includes `string_value`s that look like
    negative numbers: they were sent as text.
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value


def _csv(rows: list[dict[str, Any]]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({key: _csv_cell(value) for key, value in row.items()})
        if buffer.tell() > 64_000:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()
