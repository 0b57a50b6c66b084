"""What only MQTT does: topic filters, payload decoding, reads of retained messages."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from shopfloor.sdk.connectors import (
    ConnectorState,
    ConnectorTimeout,
    ConnectorUnavailable,
    NotSupported,
    connect,
)

from .conftest import eventually, linked, running
from .machines import FAST, MqttMachine


@pytest.fixture
async def machine(tmp_path: Path) -> AsyncIterator[MqttMachine]:
    async with running(MqttMachine(tmp_path)) as started:
        yield started


async def test_a_filter_delivers_each_topic_it_matches(machine: MqttMachine) -> None:
    async with linked(machine.url) as connector:
        subscription = connector.subscribe(["press/+"])
        seen = {}
        async with asyncio.timeout(10):
            while len(seen) < 2:  # the two retained values
                reading = await anext(subscription)
                seen[reading.address] = reading.value
        assert seen == {"press/temperature": 20.5, "press/speed": 1200}
        await machine.publish("press/state", "running")
        async with asyncio.timeout(10):
            reading = await anext(subscription)
        assert (reading.address, reading.value) == ("press/state", "running")
        await subscription.aclose()


async def test_values_go_out_as_json_and_come_back_decoded(machine: MqttMachine) -> None:
    async with linked(machine.url) as connector:
        await connector.write("press/recipe", {"name": "A7", "cycles": 3})
        await connector.write("press/raw", b"\xff\x00")
        await connector.write("press/note", "not json")
        readings = await connector.read_many(["press/recipe", "press/raw", "press/note"])
    assert [r.value for r in readings] == [{"name": "A7", "cycles": 3}, b"\xff\x00", "not json"]


async def test_reads_need_one_topic_and_a_retained_message(machine: MqttMachine) -> None:
    url = machine.url.replace("timeout=2", "timeout=0.5")
    async with linked(url) as connector:
        with pytest.raises(NotSupported):
            await connector.read("press/#")
        with pytest.raises(ConnectorTimeout):
            await connector.read("press/nothing-here")
        assert connector.connected
        with pytest.raises(NotSupported):
            await connector.write("press/+", 1)


async def test_a_wrong_password_is_reported_and_retried(machine: MqttMachine) -> None:
    url = f"mqtt://{machine.user}:wrong@127.0.0.1:{machine.port}?{FAST}"
    async with connect(url) as connector:
        await eventually(lambda: connector.last_error is not None)
        assert connector.state is ConnectorState.CONNECTING
        assert isinstance(connector.last_error, ConnectorUnavailable)
        assert "wrong" not in str(connector.last_error)
