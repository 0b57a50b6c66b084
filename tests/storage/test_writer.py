"""The writer on its own: records parsed once per process, malformed messages set aside."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence

import pytest
from prometheus_client import CollectorRegistry

from shopfloor.messaging import Envelope, MemoryBus
from shopfloor.senml import Record
from shopfloor.storage import MemoryStore, Query, StoredMessage
from shopfloor.storage._writer import Writer, WriterMetrics


@pytest.fixture
async def pipeline() -> AsyncIterator[tuple[MemoryBus, MemoryStore, CollectorRegistry]]:
    bus, store, registry = MemoryBus(), MemoryStore(), CollectorRegistry()
    async with bus, store:
        writer = Writer(bus, store, WriterMetrics.create(registry), max_wait=0.05)
        await writer.declare()
        stopping = asyncio.Event()
        running = asyncio.create_task(writer.run(stopping))
        try:
            yield bus, store, registry
        finally:
            stopping.set()
            await running


def envelope(payload: bytes, decoded: object = None) -> Envelope:
    return Envelope(
        channel="chan",
        subtopic="",
        publisher="thing-1",
        protocol="http",
        payload=payload,
        content_type="application/senml+json",
        created=1_700_000_000_000_000_000,
        decoded=decoded,
    )


async def stored(store: MemoryStore, count: int) -> Sequence[StoredMessage]:
    """The stored rows once there are `count` (polled: the store has no event to wait on)."""
    async with asyncio.timeout(5):
        while True:
            page = await store.query(Query(channel="chan"))
            if page.total >= count:
                return page.messages
            await asyncio.sleep(0.01)


async def test_records_parsed_by_the_adapter_are_stored_without_parsing_again(
    pipeline: tuple[MemoryBus, MemoryStore, CollectorRegistry],
) -> None:
    bus, store, registry = pipeline
    records = [Record(name="press:temp", unit="Cel", time=1_700_000_000.5, value=21.5)]
    # The payload is not even JSON: only the records the adapter handed over can be stored.
    await bus.publish(envelope(b"not parsed twice", decoded=records))
    (row,) = await stored(store, 1)
    assert (row.name, row.unit, row.time, row.value) == ("press:temp", "Cel", 1_700_000_000.5, 21.5)
    assert (
        registry.get_sample_value("shopfloor_writer_malformed_total", {"code": "invalid_json"})
        is None
    )


async def test_a_message_from_the_network_is_parsed_and_a_malformed_one_set_aside(
    pipeline: tuple[MemoryBus, MemoryStore, CollectorRegistry],
) -> None:
    bus, store, registry = pipeline
    await bus.publish(envelope(b"not json"))  # as a NATS consumer receives it: bytes only
    await bus.publish(envelope(b'[{"n":"temp","v":1.5,"t":1700000001}]'))
    (row,) = await stored(store, 1)
    assert (row.name, row.value, row.time) == ("temp", 1.5, 1_700_000_001.0)
    async with asyncio.timeout(5):
        while True:  # the malformed message is acknowledged too, and counted
            if not bus.backlog("writer"):
                break
            await asyncio.sleep(0.01)
    assert (
        registry.get_sample_value("shopfloor_writer_malformed_total", {"code": "invalid_json"}) == 1
    )
