"""What is particular to the in-process bus: its bounds, hand-back and dedupe window."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from shopfloor.messaging import (
    BusFull,
    BusUnavailable,
    InvalidBusUrl,
    MemoryBus,
    MessageTooLarge,
    create_bus,
)

from .bus_testkit import make_envelope

TIMEOUT = 5.0


@pytest.fixture
async def bus() -> AsyncIterator[MemoryBus]:
    async with MemoryBus(max_pending=3, ack_wait=30) as bus:
        yield bus


async def test_backlog_frees_up_as_messages_are_acknowledged(bus: MemoryBus) -> None:
    await bus.declare("writer", ["channels.>"])
    async with bus.subscribe(["channels.>"]) as subscription:
        for i in range(3):
            await bus.publish(make_envelope("c1", f"m{i}"))
        refused = make_envelope("c1", "refused")
        with pytest.raises(BusFull):
            await bus.publish(refused)
        async with bus.consume("writer", ["channels.>"]) as consumer:
            first = await consumer.fetch(1, 1.0)
            assert bus.backlog("writer") == 3  # delivered, not yet acknowledged
            await first[0].ack()
        accepted = make_envelope("c1", "accepted")
        await bus.publish(accepted)
        # The refused message went nowhere, not even to subscribers.
        seen = [await anext(subscription) for _ in range(4)]
    assert [e.subtopic for e in seen] == ["m0", "m1", "m2", "accepted"]
    assert bus.backlog("writer") == 3


async def test_only_declared_durables_hold_messages_back(bus: MemoryBus) -> None:
    for i in range(10):
        await bus.publish(make_envelope("c1", f"m{i}"))
    await bus.declare("alerts", ["channels.c2.>"])
    for i in range(10):
        await bus.publish(make_envelope("c1", f"n{i}"))  # not matched by the durable
    assert bus.backlog("alerts") == 0
    assert bus.backlog("never-declared") == 0


async def test_leaving_consumer_hands_back_unsettled_deliveries_at_once(bus: MemoryBus) -> None:
    sent = make_envelope("c1")
    async with bus.consume("writer", ["channels.>"]) as consumer:
        await bus.publish(sent)
        async with asyncio.timeout(TIMEOUT):
            first = await anext(consumer)
    async with bus.consume("writer", ["channels.>"]) as consumer:
        again = await consumer.fetch(1, 0.5)  # far sooner than ack_wait=30
        await again[0].ack()
    assert first.envelope == again[0].envelope == sent
    assert again[0].attempt == 2
    await first.ack()  # a stale delivery settling late is harmless
    assert bus.backlog("writer") == 0


async def test_skipped_protocols_neither_wait_in_a_durable_nor_fill_it(bus: MemoryBus) -> None:
    await bus.declare("outbound", ["channels.>"], skip_protocols={"mqtt"})
    for i in range(5):  # more than max_pending=3
        await bus.publish(make_envelope("c1", f"m{i}", protocol="mqtt"))
    assert bus.backlog("outbound") == 0
    for i in range(3):
        await bus.publish(make_envelope("c1", f"h{i}", protocol="http"))
    assert bus.backlog("outbound") == 3
    with pytest.raises(BusFull):
        await bus.publish(make_envelope("c1", "h3", protocol="http"))
    await bus.publish(make_envelope("c1", "m5", protocol="mqtt"))  # still taken


async def test_redeclaring_replaces_the_filters(bus: MemoryBus) -> None:
    await bus.declare("writer", ["channels.a.>"])
    await bus.declare("writer", ["channels.b.>"])
    await bus.publish(make_envelope("a", "x"))
    await bus.publish(make_envelope("b", "x"))
    async with bus.consume("writer", ["channels.b.>"]) as consumer:
        got = await consumer.fetch(10, 0.2)
    assert [d.envelope.channel for d in got] == ["b"]


async def test_dedupe_forgets_ids_after_the_window() -> None:
    async with MemoryBus(dedupe_window=0) as bus, bus.subscribe(["channels.>"]) as subscription:
        twice = make_envelope("c1")
        await bus.publish(twice)
        await bus.publish(twice)
        assert [await anext(subscription) for _ in range(2)] == [twice, twice]


async def test_dedupe_remembers_at_most_max_pending_ids(bus: MemoryBus) -> None:
    first, *others = [make_envelope("c1", f"m{i}") for i in range(4)]
    async with bus.subscribe(["channels.>"]) as subscription:
        for envelope in [first, *others, first]:
            await bus.publish(envelope)
        seen = [await anext(subscription) for _ in range(5)]
    assert seen == [first, *others, first]


async def test_oversized_payload_is_refused() -> None:
    async with MemoryBus(max_payload=10) as bus:
        with pytest.raises(MessageTooLarge):
            await bus.publish(make_envelope("c1", payload=b"x" * 11))


async def test_closed_bus_cannot_be_reopened() -> None:
    bus = MemoryBus()
    assert not bus.ready
    async with bus:
        assert bus.ready
    assert not bus.ready
    with pytest.raises(BusUnavailable):
        await bus.open()
    with pytest.raises(BusUnavailable):
        await bus.declare("writer", ["channels.>"])


def test_url_options_configure_the_bus() -> None:
    bus = create_bus("memory://?max_pending=7&ack_wait=2.5&dedupe_window=0&max_queued=9")
    assert isinstance(bus, MemoryBus)
    assert (bus.max_pending, bus.ack_wait, bus.dedupe_window, bus.max_queued) == (7, 2.5, 0, 9)


@pytest.mark.parametrize(
    "url",
    [
        "memory://somehost",
        "memory:///path",
        "memory://?max_pending=0",
        "memory://?max_pending=many",
        "memory://?ack_wait=nan",
        "memory://?ack_wiat=1",
        "memory://?ack_wait=1&ack_wait=2",
    ],
)
def test_bad_memory_urls_are_refused(url: str) -> None:
    with pytest.raises(InvalidBusUrl):
        create_bus(url)


async def test_publish_many_answers_for_each_envelope(bus: MemoryBus) -> None:
    """One refused envelope (too large, backlog full) does not refuse the others."""
    await bus.declare("d", ["channels.>"])
    small = [make_envelope() for _ in range(4)]
    large = make_envelope(payload=b"x" * (bus.max_payload + 1))
    results = await bus.publish_many([small[0], large, *small[1:]])
    assert results[0] is None and results[2] is None and results[3] is None
    assert isinstance(results[1], MessageTooLarge)
    assert isinstance(results[4], BusFull)  # max_pending=3
    assert bus.backlog("d") == 3
