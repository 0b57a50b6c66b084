"""What only raw TCP does: framings, binary payloads, refusals by prefix, a probe."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from shopfloor.sdk.connectors import (
    CallFailed,
    ConnectorState,
    ConnectorTimeout,
    WriteRefused,
)

from .conftest import eventually, linked, running
from .machines import FAST, TcpMachine


@pytest.fixture
async def machine() -> AsyncIterator[TcpMachine]:
    async with running(TcpMachine()) as started:
        yield started


async def test_refusals_by_reply_prefix(machine: TcpMachine) -> None:
    async with linked(machine.url) as connector:
        with pytest.raises(WriteRefused):
            await connector.write("SET pressure", 3)
        with pytest.raises(CallFailed):
            await connector.call("GET", "pressure")
        assert await connector.call("ECHO", 1, "two") == "ECHO 1 two"


async def test_a_probe_notices_a_device_that_stops_answering(machine: TcpMachine) -> None:
    url = f"tcp://127.0.0.1:{machine.port}?probe=PING&{FAST}".replace("timeout=2", "timeout=0.3")
    async with linked(url) as connector:
        machine.mute = True
        await eventually(lambda: connector.state is ConnectorState.LOST)
        machine.mute = False
        await eventually(lambda: connector.state is ConnectorState.CONNECTED)
        assert (await connector.read(machine.temperature)).value == "20.5"


async def test_an_unanswered_request_does_not_shift_the_next_answers(machine: TcpMachine) -> None:
    url = machine.url.replace("timeout=2", "timeout=0.3")
    async with linked(url) as connector:
        machine.mute = True
        with pytest.raises(ConnectorTimeout):
            await connector.read(machine.speed)
        machine.mute = False
        await eventually(lambda: connector.connected)
        assert (await connector.read(machine.temperature)).value == "20.5"


async def test_length_prefixed_binary_frames() -> None:
    async def reverse(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while size := await reader.readexactly(2):
                body = await reader.readexactly(int.from_bytes(size, "big"))
                writer.write(len(body).to_bytes(2, "big") + body[::-1])
        except asyncio.IncompleteReadError:
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(reverse, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        url = f"tcp://127.0.0.1:{port}?framing=length-prefixed:2&encoding=hex&{FAST}"
        async with linked(url) as connector:
            reading = await connector.read("0102ff")
            assert (reading.address, reading.value) == ("0102ff", b"\xff\x02\x01")
            assert await connector.call("aa", b"\x00\x01") == b"\x01\x00\xaa"
    finally:
        server.close()
        await server.wait_closed()
