"""The bus contract: every test runs against MemoryBus and NatsBus (real JetStream).

Absence ("this subscriber did not get that message") is proven without waiting for
time to pass: a marker message matching every filter is published last, and since
both backends keep the order of one publisher, everything before it has arrived
once the marker has.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from shopfloor.messaging import (
    BusFull,
    BusUnavailable,
    Consumer,
    Delivery,
    Envelope,
    Subscription,
    channel_filters,
)

from .bus_testkit import Backend, eventually, make_envelope

TIMEOUT = 10.0


async def received_before(source: AsyncIterator[Envelope], marker: Envelope) -> list[Envelope]:
    """Envelopes from `source` up to (not including) `marker`."""
    seen: list[Envelope] = []
    async with asyncio.timeout(TIMEOUT):
        async for envelope in source:
            if envelope.id == marker.id:
                return seen
            seen.append(envelope)
    pytest.fail("the iteration ended before the marker arrived")


async def deliveries_before(consumer: Consumer, marker: Envelope) -> list[Delivery]:
    """Deliveries up to (not including) `marker`, all acknowledged."""
    seen: list[Delivery] = []
    async with asyncio.timeout(TIMEOUT):
        async for delivery in consumer:
            await delivery.ack()
            if delivery.envelope.id == marker.id:
                return seen
            seen.append(delivery)
    pytest.fail("the iteration ended before the marker arrived")


async def next_envelope(subscription: Subscription) -> Envelope:
    async with asyncio.timeout(TIMEOUT):
        return await anext(subscription)


async def next_delivery(consumer: Consumer) -> Delivery:
    async with asyncio.timeout(TIMEOUT):
        return await anext(consumer)


async def test_subscriber_receives_the_exact_envelope(backend: Backend) -> None:
    bus = await backend.open()
    sent = Envelope(
        channel="plant-7_line",
        subtopic="press/3/temperature",
        publisher="9f1c2d3e-thing",
        protocol="mqtt",
        payload=bytes(range(256)) + b"\r\n\x00",
        content_type=" application/senml+json; charset=utf-8 % ü ",
        created=1_700_000_000_123_456_789,
    )
    async with bus.subscribe(channel_filters("plant-7_line")) as subscription:
        await bus.publish(sent)
        received = await next_envelope(subscription)
    assert received == sent


async def test_publish_many_holds_each_message_in_order(backend: Backend) -> None:
    bus = await backend.open()
    sent = [make_envelope("many", payload=str(n).encode()) for n in range(20)]
    async with bus.subscribe(channel_filters("many")) as subscription:
        assert await bus.publish_many(sent) == [None] * len(sent)
        received = [await next_envelope(subscription) for _ in sent]
    assert [e.id for e in received] == [e.id for e in sent]


def markers_for(filters: list[str]) -> list[Envelope]:
    """One envelope matching each filter, with wildcards filled in."""
    markers = []
    for subject_filter in filters:
        tokens = ["mk" if t in ("*", ">") else t for t in subject_filter.split(".")]
        markers.append(make_envelope(tokens[1], "/".join(tokens[2:])))
    return markers


async def received_before_markers(
    subscription: Subscription, markers: list[Envelope]
) -> list[Envelope]:
    """What arrived before one marker per filter did.

    Order holds per filter only (NATS: per core subscription), so with several
    filters every one of them needs its own marker before absence is proven.
    """
    waiting = {m.id for m in markers}
    seen: list[Envelope] = []
    async with asyncio.timeout(TIMEOUT):
        async for envelope in subscription:
            if envelope.id in waiting:
                waiting.discard(envelope.id)
                if not waiting:
                    return seen
            else:
                seen.append(envelope)
    pytest.fail("the iteration ended before every marker arrived")


PUBLISHED = [("c1", ""), ("c1", "temp"), ("c1", "hum"), ("c1", "press/3/temp"), ("c2", "temp")]


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        (["channels.c1"], [("c1", "")]),
        (["channels.c1.*"], [("c1", "temp"), ("c1", "hum")]),
        (["channels.c1.>"], [("c1", "temp"), ("c1", "hum"), ("c1", "press/3/temp")]),
        (["channels.*.temp"], [("c1", "temp"), ("c2", "temp")]),
        (
            ["channels.c1.press.*.temp", "channels.c2.temp"],
            [("c1", "press/3/temp"), ("c2", "temp")],
        ),
        (["channels.c1", "channels.c1.>"], PUBLISHED[:4]),
        (["channels.>", "channels.c1.>"], PUBLISHED),  # overlapping: each message once
    ],
)
async def test_filters_select_messages_with_nats_wildcards(
    backend: Backend, filters: list[str], expected: list[tuple[str, str]]
) -> None:
    bus = await backend.open()
    markers = markers_for(filters)
    async with bus.subscribe(filters) as subscription:
        for channel, subtopic in PUBLISHED:
            await bus.publish(make_envelope(channel, subtopic))
        for marker in markers:
            await bus.publish(marker)
        received = await received_before_markers(subscription, markers)
    assert sorted((e.channel, e.subtopic) for e in received) == sorted(expected)


async def test_subtopic_travels_as_subject_tokens(backend: Backend) -> None:
    bus = await backend.open()
    async with bus.subscribe(["channels.c9.a.b-2.c_3"]) as subscription:
        await bus.publish(make_envelope("c9", "a/b-2/c_3"))
        received = await next_envelope(subscription)
    assert received.subtopic == "a/b-2/c_3"


async def test_every_subscriber_gets_every_message(backend: Backend) -> None:
    bus = await backend.open()
    sent = [make_envelope("fan", f"s{i}") for i in range(5)]
    async with (
        bus.subscribe(channel_filters("fan")) as first,
        bus.subscribe(["channels.fan.>"]) as second,
    ):
        for envelope in sent:
            await bus.publish(envelope)
        assert [await next_envelope(first) for _ in sent] == sent
        assert [await next_envelope(second) for _ in sent] == sent


async def test_durable_keeps_messages_published_while_no_consumer_is_attached(
    backend: Backend,
) -> None:
    bus = await backend.open()
    await bus.declare("writer", ["channels.>"])
    away = [make_envelope("c1", f"m{i}") for i in range(3)]
    for envelope in away:
        await bus.publish(envelope)
    marker = make_envelope("c1", "marker")
    async with bus.consume("writer", ["channels.>"]) as consumer:
        await bus.publish(marker)
        received = await deliveries_before(consumer, marker)
    assert [d.envelope for d in received] == away
    assert all(d.attempt == 1 for d in received)


async def test_durable_attached_once_keeps_messages_after_it_left(backend: Backend) -> None:
    bus = await backend.open()
    async with bus.consume("alerts", ["channels.c1.>"]):
        pass
    away = make_envelope("c1", "while-away")
    await bus.publish(away)
    marker = make_envelope("c1", "marker")
    async with bus.consume("alerts", ["channels.c1.>"]) as consumer:
        await bus.publish(marker)
        received = await deliveries_before(consumer, marker)
    assert [d.envelope for d in received] == [away]


async def test_messages_before_a_durable_is_declared_are_not_kept_for_it(
    backend: Backend,
) -> None:
    bus = await backend.open()
    await bus.publish(make_envelope("c1", "too-early"))
    marker = make_envelope("c1", "marker")
    async with bus.consume("late", ["channels.>"]) as consumer:
        await bus.publish(marker)
        assert await deliveries_before(consumer, marker) == []


async def test_consumer_with_several_filters_gets_exactly_what_they_match(
    backend: Backend,
) -> None:
    bus = await backend.open()
    filters = ["channels.a", "channels.a.x.>", "channels.marker"]
    wanted = [make_envelope("a"), make_envelope("a", "x/y"), make_envelope("a", "x/y/z")]
    unwanted = [make_envelope("a", "y"), make_envelope("b"), make_envelope("a", "x")]
    marker = make_envelope("marker")
    async with bus.consume("picky", filters) as consumer:
        for envelope in [wanted[0], unwanted[0], wanted[1], unwanted[1], unwanted[2], wanted[2]]:
            await bus.publish(envelope)
        await bus.publish(marker)
        received = await deliveries_before(consumer, marker)
    assert [d.envelope for d in received] == wanted


async def test_a_durable_is_never_given_the_protocols_it_skips(backend: Backend) -> None:
    bus = await backend.open()
    skip = {"mqtt"}
    await bus.declare("outbound", ["channels.>"], skip_protocols=skip)
    sent = [
        make_envelope("c1", "a", protocol="http"),
        make_envelope("c1", "b", protocol="mqtt"),
        make_envelope("c1", "c", protocol="websocket"),
        make_envelope("c1", "d", protocol="mqtt"),
    ]
    for envelope in sent:
        await bus.publish(envelope)
    marker = make_envelope("c1", "marker")
    async with bus.consume("outbound", ["channels.>"], skip_protocols=skip) as consumer:
        assert consumer.skip_protocols == frozenset(skip)
        await bus.publish(marker)
        received = await deliveries_before(consumer, marker)
    assert [d.envelope for d in received] == [sent[0], sent[2]]


async def test_consumers_of_one_durable_share_the_messages(backend: Backend) -> None:
    bus = await backend.open()
    sent = [make_envelope("work", f"m{i}") for i in range(20)]
    async with (
        bus.consume("shared", ["channels.work.>"]) as first,
        bus.consume("shared", ["channels.work.>"]) as second,
    ):
        for envelope in sent:
            await bus.publish(envelope)
        taken_by_first = await first.fetch(5, 2.0)
        taken_by_second = await second.fetch(100, 0.5)
        assert len(taken_by_first) == 5
        first_ids = {d.envelope.id for d in taken_by_first}
        second_ids = {d.envelope.id for d in taken_by_second}
        assert first_ids.isdisjoint(second_ids)
        assert first_ids | second_ids == {e.id for e in sent}
        for delivery in [*taken_by_first, *taken_by_second]:
            await delivery.ack()


async def test_concurrent_consumers_of_one_durable_never_duplicate(backend: Backend) -> None:
    bus = await backend.open()
    sent = [make_envelope("work", f"m{i}") for i in range(60)]
    seen: list[str] = []
    all_seen = asyncio.Event()

    async def work(consumer: Consumer) -> None:
        async for delivery in consumer:
            seen.append(delivery.envelope.id)
            await delivery.ack()
            if len(seen) >= len(sent):
                all_seen.set()

    async with (
        bus.consume("pool", ["channels.work.>"], batch=4) as first,
        bus.consume("pool", ["channels.work.>"], batch=4) as second,
        asyncio.TaskGroup() as group,
    ):
        group.create_task(work(first), name="worker-1")
        group.create_task(work(second), name="worker-2")
        for envelope in sent:
            await bus.publish(envelope)
        async with asyncio.timeout(TIMEOUT):
            await all_seen.wait()
        await first.aclose()
        await second.aclose()
    assert sorted(seen) == sorted(e.id for e in sent)


async def test_unacknowledged_message_is_redelivered_after_ack_wait(backend: Backend) -> None:
    bus = await backend.open(ack_wait=1)
    sent = make_envelope("c1", "x")
    async with bus.consume("slow", ["channels.>"]) as consumer:
        await bus.publish(sent)
        first = await next_delivery(consumer)
        handed_out = asyncio.get_running_loop().time()
        again = await next_delivery(consumer)
        waited = asyncio.get_running_loop().time() - handed_out
        await again.ack()
    assert first.envelope == again.envelope == sent
    assert (first.attempt, again.attempt) == (1, 2)
    assert waited >= 0.9


async def test_acknowledged_message_is_not_redelivered(backend: Backend) -> None:
    bus = await backend.open(ack_wait=1)
    async with bus.consume("once", ["channels.>"]) as consumer:
        await bus.publish(make_envelope("c1"))
        delivery = await next_delivery(consumer)
        await delivery.ack()
        await delivery.ack()  # settling twice is harmless
        # Longer than ack_wait: a redelivery would have shown up by now.
        assert await consumer.fetch(10, 1.5) == []


async def test_nak_hands_the_message_out_again(backend: Backend) -> None:
    bus = await backend.open(ack_wait=30)
    async with bus.consume("retry", ["channels.>"]) as consumer:
        sent = make_envelope("c1")
        await bus.publish(sent)
        await (await next_delivery(consumer)).nak()
        again = await next_delivery(consumer)
        await again.nak(delay=0.2)
        third = await next_delivery(consumer)
        await third.ack()
    assert again.envelope == third.envelope == sent
    assert (again.attempt, third.attempt) == (2, 3)


async def test_in_progress_holds_off_redelivery(backend: Backend) -> None:
    bus = await backend.open(ack_wait=2)
    async with bus.consume("long", ["channels.>"]) as consumer:
        await bus.publish(make_envelope("c1"))
        delivery = await next_delivery(consumer)
        for _ in range(3):  # 3 x 1 s of work: beyond ack_wait without the keep-alives
            assert await consumer.fetch(1, 1.0) == []
            await delivery.in_progress()
        await delivery.ack()


async def test_same_envelope_published_twice_is_received_once(backend: Backend) -> None:
    bus = await backend.open()
    twice = make_envelope("c1", "dup")
    marker = make_envelope("c1", "marker")
    async with (
        bus.subscribe(["channels.c1.>"]) as subscription,
        bus.consume("dedupe", ["channels.c1.>"]) as consumer,
    ):
        for envelope in (twice, twice, marker):
            await bus.publish(envelope)
        assert [d.envelope for d in await deliveries_before(consumer, marker)] == [twice]
        assert await received_before(subscription, marker) == [twice]


async def test_slow_subscriber_loses_messages_without_slowing_publishers(
    backend: Backend,
) -> None:
    bus = await backend.open()
    sent = [make_envelope("busy", f"m{i}") for i in range(50)]
    async with (
        bus.subscribe(["channels.busy.>"], max_queued=5) as slow,
        bus.subscribe(["channels.busy.>"], max_queued=100) as fast,
    ):
        async with asyncio.timeout(TIMEOUT):
            for envelope in sent:
                await bus.publish(envelope)
        assert [await next_envelope(fast) for _ in sent] == sent
        await eventually(lambda: slow.dropped == 45)
        assert [await next_envelope(slow) for _ in range(5)] == sent[:5]
        assert fast.dropped == 0


async def test_publish_fails_with_bus_full_at_the_backlog_limit(backend: Backend) -> None:
    bus = await backend.open(**backend.backlog_limit(5))
    await bus.declare("writer", ["channels.>"])
    for i in range(5):
        await bus.publish(make_envelope("c1", f"m{i}"))
    with pytest.raises(BusFull) as caught:
        await bus.publish(make_envelope("c1", "one-too-many"))
    assert caught.value.retry_after > 0


async def test_batches_yield_up_to_the_requested_size(backend: Backend) -> None:
    bus = await backend.open()
    sent = [make_envelope("c1", f"m{i}") for i in range(10)]
    sizes: list[int] = []
    received: list[Envelope] = []
    async with bus.consume("batcher", ["channels.>"]) as consumer:
        for envelope in sent:
            await bus.publish(envelope)
        async with asyncio.timeout(TIMEOUT):
            async for batch in consumer.batches(4, 0.3):
                sizes.append(len(batch))
                received.extend(d.envelope for d in batch)
                for delivery in batch:
                    await delivery.ack()
                if len(received) == len(sent):
                    break
    assert sizes == [4, 4, 2]
    assert received == sent


async def test_close_ends_iterations_and_leaves_no_tasks(backend: Backend) -> None:
    before = asyncio.all_tasks()
    bus = await backend.open()
    assert bus.ready
    ended: list[str] = []

    async def drain(source: AsyncIterator[object], name: str) -> None:
        async for _ in source:
            pass
        ended.append(name)

    async with (
        bus.subscribe(["channels.>"]) as subscription,
        bus.consume("closing", ["channels.>"]) as consumer,
        asyncio.TaskGroup() as group,
    ):
        group.create_task(drain(subscription, "subscription"), name="drain-subscription")
        group.create_task(drain(consumer, "consumer"), name="drain-consumer")
        group.create_task(drain(consumer.batches(10, 0.2), "batches"), name="drain-batches")
        await bus.publish(make_envelope("c1"))
        await bus.close()
    assert sorted(ended) == ["batches", "consumer", "subscription"]
    assert not bus.ready
    with pytest.raises(BusUnavailable):
        await bus.publish(make_envelope("c1"))
    await eventually(lambda: not {t for t in asyncio.all_tasks() - before if not t.done()})


async def test_bus_must_be_open_to_publish(backend: Backend) -> None:
    from shopfloor.messaging import create_bus

    bus = create_bus(backend.url())
    assert not bus.ready
    with pytest.raises(BusUnavailable):
        await bus.publish(make_envelope("c1"))
