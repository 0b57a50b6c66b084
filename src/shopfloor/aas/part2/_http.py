"""What every Part 2 route shares: its error body, the caller's organisation, the
metamodel's JSON in and out, and cursor pages.

Part 2 answers failures as `{"messages": [{"code", "messageType": "Error", "text",
"timestamp"}]}`; `Part2Route` translates Shopfloor's errors (the status from their kind,
as everywhere), request validation (400) and HTTP errors into it, for these routes only:
the rest of the API keeps its own shape.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Coroutine, Sequence
from datetime import UTC, datetime
from email.message import Message
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException

from shopfloor.api import PlatformDep, PrincipalDep
from shopfloor.auth import Action
from shopfloor.core import ErrorKind, ShopfloorError, http_status

from .._errors import InvalidAasRequest
from .._multipart import field_name, form_parts
from .._store import AasStore
from ..capability import AasService
from ._ids import decode_id, encode_id
from ._json import Json, decode_object, to_json

__all__ = [
    "Json",
    "Limit",
    "Part2Route",
    "ReadOrg",
    "StoreDep",
    "WriteOrg",
    "decode_object",
    "error_response",
    "json_response",
    "page_out",
    "read_upload",
    "slice_page",
    "to_json",
]

T = TypeVar("T")
logger = logging.getLogger(__name__)


def error_response(
    status: int, code: str, text: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    message = {
        "code": code, "messageType": "Error", "text": text,
        "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds"),
    }  # fmt: skip
    return JSONResponse({"messages": [message]}, status_code=status, headers=headers)


class Part2Route(APIRoute):
    """A route answering its failures in Part 2's error body."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except ShopfloorError as exc:
                headers: dict[str, str] = {}
                if exc.kind is ErrorKind.UNAUTHENTICATED:
                    headers["WWW-Authenticate"] = 'Bearer realm="shopfloor"'
                if exc.retry_after is not None:
                    headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after)))
                return error_response(http_status(exc.kind), exc.code, exc.message, headers)
            except RequestValidationError as exc:
                problems = "; ".join(
                    f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', '')}"
                    for e in exc.errors()
                )
                return error_response(400, "invalid_aas_request", f"not valid: {problems}")
            except HTTPException as exc:
                text = exc.detail if isinstance(exc.detail, str) else "the request failed"
                return error_response(exc.status_code, "http_error", text, dict(exc.headers or {}))
            except Exception:
                # What no one meant to raise: logged whole, answered without detail.
                logger.exception("unexpected error on %s %s", request.method, request.url.path)
                return error_response(500, "internal_error", "an unexpected error occurred")

        return route


# -- who asks, and the store --------------------------------------------------------


async def _reading(principal: PrincipalDep) -> str:
    return principal.require_org()


async def _writing(principal: PrincipalDep) -> str:
    return principal.require(Action.MANAGE_REGISTRY)


def _store(platform: PlatformDep) -> AasStore:
    return platform.get(AasService).store


#: The caller's organisation, for a read (any member) or a write (who manages the
#: registry: admins and engineers).
ReadOrg = Annotated[str, Depends(_reading)]
WriteOrg = Annotated[str, Depends(_writing)]
StoreDep = Annotated[AasStore, Depends(_store)]
Limit = Annotated[int, Query(ge=1, le=1000, description="Items per page.")]


# -- answers -------------------------------------------------------------------------


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse(data, status_code=status, headers=headers)


# -- pages ---------------------------------------------------------------------------


def page_out(result: Sequence[Any], cursor: str | None) -> Json:
    paging = {} if cursor is None else {"cursor": cursor}
    return {"paging_metadata": paging, "result": list(result)}


def slice_page(items: Sequence[T], cursor: str | None, limit: int) -> tuple[list[T], str | None]:
    """A page of a list held whole (a submodel's elements, a shell's references): the
    cursor is the position of the next item."""
    start = 0
    if cursor is not None:
        text = decode_id(cursor)
        if not text.isdigit():
            raise InvalidAasRequest("not a cursor of this listing", code="invalid_cursor")
        start = int(text)
    end = start + limit
    return list(items[start:end]), encode_id(str(end)) if end < len(items) else None


# -- uploads -------------------------------------------------------------------------


async def read_upload(request: Request) -> tuple[str, str | None, bytes]:
    """The `file` part of a multipart/form-data body (Part 2's attachment upload):
    its file name (the `fileName` field if sent, else the part's), type (None if the
    part names none) and bytes.

    """
    content_type = request.headers.get("content-type", "")
    if not content_type.lower().startswith("multipart/form-data"):
        raise InvalidAasRequest(
            "an attachment is uploaded as multipart/form-data", code="invalid_aas_upload"
        )
    fields: dict[str, Message] = {}
    for part in form_parts(content_type, await request.body()):
        name = field_name(part)
        if name is not None:
            fields[name] = part
    upload = fields.get("file")
    if upload is None:
        raise InvalidAasRequest("the upload has no `file` part", code="invalid_aas_upload")
    data = upload.get_payload(decode=True)
    named = fields.get("fileName")
    file_name = (
        str(named.get_payload(decode=True).decode()) if named is not None  # type: ignore[union-attr]
        else upload.get_filename() or "attachment"
    )  # fmt: skip
    part_type = upload.get_content_type() if "content-type" in upload else None
    return file_name, part_type, data if isinstance(data, bytes) else b""
