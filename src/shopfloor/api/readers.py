"""Readers: stored messages of a channel, as JSON pages or CSV."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse

from shopfloor.auth import Forbidden, Unauthenticated, thing_key
from shopfloor.registry import Permission
from shopfloor.storage import (
    EARLIEST_TIME,
    LATEST_TIME,
    MAX_OFFSET,
)
from shopfloor.storage import Query as ReadQuery

from ._deps import ServicesDep
from ._reading import csv_response, reader_channel, reader_query

router = APIRouter(prefix="/api/v1", tags=["readers"])


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
    await reader_channel(platform.registry, principal, channel_id)


def _read_query(channel_id: str, request: Request) -> ReadQuery:
    """The query the parameters ask for; every bad or unknown one is a 400 naming it.

    This runs as a dependency, before FastAPI validates the parameters declared on the
    route (they are there for the OpenAPI document), so its answers are the ones a
    client sees: `invalid_<parameter>` or `unknown_parameter`, never a 422.
    """
    return reader_query(channel_id, request.query_params)


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
        return csv_response(page, filename=f"channel-{channel_id}.csv")
    return JSONResponse(page.to_reader_json())
