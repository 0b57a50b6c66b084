"""What only HTTP does: JSON pointers, one request per path, status codes, webhooks."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from shopfloor.sdk.connectors import (
    ConnectorState,
    HttpConnector,
    InvalidAddress,
    Quality,
    WriteRefused,
)

from .conftest import eventually, linked, running
from .machines import SPEED, TEMPERATURE, HttpMachine


@pytest.fixture
async def machine() -> AsyncIterator[HttpMachine]:
    async with running(HttpMachine()) as started:
        yield started


async def test_one_request_per_path_and_pointers_into_it(machine: HttpMachine) -> None:
    async with linked(machine.url) as connector:
        machine.requests.clear()
        readings = await connector.read_many(
            ["/status#/temperature", "GET /status#/speed", "/status", "/status#/missing"]
        )
    assert machine.requests == ["GET /status"]
    assert [r.value for r in readings[:3]] == [
        TEMPERATURE, SPEED, {"temperature": TEMPERATURE, "speed": SPEED},
    ]  # fmt: skip
    assert (readings[3].value, readings[3].quality) == (None, Quality.BAD)


async def test_status_codes(machine: HttpMachine) -> None:
    async with linked(machine.url) as connector:
        with pytest.raises(InvalidAddress):
            await connector.read("/nothing")
        with pytest.raises(InvalidAddress):
            await connector.write("/status", 1)  # GET only: 405
        with pytest.raises(InvalidAddress):
            await connector.write("/setpoint#/value", 1)
        machine.state["failing"] = True
        reading = await connector.read(machine.temperature)
        assert (reading.value, reading.quality) == (None, Quality.BAD)
        assert connector.connected  # the machine answered: the link is fine


async def test_a_failing_health_url_is_a_lost_link(machine: HttpMachine) -> None:
    async with linked(machine.url) as connector:
        machine.healthy = False
        await eventually(lambda: connector.state is ConnectorState.LOST)
        machine.healthy = True
        await eventually(lambda: connector.state is ConnectorState.CONNECTED)


async def test_webhooks_turn_posts_into_readings(machine: HttpMachine) -> None:
    async with linked(machine.url) as connector:
        assert isinstance(connector, HttpConnector)
        hook = await connector.webhook("/hooks/press")
        async with httpx.AsyncClient() as sender:
            # Nobody listens yet: the sender is told to come back, nothing is lost.
            answer = await sender.post(hook, json={"temperature": 25.0})
            assert (answer.status_code, answer.headers["retry-after"]) == (503, "1")
            subscription = connector.subscribe(
                ["/hooks/press#/temperature", "POST /hooks/press", machine.speed],
                interval=0.05,
            )
            first = await anext(subscription)  # the polled speed
            assert (first.address, first.value) == (machine.speed, SPEED)

            async def delivered() -> bool:  # once the subscription's feed has attached
                return (await sender.post(hook, json={"temperature": 25.0})).status_code == 204

            await eventually(delivered)
            async with asyncio.timeout(10):
                temperature, body = await anext(subscription), await anext(subscription)
            assert (temperature.address, temperature.value) == ("/hooks/press#/temperature", 25.0)
            assert (body.address, body.value) == ("POST /hooks/press", {"temperature": 25.0})
            assert (await sender.get(hook)).status_code == 405
            assert (await sender.post(hook.replace("press", "other"), json=1)).status_code == 404
            await subscription.aclose()
            assert (await sender.post(hook, json={})).status_code == 503


async def test_refused_writes_and_calls(machine: HttpMachine) -> None:
    async with linked(machine.url) as connector:
        with pytest.raises(WriteRefused) as refused:
            await connector.write(machine.setpoint, "hot")
        assert "422" in str(refused.value)
        assert await connector.call("/start", 640) == {"running": True, "speed": 640}
        assert (await connector.read(machine.speed)).value == 640
