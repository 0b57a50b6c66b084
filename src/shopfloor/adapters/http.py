"""HTTP adapter: `POST /http/channels/{channel_id}/messages[/{subtopic}]` with a thing key.

Over HTTPS a thing may present its client certificate instead of the key: without an
`Authorization` header the certificate's thing publishes (a revoked certificate is a
401 `certificate_revoked`, see `admit_thing` for the other codes). The key wins when
both are sent.

Device traffic is the platform's hottest path, so `HttpAdapterFastPath` answers it as a
plain ASGI middleware in front of FastAPI: a profile of the routed version showed
FastAPI's route matching and dependency solving taking about half the CPU of each
publish. The FastAPI routes below stay for the OpenAPI description and for apps built
without the fast path; both call `accept`.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from fastapi import APIRouter, Request, Response
from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.types import ASGIApp, Receive, Scope, Send

from shopfloor.auth import AuthenticatedThing, thing_key
from shopfloor.core import ErrorKind, http_status
from shopfloor.ingress import Ingress, IngressError
from shopfloor.ingress.capability import IngressService
from shopfloor.pki import CertificateGate, CertificateRefused

from .tls import admit_thing

router = APIRouter(tags=["messaging"])

ROUTE_TEMPLATE = "/http/channels/{channel_id}/messages"
_PATH = re.compile(r"^/http/channels/([^/]+)/messages(?:/(.*))?$")
_DEFAULT_CONTENT_TYPE = "application/senml+json"

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


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    body: bytes = b""
    headers: tuple[tuple[bytes, bytes], ...] = ()


ACCEPTED = Answer(202)


def _refusal(exc: IngressError) -> Answer:
    """The HTTP answer to a refused message: its kind decides the status."""
    status = http_status(exc.kind)
    headers = [(b"content-type", b"application/json")]
    if exc.retry_after is not None:
        headers.append((b"retry-after", str(max(1, math.ceil(exc.retry_after))).encode()))
    if status == 401:
        headers.append((b"www-authenticate", b'Thing realm="shopfloor"'))
    body = json.dumps({"error": {"code": exc.code, "message": exc.message}}).encode()
    return Answer(status, body, tuple(headers))


async def accept(
    ingress: Ingress,
    authorization: str,
    content_type: str,
    body: bytes,
    channel_id: str,
    subtopic: str,
    *,
    certificate: bytes | None = None,
    gate: CertificateGate | None = None,
) -> Answer:
    """Publish one HTTP message as the thing whose key (or client certificate) is given;
    the answer to send."""
    key = thing_key(authorization)
    try:
        if key:
            thing = await ingress.authenticate(key)
        elif certificate is not None and gate is not None:
            thing = await _certified(ingress, gate, certificate)
        else:
            raise IngressError(
                "send `Authorization: Thing <key>`",
                code="missing_credentials", kind=ErrorKind.UNAUTHENTICATED,
            )  # fmt: skip
        await ingress.publish(
            thing, channel_id, subtopic, body, content_type or _DEFAULT_CONTENT_TYPE,
            protocol="http",
        )  # fmt: skip
    except IngressError as exc:
        return _refusal(exc)
    return ACCEPTED


async def _certified(
    ingress: Ingress, gate: CertificateGate, certificate: bytes
) -> AuthenticatedThing:
    try:
        return (await admit_thing(gate, ingress.access, certificate)).thing
    except CertificateRefused as exc:
        raise IngressError(exc.message, code=exc.code, kind=ErrorKind.UNAUTHENTICATED) from exc


def client_certificate(scope: Scope) -> bytes | None:
    """The DER client certificate the server put into the scope (see `httpserver`)."""
    tls = scope.get("extensions", {}).get("tls")
    der = tls.get("shopfloor.client_cert_der") if isinstance(tls, dict) else None
    return der if isinstance(der, bytes) else None


class HttpAdapterFastPath:
    """Answers `POST /http/channels/...` before FastAPI routing; passes the rest on."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        ingress: Callable[[], Ingress],
        max_body_bytes: int,
        registry: CollectorRegistry,
        gate: Callable[[], CertificateGate | None] = lambda: None,
    ) -> None:
        self.app = app
        # Getters: the middleware stack is built before the platform has started.
        self.ingress = ingress
        self.gate = gate
        self.max_body_bytes = max_body_bytes
        self._metrics = _FastPathMetrics(registry)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            match = _PATH.match(scope["path"])
            if match is not None:
                started = time.perf_counter()
                answer = await self._handle(scope, receive, match.group(1), match.group(2) or "")
                await _send(send, answer)
                self._metrics.observe(answer.status, time.perf_counter() - started)
                return
        await self.app(scope, receive, send)

    async def _handle(self, scope: Scope, receive: Receive, channel: str, subtopic: str) -> Answer:
        authorization = content_type = ""
        declared = -1
        for name, value in scope["headers"]:
            if name == b"authorization":
                authorization = value.decode("latin-1")
            elif name == b"content-type":
                content_type = value.decode("latin-1")
            elif name == b"content-length":
                declared = int(value) if value.isdigit() else self.max_body_bytes + 1
        if declared > self.max_body_bytes:
            return _too_large(self.max_body_bytes)
        body = await _read_body(receive, self.max_body_bytes)
        if body is None:
            return _too_large(self.max_body_bytes)
        return await accept(
            self.ingress(), authorization, content_type, body, channel, subtopic,
            certificate=client_certificate(scope), gate=self.gate(),
        )  # fmt: skip


