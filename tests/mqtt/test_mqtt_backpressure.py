"""Backpressure: while the bus refuses messages, PUBACKs wait and QoS 0 overflow is dropped.

A durable consumer that nobody reads fills a memory bus with a small `max_pending`:
the bus's real "full" state, no fake.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from shopfloor.adapters.mqtt import BrokerLimits
from shopfloor.messaging import MemoryBus

from .conftest import Plant, running_plant, wait_until
from .mqtt_wire import puback_packet, publish_packet, raw_connect

FAST_RETRIES = BrokerLimits(retry_base=0.01, retry_cap=0.05)


def retries(plant: Plant) -> float:
    return plant.metrics.get_sample_value("shopfloor_mqtt_publish_retries_total") or 0.0


async def test_puback_is_withheld_while_the_bus_is_full(tmp_path: Path) -> None:
    bus = MemoryBus(max_pending=2)
    async with running_plant(tmp_path, bus=bus, limits=FAST_RETRIES) as plant:
        await bus.declare("slow", ["channels.>"])
        async with plant.client("press") as press, asyncio.TaskGroup() as tasks:
            await press.publish(plant.topic(), b'{"n": 1}', qos=1)
            await press.publish(plant.topic(), b'{"n": 2}', qos=1)
            third = tasks.create_task(press.publish(plant.topic(), b'{"n": 3}', qos=1))
            await wait_until(lambda: retries(plant) >= 3)
            assert not third.done()  # no PUBACK while the bus refuses
            assert bus.backlog("slow") == 2

            async with bus.consume("slow", ["channels.>"]) as consumer:
                deliveries = await consumer.fetch(2, 5.0)
                await asyncio.gather(*(delivery.ack() for delivery in deliveries))
                await asyncio.wait_for(third, 10)  # the PUBACK came once the bus took it
                stored = await consumer.fetch(1, 5.0)
                assert [d.envelope.payload for d in stored] == [b'{"n": 3}']
    assert plant.rejected("unavailable") == 0


async def test_qos_0_overflow_is_dropped_while_the_bus_is_full(tmp_path: Path) -> None:
    bus = MemoryBus(max_pending=1)
    limits = BrokerLimits(retry_base=0.01, retry_cap=0.05, max_inbound_queued=3)
    async with running_plant(tmp_path, bus=bus, limits=limits) as plant:
        await bus.declare("slow", ["channels.>"])
        async with plant.client("press") as press:
            await press.publish(plant.topic(), b'{"n": 0}', qos=1)  # fills the bus
            await press.publish(plant.topic(), b'{"n": 1}', qos=0)  # held: being retried
            await wait_until(lambda: retries(plant) >= 1)
            for index in range(2, 7):  # three wait in line, two find it full
                await press.publish(plant.topic(), f'{{"n": {index}}}'.encode(), qos=0)
            await wait_until(lambda: plant.rejected("overloaded") == 2)

            async with bus.consume("slow", ["channels.>"]) as consumer:
                seen: list[bytes] = []
                while len(seen) < 5:  # n = 0 .. 4 once the bus makes room, in order
                    for delivery in await consumer.fetch(1, 5.0):
                        seen.append(delivery.envelope.payload)
                        await delivery.ack()
            assert seen == [f'{{"n": {index}}}'.encode() for index in range(5)]


async def test_stopping_the_broker_gives_up_held_messages_unacknowledged(
    tmp_path: Path,
) -> None:
    bus = MemoryBus(max_pending=1)
    async with running_plant(tmp_path, bus=bus, limits=FAST_RETRIES) as plant:
        await bus.declare("slow", ["channels.>"])
        reader, writer, _code = await raw_connect(plant.broker.port, "p1", *plant.things["press"])
        try:
            writer.write(publish_packet(plant.topic(), b'{"n": 1}', qos=1, packet_id=1))
            assert await asyncio.wait_for(reader.readexactly(4), 10) == puback_packet(1)
            writer.write(publish_packet(plant.topic(), b'{"n": 2}', qos=1, packet_id=2))
            await wait_until(lambda: retries(plant) >= 2)

            async with asyncio.timeout(10):
                await plant.broker.__aexit__(None, None, None)
                assert await reader.read() == b""  # hung up, with no PUBACK for packet 2
        finally:
            writer.close()
        assert not plant.broker.ready
        assert plant.rejected("unavailable") == 1
        assert bus.backlog("slow") == 1
