"""With the time-series store stopped, the readers route answers 503 with a stable code
and `Retry-After`, never 500; once the store is back, it answers again.

The PostgreSQL store is reached through a TCP relay the test owns: stopping the relay
(and cutting its connections) is the database going away, for this test alone.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from ..conftest import fresh_postgres_database
from .conftest import build_plant

UPSTREAM = ("127.0.0.1", 5432)


class Relay:
    """A TCP relay to PostgreSQL that can be stopped and started on the same port."""

    def __init__(self) -> None:
        self.port = 0
        self._server: asyncio.Server | None = None
        self._pipes: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._pipes):
            writer.transport.abort()
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*UPSTREAM)
        self._pipes |= {writer, up_writer}

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            with contextlib.suppress(ConnectionError, OSError):
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            sink.transport.abort()

        try:
            await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        finally:
            self._pipes -= {writer, up_writer}


@pytest.fixture
async def relay() -> AsyncIterator[Relay]:
    relay = Relay()
    await relay.start()
    try:
        yield relay
    finally:
        with contextlib.suppress(Exception):
            await relay.stop()


async def test_readers_answer_503_while_the_store_is_down(
    start: Callable[..., Any], relay: Relay
) -> None:
    async with fresh_postgres_database() as url:
        through_relay = url.replace("127.0.0.1:5432", f"127.0.0.1:{relay.port}")
        assert through_relay != url
        async with start(timeseries_url=through_relay) as api:
            plant = await build_plant(api)
            assert (await plant.publish("press", '[{"n": "t", "v": 1}]')).status_code == 202
            await plant.wait_for(1)

            await relay.stop()
            down = await plant.read()
            assert down.status_code == 503, down.text
            assert down.json()["error"]["code"] == "timeseries_unavailable"
            assert int(down.headers["retry-after"]) >= 1
            health = await api.http.get("/health")
            assert health.status_code == 503
            assert health.json()["services"]["timeseries"] is False

            await relay.start()
            deadline = asyncio.get_running_loop().time() + 20
            while (back := await plant.read()).status_code != 200:
                assert back.status_code == 503, back.text
                assert asyncio.get_running_loop().time() < deadline, back.text
                await asyncio.sleep(0.1)
            assert back.json()["total"] == 1
