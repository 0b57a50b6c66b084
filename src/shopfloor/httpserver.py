"""The HTTP server of `shopfloor serve`: uvicorn with limits an exposed server needs.

uvicorn closes idle keep-alive connections, but a request whose headers arrive a byte
at a time keeps its connection forever, and httptools buffers a header of any size.
`GuardedHttpProtocol` bounds both, per request: the headers must be complete within
`http_header_timeout_seconds` of their first byte, and no longer than
`http_max_header_bytes` (413 would be for bodies: a header too large is a `431`, a
header too slow a `408`; both close the connection). Connections beyond
`http_max_connections` are answered `503` by uvicorn (`limit_concurrency`).

With `tls_cert`/`tls_key` the server speaks HTTPS, client certificates optional
(`CERT_OPTIONAL`), checked against `tls_client_ca` or, when that is not set, the CA of
the process's pki service (the `http` service adds it at start, `trust`). The client's
certificate reaches the app as the ASGI TLS extension, `scope["extensions"]["tls"]`
(`client_cert_chain`: its PEM; `tls_version`), plus the DER bytes under
`"shopfloor.client_cert_der"`, for HTTP requests and WebSocket sessions alike.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import MutableMapping
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from shopfloor.adapters.tls import server_tls_context, tls_extension
from shopfloor.core import CoreSettings

__all__ = ["DrainingServer", "GuardedHttpProtocol", "server_config", "server_tls"]

ASGIApp = Any


class GuardedHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a deadline and a size bound on request headers."""

    header_timeout: float = 10.0
    max_header_bytes: int = 16 * 1024

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        # asyncio calls this once the TLS handshake is done: the peer is known.
        self._tls = tls_extension(transport)
        self._header_bytes = 0
        self._header_deadline: asyncio.TimerHandle | None = None
        self._awaiting_request = True

    def data_received(self, data: bytes) -> None:
        if self._awaiting_request:
            # The first byte of a request starts its header clock.
            self._awaiting_request = False
            self._header_bytes = 0
            self._header_deadline = self.loop.call_later(self.header_timeout, self._too_slow)
        reading_headers = self._header_deadline is not None
        super().data_received(data)
        if reading_headers and self._header_deadline is not None:
            # Still inside the headers after this chunk: all of it counts.
            self._header_bytes += len(data)
            if self._header_bytes > self.max_header_bytes:
                self._refuse(b"431 Request Header Fields Too Large", "request headers too large")

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._tls is not None:
            scope: dict[str, Any] = self.scope  # type: ignore[assignment]
            scope["extensions"] = {"tls": self._tls}

    def handle_websocket_upgrade(self) -> None:
        super().handle_websocket_upgrade()
        if self._tls is None:
            return
        # uvicorn's WebSocket protocols build their own scope, later, without TLS
        # details: their app is wrapped to add them.
        protocol = self.transport.get_protocol()
        app = getattr(protocol, "app", None)
        if app is not None:
            protocol.app = _with_tls(app, self._tls)  # type: ignore[attr-defined]

    def on_headers_complete(self) -> None:
        self._cancel_deadline()
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._awaiting_request = True

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_deadline()
        super().connection_lost(exc)

    def _cancel_deadline(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _too_slow(self) -> None:
        self._header_deadline = None
        self._refuse(b"408 Request Timeout", "request headers too slow")

    def _refuse(self, status: bytes, reason: str) -> None:
        self._cancel_deadline()
        if self.transport.is_closing():
            return
        body = reason.encode()
        self.transport.write(
            b"HTTP/1.1 " + status + b"\r\ncontent-type: text/plain\r\nconnection: close\r\n"
            b"content-length: " + str(len(body)).encode() + b"\r\n\r\n" + body
        )
        self.transport.close()


class DrainingServer(uvicorn.Server):
    """uvicorn's server, setting `draining` as it begins to stop: the platform's followed
    feeds (`shopfloor.api.event_stream`) end then, before uvicorn waits up to its
    graceful timeout for open requests, and only then stops the services."""

    def __init__(self, config: uvicorn.Config, draining: asyncio.Event) -> None:
        super().__init__(config)
        self._draining = draining

    async def shutdown(self, sockets: list[Any] | None = None) -> None:
        self._draining.set()
        await super().shutdown(sockets)


def _with_tls(app: ASGIApp, tls: dict[str, Any]) -> ASGIApp:
    async def with_tls(scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        scope.setdefault("extensions", {})["tls"] = tls
        await app(scope, receive, send)

    return with_tls


def server_tls(settings: CoreSettings) -> ssl.SSLContext | None:
    """The HTTPS context of these settings; None for plain HTTP."""
    if settings.tls_cert is None or settings.tls_key is None:
        return None
    return server_tls_context(settings.tls_cert, settings.tls_key, client_ca=settings.tls_client_ca)


def server_config(app: Any, settings: CoreSettings) -> uvicorn.Config:
    """The uvicorn configuration of `shopfloor serve` (and of tests serving the app).

    The HTTPS context, if any, is also `app.state.tls_context`, for the `http` service
    to trust the pki service's CA once it runs.
    """
    tls = server_tls(settings)
    if tls is not None and hasattr(app, "state"):
        app.state.tls_context = tls
    protocol = type(
        "Http",
        (GuardedHttpProtocol,),
        {
            "header_timeout": settings.http_header_timeout_seconds,
            "max_header_bytes": settings.http_max_header_bytes,
        },
    )
    return uvicorn.Config(
        app,
        http=protocol,
        log_config=None,
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=10,
        timeout_keep_alive=settings.http_keep_alive_seconds,
        limit_concurrency=settings.http_max_connections,
        server_header=False,
        ssl_context_factory=(lambda _config, _default: tls) if tls is not None else None,
    )
