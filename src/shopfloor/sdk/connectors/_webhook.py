"""A tiny webhook receiver on plain asyncio: POSTs to declared paths, handed to sinks.

One request per connection (`Connection: close`), a `Content-Length` body of at most
`MAX_BODY` bytes, a few seconds to send it. The answer says what the sender should do:
204 taken; 503 with `Retry-After` when nobody listens on the path right now (so a
machine that retries loses nothing while its connector reconnects); 404, 405, 411, 413
and 400 for requests that retrying will not fix.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

__all__ = ["WebhookReceiver"]

logger = logging.getLogger("shopfloor.sdk.connectors")

MAX_BODY = 1 << 20
REQUEST_TIMEOUT = 5.0
HEAD_LIMIT = 16384
_REASONS = {
    204: "No Content", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
    411: "Length Required", 413: "Content Too Large", 503: "Service Unavailable",
}  # fmt: skip
Sink = Callable[[bytes], None]


class WebhookReceiver:
    """Listens on one host and port; paths are declared, then sinks attach to them."""

    def __init__(self) -> None:
        self._paths: dict[str, list[Sink]] = {}
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.host = ""
        self.port = 0

    async def start(self, host: str, port: int) -> None:
        self._server = await asyncio.start_server(self._answer, host, port, limit=HEAD_LIMIT)
        self.host, self.port = host, int(self._server.sockets[0].getsockname()[1])
        logger.info("webhooks on http://%s:%d", self.host, self.port)

    async def close(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        await server.wait_closed()

    def declare(self, path: str) -> str:
        """Accept POSTs to `path` from now on; returns the URL to give the sender."""
        self._paths.setdefault(path, [])
        return f"http://{self.host}:{self.port}{path}"

    def declared(self, path: str) -> bool:
        return path in self._paths

    def attach(self, path: str, sink: Sink) -> Callable[[], None]:
        """Hand every body POSTed to `path` to `sink`; returns the function that stops it."""
        sinks = self._paths.setdefault(path, [])
        sinks.append(sink)

        def detach() -> None:
            with contextlib.suppress(ValueError):
                sinks.remove(sink)

        return detach

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            async with asyncio.timeout(REQUEST_TIMEOUT):
                status = await self._handle(reader)
            writer.write(
                f"HTTP/1.1 {status} {_REASONS[status]}\r\nContent-Length: 0\r\n"
                f"{'Retry-After: 1' + chr(13) + chr(10) if status == 503 else ''}"
                "Connection: close\r\n\r\n".encode("latin-1")
            )
            await writer.drain()
        except (ConnectionError, TimeoutError, asyncio.IncompleteReadError):
            pass  # the sender went away or was too slow: nothing to answer
        finally:
            self._writers.discard(writer)
            writer.close()

    async def _handle(self, reader: asyncio.StreamReader) -> int:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.LimitOverrunError, ValueError):
            return 400
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/"):
            return 400
        method, path = parts[0], parts[1].split("?", 1)[0]
        sinks = self._paths.get(path)
        if sinks is None:
            return 404
        if method != "POST":
            return 405
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = headers.get("content-length", "")
        if not length.isdigit():
            return 411
        if int(length) > MAX_BODY:
            return 413
        body = await reader.readexactly(int(length))
        if not sinks:
            return 503
        for sink in list(sinks):
            sink(body)
        return 204
