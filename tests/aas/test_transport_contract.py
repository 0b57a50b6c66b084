"""One contract for every AAS transport: memory, Kafka (a real Tansu broker), NATS."""

from __future__ import annotations

import asyncio
import contextlib

from shopfloor.aas.transports import Record, Transport, create_transport

from .brokers import Broker


async def _take(transport: Transport, topic: str, partition: int, count: int) -> list[Record]:
    found: list[Record] = []
    async with contextlib.aclosing(transport.read(topic, partition)) as records:
        async for record in records:
            found.append(record)
            if len(found) == count:
                return found
    raise AssertionError("the reader ended")


async def test_records_come_back_in_order_per_partition_with_their_keys(broker: Broker) -> None:
    topic = broker.topic()
    async with create_transport(broker.url) as transport:
        await transport.ensure_topic(topic)
        await transport.publish(topic, 0, "manager-status", b'{"n":1}')
        await transport.publish(topic, 1, "core-status", b'{"n":2}')
        await transport.publish(topic, 0, "manager-service-request", b'{"n":3}')
        zero = await asyncio.wait_for(_take(transport, topic, 0, 2), 10)
        one = await asyncio.wait_for(_take(transport, topic, 1, 1), 10)
    assert [(r.key, r.value) for r in zero] == [
        ("manager-status", b'{"n":1}'),
        ("manager-service-request", b'{"n":3}'),
    ]
    assert [(r.key, r.value) for r in one] == [("core-status", b'{"n":2}')]
    assert zero[0].offset < zero[1].offset


async def test_a_reader_started_later_reads_from_the_earliest_record(broker: Broker) -> None:
    topic = broker.topic()
    async with create_transport(broker.url) as writer:
        await writer.ensure_topic(topic)
        await writer.publish(topic, 1, "core-status", b"first")
    async with create_transport(broker.url) as reader:
        got = asyncio.create_task(_take(reader, topic, 1, 2))
        async with create_transport(broker.url) as writer:
            await writer.publish(topic, 1, "core-status", b"second")
        records = await asyncio.wait_for(got, 10)
    assert [r.value for r in records] == [b"first", b"second"]


async def test_a_snapshot_holds_exactly_what_the_partition_holds(broker: Broker) -> None:
    topic = broker.topic()
    async with create_transport(broker.url) as transport:
        await transport.ensure_topic(topic)
        assert await transport.snapshot(topic, 0) == []
        for n in range(3):
            await transport.publish(topic, 0, "manager-status", str(n).encode())
        await transport.publish(topic, 1, "core-status", b"other")
        await transport.ensure_topic(topic)  # again: nothing changes
        snapshot = await transport.snapshot(topic, 0)
    assert [r.value for r in snapshot] == [b"0", b"1", b"2"]
