"""HTTP adapter: `POST /http/channels/{channel_id}/messages[/{subtopic}]` with a thing key."""

from __future__ import annotations

import math

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from ._ingress import Ingress, IngressError

router = APIRouter(tags=["messaging"])

_BODY_DOC = {
    "requestBody": {
        "required": True,
        "content": {
            "application/senml+json": {"schema": {"type": "array", "items": {"type": "object"}}},
            "application/senml+cbor": {"schema": {"type": "string", "format": "binary"}},
            "application/json": {"schema": {"type": "object"}},
        },
    },
    "responses": {
        "202": {"description": "Accepted: the bus holds the message; it will be stored."},
        "503": {"description": "Busy (storage slow or down): retry after `Retry-After`."},
    },
}


def thing_key(authorization: str) -> str:
    """`Thing <key>` (also a bare key, as Mainflux clients send it)."""
    scheme, _, rest = authorization.strip().partition(" ")
    if rest and scheme.lower() == "thing":
        return rest.strip()
    return authorization.strip() if not rest else ""


def _error(exc: IngressError) -> JSONResponse:
    headers = {}
    if exc.retry_after is not None:
        headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after)))
    if exc.status == 401:
        headers["WWW-Authenticate"] = 'Thing realm="shopfloor"'
    return JSONResponse(
        {"error": {"code": exc.code, "message": exc.message}},
        status_code=exc.status,
        headers=headers,
    )


async def _accept(request: Request, channel_id: str, subtopic: str) -> Response:
    ingress: Ingress = request.app.state.platform.ingress
    key = thing_key(request.headers.get("authorization", ""))
    try:
        if not key:
            raise IngressError(401, "missing_credentials", "send `Authorization: Thing <key>`")
        thing = await ingress.authenticate(key)
        await ingress.publish(
            thing,
            channel_id,
            subtopic,
            await request.body(),
            request.headers.get("content-type", "application/senml+json"),
            protocol="http",
        )
    except IngressError as exc:
        return _error(exc)
    return Response(status_code=202)


@router.post(
    "/http/channels/{channel_id}/messages",
    status_code=202,
    openapi_extra=_BODY_DOC,
    summary="Publish a message as a thing",
)
async def publish(channel_id: str, request: Request) -> Response:
    return await _accept(request, channel_id, "")


@router.post(
    "/http/channels/{channel_id}/messages/{subtopic:path}",
    status_code=202,
    openapi_extra=_BODY_DOC,
    summary="Publish a message on a subtopic as a thing",
)
async def publish_subtopic(channel_id: str, subtopic: str, request: Request) -> Response:
    return await _accept(request, channel_id, subtopic)