class _FastPathMetrics:
    """The same series as the HTTP metrics middleware, with label children cached."""

    def __init__(self, registry: CollectorRegistry) -> None:
        counter = registry._names_to_collectors.get("shopfloor_http_requests")
        histogram = registry._names_to_collectors.get("shopfloor_http_request_seconds")
        assert isinstance(counter, Counter) and isinstance(histogram, Histogram), (
            "HttpMetrics must be registered before the fast path"
        )
        self._counter = counter
        self._latency = histogram.labels("POST", ROUTE_TEMPLATE)
        self._by_status: dict[int, Counter] = {}

    def observe(self, status: int, seconds: float) -> None:
        child = self._by_status.get(status)
        if child is None:
            child = self._by_status[status] = self._counter.labels(
                "POST", ROUTE_TEMPLATE, str(status)
            )
        child.inc()
        self._latency.observe(seconds)


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    """The request body, or None once it grows past `limit` bytes."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return b"".join(chunks)
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _too_large(limit: int) -> Answer:
    refused = IngressError(
        f"the request body exceeds {limit} bytes",
        code="payload_too_large",
        kind=ErrorKind.TOO_LARGE,
    )
    return _refusal(refused)


async def _send(send: Send, answer: Answer) -> None:
    headers: Sequence[tuple[bytes, bytes]] = (
        (b"content-length", str(len(answer.body)).encode()),
        *answer.headers,
    )
    await send({"type": "http.response.start", "status": answer.status, "headers": headers})
    await send({"type": "http.response.body", "body": answer.body})


def _gate(request: Request) -> CertificateGate | None:
    from .capability import HttpService

    platform = request.app.state.platform
    return platform.get(HttpService).gate if platform.running(HttpService) else None


async def _routed(request: Request, channel_id: str, subtopic: str) -> Response:
    answer = await accept(
        request.app.state.platform.get(IngressService).ingress,
        request.headers.get("authorization", ""),
        request.headers.get("content-type", ""),
        await request.body(),
        channel_id,
        subtopic,
        certificate=client_certificate(request.scope),
        gate=_gate(request),
    )
    return Response(
        answer.body,
        status_code=answer.status,
        headers={k.decode(): v.decode() for k, v in answer.headers},
    )


@router.post(
    ROUTE_TEMPLATE, status_code=202, openapi_extra=_BODY_DOC, summary="Publish a message as a thing"
)
async def publish(channel_id: str, request: Request) -> Response:
    return await _routed(request, channel_id, "")


@router.post(
    "/http/channels/{channel_id}/messages/{subtopic:path}",
    status_code=202,
    openapi_extra=_BODY_DOC,
    summary="Publish a message on a subtopic as a thing",
)
async def publish_subtopic(channel_id: str, subtopic: str, request: Request) -> Response:
    return await _routed(request, channel_id, subtopic)
