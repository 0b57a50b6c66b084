"""Mosquitto mode through outages: the bridge away, the broker restarted, redeliveries."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from mosquitto_testkit import RunningBroker, connected, mqtt_client, run_mosquitto
from test_mosquitto_bridge_kit import Plant, eventually, in_process_platform, sample

from shopfloor.adapters.mosquitto import BRIDGE_USERNAME, DynsecClient
from shopfloor.adapters.mosquitto._dynsec import modify_client
from shopfloor.registry import Permission


@pytest.fixture
async def plant(tmp_path: Path, broker: RunningBroker) -> AsyncIterator[Plant]:
    async with in_process_platform(tmp_path, broker) as running:
        yield running


def reading(n: int, name: str = "count") -> bytes:
    return json.dumps([{"n": name, "v": n}]).encode()


async def can_log_in(broker: RunningBroker, username: str, password: str) -> bool:
    try:
        async with mqtt_client(broker, username, password):
            return True
    except Exception:
        return False


async def test_messages_sent_while_the_bridge_and_broker_were_down_arrive_once(
    tmp_path: Path, publisher_plugin: Path
) -> None:
    work = tmp_path / "broker"
    async with contextlib.AsyncExitStack() as stack:
        first_run = contextlib.AsyncExitStack()
        broker = await first_run.enter_async_context(run_mosquitto(work, publisher_plugin))
        plant = await stack.enter_async_context(in_process_platform(tmp_path, broker))
        press, key = await plant.thing("press", Permission.PUBLISH)
        async with plant.service():
            pass  # the bridge's session and subscription now exist in the broker
        async with connected(broker, press.id, key) as thing:
            for n in range(50):
                await thing.client.publish(plant.topic("count"), reading(n), qos=1)
        await first_run.aclose()  # the broker writes the session to disk as it stops
        await stack.enter_async_context(run_mosquitto(work, publisher_plugin, port=broker.port))

        async with plant.service():
            await plant.bus.wait_until(lambda: len(plant.bus.taken) >= 50)

    assert sorted(json.loads(e.payload)[0]["v"] for e in plant.bus.taken) == list(range(50))
    assert {e.publisher for e in plant.bus.taken} == {press.id}


async def test_the_bridge_reconnects_and_resyncs_after_a_broker_restart(
    tmp_path: Path, publisher_plugin: Path
) -> None:
    work = tmp_path / "broker"
    async with contextlib.AsyncExitStack() as stack:
        first_run = contextlib.AsyncExitStack()
        broker = await first_run.enter_async_context(run_mosquitto(work, publisher_plugin))
        plant = await stack.enter_async_context(in_process_platform(tmp_path, broker))
        press, press_key = await plant.thing("press", Permission.PUBLISH)
        service, metrics = await stack.enter_async_context(plant.service())
        async with connected(broker, press.id, press_key) as thing:
            await thing.client.publish(plant.topic(), reading(1), qos=1)
            await plant.bus.wait_for(lambda e: e.payload == reading(1))

        await first_run.aclose()
        # Changed while the broker is down: applying it fails until the broker is back.
        late, late_key = await plant.thing("late", Permission.PUBLISH)
        await stack.enter_async_context(run_mosquitto(work, publisher_plugin, port=broker.port))

        await eventually(lambda: sample(metrics, "shopfloor_mqtt_bridge_connects_total") >= 2)
        await eventually(lambda: can_log_in(broker, late.id, late_key))
        async with (
            connected(broker, press.id, press_key) as thing,
            connected(broker, late.id, late_key) as newcomer,
        ):
            await thing.client.publish(plant.topic(), reading(2), qos=1)

            # The connection may still be granted before the role is: retry until in.
            async def through() -> bool:
                await newcomer.client.publish(plant.topic(), reading(3), qos=1)
                return bool(plant.bus.with_payload(reading(3)))

            await eventually(through, every=0.05)
            await plant.bus.wait_for(lambda e: e.payload == reading(2))
        await eventually(lambda: service.ready)

    assert len(plant.bus.with_payload(reading(2))) == 1
    assert service.last_sync is not None


async def test_messages_the_broker_delivers_again_are_taken_once(plant: Plant) -> None:
    press, key = await plant.thing("press", Permission.PUBLISH)
    first, second = reading(1, "first"), reading(2, "second")
    plant.bus.hold(b"first")

    async with (
        plant.service() as (service, metrics),
        connected(plant.broker, press.id, key) as thing,
    ):
        await thing.client.publish(plant.topic(), first, qos=1)
        await thing.client.publish(plant.topic(), second, qos=1)
        # `second` is on the bus, but acknowledged only after `first`, which the bus holds.
        await plant.bus.wait_for(lambda e: e.payload == second)
        async with DynsecClient.from_url(plant.broker.admin_url, timeout=5.0) as admin:
            # Writing a client record makes the broker end that client's connection.
            await admin.run([modify_client(BRIDGE_USERNAME, textname="Shopfloor bridge")])
        await eventually(lambda: not service.ready)
        plant.bus.release()
        await eventually(lambda: sample(metrics, "shopfloor_mqtt_duplicates_total") == 2)
        await eventually(lambda: service.ready)

    assert len(plant.bus.with_payload(first)) == 1
    assert len(plant.bus.with_payload(second)) == 1
    assert sample(metrics, "shopfloor_mqtt_bridge_connects_total") == 2
