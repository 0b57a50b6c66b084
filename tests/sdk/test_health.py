"""`serve_health`: the check the platform sends an agent, answered on plain asyncio."""

from __future__ import annotations

import asyncio

import httpx

from shopfloor.sdk import serve_health


async def test_get_health_is_200_with_the_agents_details() -> None:
    published = 0
    async with (
        serve_health(0, details=lambda: {"published": published}) as port,
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http,
    ):
        first = await http.get("/health")
        published = 3
        second = await http.get("/health?probe=1")
        missing = await http.get("/metrics")
        posted = await http.post("/health")
    assert (first.status_code, first.json()) == (200, {"status": "ok", "published": 0})
    assert (second.status_code, second.json()) == (200, {"status": "ok", "published": 3})
    assert first.headers["content-type"] == "application/json"
    assert missing.status_code == 404
    assert posted.status_code == 405


async def test_a_request_that_is_not_http_is_400() -> None:
    async with serve_health(0) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"hello there\r\n\r\n")
        answer = await asyncio.wait_for(reader.read(), 5)
        writer.close()
    assert answer.startswith(b"HTTP/1.1 400 Bad Request\r\n")


async def test_a_silent_client_does_not_hold_the_stop() -> None:
    loop = asyncio.get_running_loop()
    async with serve_health(0) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /health HTTP/1.1\r\n")  # and never the end of its headers
        await writer.drain()
        stopping = loop.time()
    assert loop.time() - stopping < 1
    try:
        answer = await asyncio.wait_for(reader.read(), 5)
    except ConnectionResetError:
        answer = b""  # the connection was aborted
    finally:
        writer.close()
    assert answer == b""


async def test_the_port_is_free_again_after_the_block() -> None:
    async with serve_health(0) as port:
        pass
    async with serve_health(port) as again, httpx.AsyncClient() as http:
        response = await http.get(f"http://127.0.0.1:{again}/health")
    assert again == port and response.status_code == 200
