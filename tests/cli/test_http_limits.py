"""The HTTP server's limits: slow or huge request headers cannot hold a connection."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from shopfloor.app import create_app
from shopfloor.httpserver import server_config

from ..serving import served_app


@pytest.fixture
async def port(make_settings: Callable[..., Any]) -> AsyncIterator[int]:
    settings = make_settings(http_header_timeout_seconds=1.0, services="api")
    async with served_app(server_config(create_app(settings), settings)) as port:
        yield port


async def _answer(port: int, sent: bytes, *, within: float) -> bytes:
    """Everything the server writes before it closes the connection."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(sent)
        await writer.drain()
        return await asyncio.wait_for(reader.read(-1), within)
    finally:
        writer.close()


async def test_headers_that_never_end_are_answered_408_and_closed(port: int) -> None:
    started = time.monotonic()
    answer = await _answer(port, b"GET /health HTTP/1.1\r\nHost: plant\r\nX-Slow: a", within=5)
    assert answer.startswith(b"HTTP/1.1 408"), answer
    assert 0.9 < time.monotonic() - started < 3


async def test_huge_headers_are_answered_431_and_closed(port: int) -> None:
    request = b"GET /health HTTP/1.1\r\nHost: plant\r\nX-Big: " + b"a" * 100_000
    answer = await _answer(port, request, within=5)
    assert answer.startswith(b"HTTP/1.1 431"), answer


async def test_requests_within_the_limits_are_served_on_one_connection(port: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        for _ in range(2):
            writer.write(
                b"GET /health HTTP/1.1\r\nHost: plant\r\nX-Fine: " + b"a" * 8000 + b"\r\n\r\n"
            )
            status = await asyncio.wait_for(reader.readline(), 5)
            assert status.startswith(b"HTTP/1.1 200"), status
            headers = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            length = int(headers.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
            await reader.readexactly(length)
        # Idle past the header timeout between requests: the keep-alive rule applies, not 408.
        await asyncio.sleep(1.2)
        writer.write(b"GET /health HTTP/1.1\r\nHost: plant\r\n\r\n")
        status = await asyncio.wait_for(reader.readline(), 5)
        assert status.startswith(b"HTTP/1.1 200"), status
    finally:
        writer.close()
