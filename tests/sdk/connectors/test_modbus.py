"""What only Modbus does: four tables, typed registers, word order, exception codes."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from shopfloor.sdk.connectors import ConnectorState, InvalidAddress, WriteRefused

from .conftest import eventually, linked, running
from .machines import FAST, SPEED, ModbusMachine


@pytest.fixture
async def machine() -> AsyncIterator[ModbusMachine]:
    async with running(ModbusMachine()) as started:
        yield started


async def test_coils_are_written_and_read_back(machine: ModbusMachine) -> None:
    async with linked(machine.url) as connector:
        assert (await connector.read("coil:3")).value is False
        await connector.write("coil:3", True)
        assert [r.value for r in await connector.read_many(["coil:2", "coil:3"])] == [False, True]


async def test_read_only_tables_refuse_writes(machine: ModbusMachine) -> None:
    async with linked(machine.url) as connector:
        assert (await connector.read("discrete:10001")).value is True
        for address in ("discrete:10001", "input:30001"):
            with pytest.raises(WriteRefused):
                await connector.write(address, 1)


async def test_types_and_word_order_over_registers(machine: ModbusMachine) -> None:
    async with linked(machine.url) as connector:
        await connector.write("holding:40021:int32:little", -123456)
        raw = await connector.read_many(["holding:40021", "holding:40022"])
        assert [r.value for r in raw] == [0x1DC0, 0xFFFE]  # the low word first
        assert (await connector.read("holding:40021:int32:little")).value == -123456
        await connector.write("holding:40025:float64", 0.1)
        assert (await connector.read("holding:40025:float64")).value == 0.1
        with pytest.raises(WriteRefused):
            await connector.write("holding:40030", 70000)


async def test_addresses_the_device_does_not_have(machine: ModbusMachine) -> None:
    async with linked(machine.url) as connector:
        with pytest.raises(InvalidAddress):
            await connector.read("holding:40100")
        with pytest.raises(WriteRefused):
            await connector.write("holding:40100", 1)
        assert connector.connected


async def test_a_heartbeat_register_notices_a_device_that_stops_answering(
    machine: ModbusMachine,
) -> None:
    url = f"modbus+tcp://127.0.0.1:{machine.port}?unit=1&heartbeat_address=input:30001&{FAST}"
    async with linked(url) as connector:
        assert (await connector.read(machine.speed)).value == SPEED
        await connector.heartbeat()
        machine.answering.clear()  # the socket stays open, no answer comes
        await eventually(lambda: connector.state is ConnectorState.LOST)
        machine.answering.set()
        await eventually(lambda: connector.state is ConnectorState.CONNECTED)
        assert (await connector.read(machine.speed)).value == SPEED
