"""One suite for every connector, each against a real server of its protocol."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC

import pytest

from shopfloor.sdk.connectors import (
    Connector,
    ConnectorState,
    ConnectorUnavailable,
    NotSupported,
    Quality,
    Reading,
    connect,
)

from .conftest import eventually
from .machines import SPEED, TEMPERATURE, Machine


@contextlib.asynccontextmanager
async def connected(machine: Machine) -> AsyncIterator[Connector[object]]:
    async with connect(machine.url) as connector:
        async with asyncio.timeout(10):
            await connector.wait_connected()
        yield connector


@contextlib.asynccontextmanager
async def collecting(
    connector: Connector[object], addresses: list[str]
) -> AsyncIterator[list[Reading]]:
    """Readings of a subscription, gathered in the background while the block runs."""
    readings: list[Reading] = []

    async def gather() -> None:
        async for reading in connector.subscribe(addresses, interval=0.05):
            readings.append(reading)

    task = asyncio.create_task(gather())
    try:
        yield readings
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def values(readings: list[Reading]) -> list[object]:
    return [float(reading.value) for reading in readings]


async def test_the_url_makes_the_protocols_connector(machine: Machine) -> None:
    async with connected(machine) as connector:
        assert connector.protocol == machine.protocol
        assert connector.connected and connector.state is ConnectorState.CONNECTED


async def test_read(machine: Machine) -> None:
    async with connected(machine) as connector:
        reading = await connector.read(machine.temperature)
    assert float(reading.value) == TEMPERATURE
    assert reading.address == machine.temperature
    assert reading.quality is Quality.GOOD
    assert reading.timestamp.tzinfo is not None
    assert reading.timestamp.utcoffset() == UTC.utcoffset(None)


async def test_read_many(machine: Machine) -> None:
    async with connected(machine) as connector:
        readings = await connector.read_many([machine.temperature, machine.speed])
    assert [reading.address for reading in readings] == [machine.temperature, machine.speed]
    assert values(readings) == [TEMPERATURE, SPEED]


async def test_subscribe_delivers_changes(machine: Machine) -> None:
    async with (
        connected(machine) as connector,
        collecting(connector, [machine.temperature]) as readings,
    ):
        await eventually(lambda: TEMPERATURE in values(readings))
        await machine.set_temperature(21.5)
        await eventually(lambda: 21.5 in values(readings))
        await machine.set_temperature(22.5)
        await eventually(lambda: 22.5 in values(readings))
    assert all(reading.address == machine.temperature for reading in readings)


async def test_write_reads_back(machine: Machine) -> None:
    async with connected(machine) as connector:
        await connector.write(machine.setpoint, 65.5)
        reading = await connector.read(machine.readback)
    assert reading.value == machine.expected(65.5)


async def test_call_or_not_supported(machine: Machine) -> None:
    async with connected(machine) as connector:
        if machine.start_method is None:
            with pytest.raises(NotSupported) as refused:
                await connector.call("start", 900)
            assert refused.value.code == "not_supported"
            return
        assert await connector.call(machine.start_method, 900) == machine.started
        assert float((await connector.read(machine.speed)).value) == 900


async def test_heartbeat_answers(machine: Machine) -> None:
    async with connected(machine) as connector:
        await connector.heartbeat()
        assert connector.connected


async def test_loss_and_recovery(machine: Machine) -> None:
    async with connected(machine) as connector:
        states: list[ConnectorState] = []
        connector.on_state(states.append)
        async with collecting(connector, [machine.temperature]) as readings:
            await eventually(lambda: TEMPERATURE in values(readings))
            await machine.stop()
            await eventually(lambda: connector.state is ConnectorState.LOST)
            assert not connector.connected
            with pytest.raises(ConnectorUnavailable) as unavailable:
                await connector.read(machine.temperature)
            assert unavailable.value.code == "connector_unavailable"
            assert unavailable.value.retry_after is not None

            await machine.start()
            await eventually(lambda: connector.state is ConnectorState.CONNECTED)
            await machine.set_temperature(30.5)
            await eventually(lambda: 30.5 in values(readings))
        assert states[:2] == [ConnectorState.LOST, ConnectorState.CONNECTED]
        assert float((await connector.read(machine.temperature)).value) == 30.5


async def test_a_machine_that_comes_up_later(machine: Machine) -> None:
    await machine.stop()
    async with connect(machine.url) as connector:
        assert connector.state is ConnectorState.CONNECTING
        with pytest.raises(ConnectorUnavailable):
            await connector.read(machine.temperature)
        assert connector.last_error is not None
        await machine.start()
        async with asyncio.timeout(10):
            await connector.wait_connected()
        assert float((await connector.read(machine.temperature)).value) == TEMPERATURE


async def test_closing_ends_subscriptions_and_states(machine: Machine) -> None:
    connector = connect(machine.url)
    async with connector:
        await connector.wait_connected()
        states = connector.states()
        assert await anext(states) is ConnectorState.CONNECTED
        subscription = connector.subscribe([machine.temperature], interval=0.05)
        assert float((await anext(subscription)).value) == TEMPERATURE
    assert connector.state is ConnectorState.CLOSED
    assert [state async for state in states] == [ConnectorState.CLOSED]
    assert [reading async for reading in subscription] == []
    with pytest.raises(ConnectorUnavailable):
        await connector.read(machine.temperature)
