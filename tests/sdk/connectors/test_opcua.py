"""What only OPC UA does: browse paths, status codes as quality, methods by node id."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from asyncua import ua

from shopfloor.sdk.connectors import CallFailed, InvalidAddress, Quality, WriteRefused

from .conftest import linked, running
from .machines import TEMPERATURE, OpcUaMachine


@pytest.fixture
async def machine(cache_dir: Path) -> AsyncIterator[OpcUaMachine]:
    async with running(OpcUaMachine(cache_dir)) as started:
        yield started


async def test_a_browse_path_and_a_node_id_read_the_same_node(machine: OpcUaMachine) -> None:
    async with linked(machine.url) as connector:
        by_path, by_id = await connector.read_many(
            ["/2:Machine/2:Temperature", "ns=2;s=Temperature"]
        )
    assert by_path.value == by_id.value == TEMPERATURE


async def test_the_status_code_is_the_quality(machine: OpcUaMachine) -> None:
    await machine.nodes["Temperature"].write_value(
        ua.DataValue(ua.Variant(99.0, ua.VariantType.Double),
                     StatusCode=ua.StatusCode(ua.StatusCodes.UncertainLastUsableValue))
    )  # fmt: skip
    async with linked(machine.url) as connector:
        reading = await connector.read(machine.temperature)
        assert (reading.value, reading.quality) == (99.0, Quality.UNCERTAIN)
        await machine.nodes["Temperature"].write_value(
            ua.DataValue(ua.Variant(0.0, ua.VariantType.Double),
                         StatusCode=ua.StatusCode(ua.StatusCodes.BadSensorFailure))
        )  # fmt: skip
        assert (await connector.read(machine.temperature)).quality is Quality.BAD


async def test_unknown_nodes_and_paths_are_invalid_addresses(machine: OpcUaMachine) -> None:
    async with linked(machine.url) as connector:
        for address in ("ns=2;s=Nothing", "/2:Machine/2:Nothing"):
            with pytest.raises(InvalidAddress):
                await connector.read(address)
        assert connector.connected


async def test_writes_follow_the_nodes_type_and_access(machine: OpcUaMachine) -> None:
    async with linked(machine.url) as connector:
        await connector.write(machine.setpoint, 70)  # an int, written as the node's Double
        assert (await connector.read(machine.setpoint)).value == 70.0
        with pytest.raises(WriteRefused):
            await connector.write(machine.temperature, 1.0)  # not writable
        with pytest.raises(WriteRefused):
            await connector.write(machine.setpoint, "hot")


async def test_a_method_by_node_id_finds_its_object(machine: OpcUaMachine) -> None:
    async with linked(machine.url) as connector:
        assert await connector.call("ns=2;s=start", 750.0) is True  # a float for an Int32
        assert (await connector.read("ns=2;s=Speed")).value == 750
        with pytest.raises(CallFailed):
            await connector.call("ns=2;s=start")  # the speed is missing
        with pytest.raises(InvalidAddress):
            await connector.call("ns=2;s=stop")
