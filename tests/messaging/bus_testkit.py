"""Helpers of the bus tests: envelopes, bus backends under test, polling with a deadline.

NATS tests need the real server (JetStream enabled) at `SHOPFLOOR_TEST_NATS` or
127.0.0.1:4222; when it is missing they fail. Each test gets its own stream and
subject prefix, and deletes the stream when it ends.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from urllib.parse import urlencode

import nats
import nats.js.errors
import pytest

from shopfloor.messaging import Bus, Envelope, create_bus

NATS_SERVER = os.environ.get("SHOPFLOOR_TEST_NATS", "127.0.0.1:4222")

Options = dict[str, str | int | float]


def make_envelope(
    channel: str = "chan1", subtopic: str = "", *, payload: bytes = b"{}", **fields: str
) -> Envelope:
    return Envelope(
        channel=channel,
        subtopic=subtopic,
        publisher=fields.get("publisher", "thing1"),
        protocol=fields.get("protocol", "http"),
        payload=payload,
        content_type=fields.get("content_type", "application/json"),
    )


@dataclass
class Backend:
    """Creates buses of one kind; NATS buses of one test share a stream (and prefix)."""

    kind: str
    suffix: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    buses: list[Bus] = field(default_factory=list)

    @property
    def stream(self) -> str:
        return f"T_{self.suffix}"

    @property
    def prefix(self) -> str:
        return f"t_{self.suffix}"

    def url(self, **options: str | int | float) -> str:
        if self.kind == "memory":
            return f"memory://?{urlencode(options)}"
        query = urlencode({"stream": self.stream, "prefix": self.prefix, **options})
        return f"nats://{NATS_SERVER}?{query}"

    def backlog_limit(self, limit: int) -> Options:
        """Options under which a declared durable's backlog of `limit` makes publish fail."""
        if self.kind == "memory":
            return {"max_pending": limit}
        return {"max_msgs": limit, "discard": "new"}

    async def open(self, **options: str | int | float) -> Bus:
        bus = create_bus(self.url(**options))
        self.buses.append(bus)
        await bus.open()
        return bus

    async def cleanup(self) -> None:
        for bus in self.buses:
            await bus.close()
        if self.kind == "nats":
            await delete_stream(self.stream)


async def admin_connection() -> nats.NATS:
    """A plain client for looking at and cleaning up the server; fails fast if it is down."""
    return await nats.connect(
        servers=[f"nats://{NATS_SERVER}"],
        allow_reconnect=False,
        # nats-py retries the first connect this often however allow_reconnect is set.
        max_reconnect_attempts=1,
        reconnect_time_wait=0,
    )


async def delete_stream(stream: str) -> None:
    nc = await admin_connection()
    try:
        await nc.jetstream().delete_stream(stream)
    except nats.js.errors.NotFoundError:
        pass
    finally:
        await nc.close()


async def eventually(
    condition: Callable[[], bool | Awaitable[bool]], *, within: float = 5.0
) -> None:
    """Poll `condition` until it holds, failing the test after `within` seconds."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        result = condition()
        if not isinstance(result, bool):
            result = await result
        if result:
            return
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail(f"condition not met within {within} s")
        await asyncio.sleep(0.01)


class TcpProxy:
    """A TCP forwarder to the NATS server that a test can cut and restore.

    Cutting closes live connections and stops listening, so reconnect attempts are
    refused, which is what a client sees when the broker or the network goes away.
    """

    def __init__(self, upstream: str = NATS_SERVER) -> None:
        host, _, port = upstream.rpartition(":")
        self._upstream = (host, int(port))
        self._server: asyncio.Server | None = None
        self._port = 0
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self._port}"

    async def __aenter__(self) -> TcpProxy:
        await self.restore()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        # Closing the sockets ends every connection handler; cancelling them instead
        # would make asyncio log their cancellation as an unhandled error.
        await self.cut()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=5.0)

    async def cut(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for writer in list(self._writers):
            writer.close()
        self._writers.clear()

    async def restore(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self._port)
        self._port = self._server.sockets[0].getsockname()[1]

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        upstream: asyncio.StreamWriter | None = None
        try:
            self._writers.add(writer)
            up_reader, upstream = await asyncio.open_connection(*self._upstream)
            self._writers.add(upstream)
            async with asyncio.TaskGroup() as group:
                group.create_task(self._pump(reader, upstream), name="proxy-up")
                group.create_task(self._pump(up_reader, writer), name="proxy-down")
        finally:
            for stream in (writer, upstream):
                if stream is not None:
                    stream.close()
                    self._writers.discard(stream)
            self._tasks.discard(task)

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except OSError:
            pass  # the other side was cut
        finally:
            writer.close()
