"""`serve_health`: the `GET /health` an agent answers while it runs, on plain asyncio.

    async with serve_health(8080, details=lambda: {"published": published}):
        ...   # 200 {"status": "ok", "published": ...} until the block ends

The platform checks an agent only for a 2xx answer, so this needs no web framework:
one request per connection, `Connection: close`, and a client that sends nothing or too
much is dropped after a few seconds instead of holding the agent's stop.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager

__all__ = ["serve_health"]

logger = logging.getLogger(__name__)

HEALTH_PATH = "/health"
#: Seconds a client has to send its request line and headers.
REQUEST_TIMEOUT = 5.0
#: Bytes of request line and headers accepted; a health check sends a few hundred.
REQUEST_LIMIT = 8192

_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed"}


@asynccontextmanager
async def serve_health(
    port: int,
    *,
    host: str = "127.0.0.1",
    details: Callable[[], Mapping[str, object]] | None = None,
) -> AsyncIterator[int]:
    """Answer `GET /health` on `host:port` (0: a free port) until the block ends; yields the
    port. The answer is 200 with `{"status": "ok"}` and what `details()` adds."""
    writers: set[asyncio.StreamWriter] = set()

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.add(writer)
        try:
            status, body = await _respond(reader, details)
            writer.write(_response(status, body))
            await writer.drain()
        except (ConnectionError, TimeoutError, asyncio.IncompleteReadError):
            pass  # the client went away or said nothing in time: nothing to answer
        finally:
            writers.discard(writer)
            writer.close()

    server = await asyncio.start_server(answer, host, port, limit=REQUEST_LIMIT)
    bound = int(server.sockets[0].getsockname()[1])
    logger.info("health on http://%s:%d%s", host, bound, HEALTH_PATH)
    try:
        yield bound
    finally:
        server.close()
        for writer in list(writers):
            writer.transport.abort()  # a check in flight must not delay the agent's stop
        await server.wait_closed()


async def _respond(
    reader: asyncio.StreamReader, details: Callable[[], Mapping[str, object]] | None
) -> tuple[int, dict[str, object]]:
    try:
        async with asyncio.timeout(REQUEST_TIMEOUT):
            head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.LimitOverrunError, ValueError):
        return 400, {"status": "error", "error": "request head too large"}
    parts = head.split(b"\r\n", 1)[0].decode("latin-1").split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/"):
        return 400, {"status": "error", "error": "not an HTTP request"}
    method, target = parts[0], parts[1].split("?", 1)[0]
    if target != HEALTH_PATH:
        return 404, {"status": "error", "error": f"only {HEALTH_PATH} is served"}
    if method != "GET":
        return 405, {"status": "error", "error": "GET only"}
    return 200, {"status": "ok", **(details() if details is not None else {})}


def _response(status: int, body: Mapping[str, object]) -> bytes:
    content = json.dumps(body, default=str).encode()
    head = (
        f"HTTP/1.1 {status} {_REASONS[status]}\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(content)}\r\n"
        "Connection: close\r\n\r\n"
    )
    return head.encode("latin-1") + content
