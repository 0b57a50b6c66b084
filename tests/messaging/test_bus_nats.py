"""What only the JetStream bus can show: several processes, crashes, reconnects, the stream."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import nats
import pytest

from shopfloor.messaging import (
    BusFull,
    BusMisconfigured,
    BusUnavailable,
    Consumer,
    Delivery,
    Envelope,
    create_bus,
)

from .bus_testkit import (
    NATS_SERVER,
    Backend,
    TcpProxy,
    admin_connection,
    eventually,
    make_envelope,
)

TIMEOUT = 10.0


@pytest.fixture
async def jetstream() -> AsyncIterator[nats.js.JetStreamContext]:
    """A plain client, to look at the server's state the way an operator would."""
    nc = await admin_connection()
    try:
        yield nc.jetstream()
    finally:
        await nc.close()


async def take(consumer: Consumer, count: int) -> list[Delivery]:
    """Exactly `count` deliveries, not settled."""
    taken: list[Delivery] = []
    async with asyncio.timeout(TIMEOUT):
        while len(taken) < count:
            taken.extend(await consumer.fetch(count - len(taken), 1.0))
    return taken


async def take_all(consumer: Consumer, envelopes: list[Envelope]) -> list[Delivery]:
    """Deliveries until every envelope came at least once, each acknowledged on arrival.

    Delivery is at least once: with a short ack_wait, JetStream may deliver a message
    twice (2.9 also miscounts attempts when a redelivery races a pull's expiry).
    """
    wanted = {e.id for e in envelopes}
    taken: list[Delivery] = []
    async with asyncio.timeout(TIMEOUT):
        while not wanted <= {d.envelope.id for d in taken}:
            batch = await consumer.fetch(len(envelopes), 1.0)
            await asyncio.gather(*(d.ack() for d in batch))
            taken.extend(batch)
    return taken


async def test_messages_of_a_crashed_process_go_to_the_next_consumer(
    nats_backend: Backend,
) -> None:
    crashing = await nats_backend.open(ack_wait=1)
    survivor = await nats_backend.open(ack_wait=1)
    sent = [make_envelope("c1", f"m{i}") for i in range(5)]
    doomed = crashing.consume("writer", ["channels.>"])
    await doomed.__aenter__()
    for envelope in sent:
        await survivor.publish(envelope)
    received = await take(doomed, len(sent))
    # The process dies: its connection is gone, nothing is handed back.
    await crashing.close()
    async with survivor.consume("writer", ["channels.>"]) as consumer:
        again = await take_all(consumer, sent)
    assert [d.envelope for d in received] == sent
    assert {d.envelope.id for d in again} == {e.id for e in sent}
    assert max(d.attempt for d in again) >= 2


async def test_cancelled_consumer_hands_its_messages_back_at_once(
    nats_backend: Backend,
) -> None:
    first_process = await nats_backend.open(ack_wait=30)
    second_process = await nats_backend.open(ack_wait=30)
    sent = [make_envelope("c1", f"m{i}") for i in range(3)]
    got: list[Envelope] = []
    got_all = asyncio.Event()

    async def work_without_acking() -> None:
        async with first_process.consume("writer", ["channels.>"]) as consumer:
            async for delivery in consumer:
                got.append(delivery.envelope)
                if len(got) == len(sent):
                    got_all.set()

    await first_process.declare("writer", ["channels.>"])
    for envelope in sent:
        await first_process.publish(envelope)
    async with asyncio.TaskGroup() as group:
        worker = group.create_task(work_without_acking(), name="worker")
        async with asyncio.timeout(TIMEOUT):
            await got_all.wait()
        worker.cancel()
    async with second_process.consume("writer", ["channels.>"]) as consumer:
        # Well within ack_wait=30: only a hand-back makes them available this soon.
        again = await take(consumer, len(sent))
    assert got == sent
    assert sorted(d.envelope.id for d in again) == sorted(e.id for e in sent)
    assert {d.attempt for d in again} == {2}


async def test_processes_sharing_a_durable_split_the_work(nats_backend: Backend) -> None:
    one, two = await nats_backend.open(), await nats_backend.open()
    sent = [make_envelope("c1", f"m{i}") for i in range(12)]
    async with (
        one.consume("shared", ["channels.>"]) as first,
        two.consume("shared", ["channels.>"]) as second,
        one.subscribe(["channels.>"]) as subscription,
    ):
        for envelope in sent:
            await two.publish(envelope)  # a subscriber on another connection sees them
        assert [await anext(subscription) for _ in sent] == sent
        by_first = await take(first, 4)
        by_second = await take(second, 8)
        assert {d.envelope.id for d in by_first}.isdisjoint(d.envelope.id for d in by_second)
        assert sorted(d.envelope.id for d in [*by_first, *by_second]) == sorted(e.id for e in sent)


async def test_tricky_metadata_survives_the_wire(nats_backend: Backend) -> None:
    bus = await nats_backend.open()
    values = ["a:b", "  padded  ", "line\r\nbreak", "100% ünïcode ✓", "tab\there", "%41"]
    sent = [
        Envelope(
            channel="c1",
            subtopic="",
            publisher=value,
            protocol=value,
            payload=value.encode(),
            content_type=value,
        )
        for value in values
    ]
    async with bus.subscribe(["channels.c1"]) as subscription:
        for envelope in sent:
            await bus.publish(envelope)
        assert [await anext(subscription) for _ in sent] == sent


async def test_stream_is_created_then_updated(
    nats_backend: Backend, jetstream: nats.js.JetStreamContext
) -> None:
    await nats_backend.open(max_age=60, duplicate_window=30)
    created = await jetstream.stream_info(nats_backend.stream)
    await nats_backend.open(max_age=120, max_bytes=1_000_000, duplicate_window=30)
    updated = await jetstream.stream_info(nats_backend.stream)
    assert created.config.subjects == [f"{nats_backend.prefix}.channels.>"]
    assert (created.config.max_age, updated.config.max_age) == (60, 120)
    assert updated.config.max_bytes == 1_000_000


async def test_a_stream_that_cannot_be_updated_is_a_misconfiguration(
    nats_backend: Backend,
) -> None:
    await nats_backend.open(storage="file")
    with pytest.raises(BusMisconfigured):
        await nats_backend.open(storage="memory")


async def test_unreachable_server_makes_open_fail_as_unavailable() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    bus = create_bus(f"nats://127.0.0.1:{port}?connect_timeout=1")
    with pytest.raises(BusUnavailable):
        await bus.open()
    assert not bus.ready
    await bus.close()


async def test_prefixes_keep_deployments_apart(nats_backend: Backend) -> None:
    other = Backend(kind="nats")
    try:
        ours, theirs = await nats_backend.open(), await other.open()
        async with (
            ours.subscribe(["channels.>"]) as ours_sees,
            theirs.subscribe(["channels.>"]) as theirs_sees,
        ):
            foreign = make_envelope("c1", "theirs")
            await theirs.publish(foreign)
            assert await anext(theirs_sees) == foreign
            marker = make_envelope("c1", "ours")
            await ours.publish(marker)
            assert await anext(ours_sees) == marker
    finally:
        await other.cleanup()


async def test_malformed_messages_are_skipped_and_not_redelivered(
    nats_backend: Backend, jetstream: nats.js.JetStreamContext
) -> None:
    bus = await nats_backend.open(ack_wait=1)
    valid = make_envelope("c1")
    async with (
        bus.subscribe(["channels.c1"]) as subscription,
        bus.consume("writer", ["channels.c1"]) as consumer,
    ):
        await jetstream.publish(f"{nats_backend.prefix}.channels.c1", b"raw, no headers")
        await bus.publish(valid)
        assert await anext(subscription) == valid
        delivery = await take(consumer, 1)
        await delivery[0].ack()
        assert delivery[0].envelope == valid
        assert subscription.malformed == 1
        # Longer than ack_wait: a malformed message left pending would be back by now.
        assert await consumer.fetch(10, 1.5) == []
    info = await jetstream.consumer_info(nats_backend.stream, "writer")
    assert info.num_ack_pending == 0


async def test_publishes_beyond_max_inflight_are_refused(nats_backend: Backend) -> None:
    bus = await nats_backend.open(max_inflight=1)
    results = await asyncio.gather(
        bus.publish(make_envelope("c1", "a")),
        bus.publish(make_envelope("c1", "b")),
        return_exceptions=True,
    )
    assert results[0] is None
    assert isinstance(results[1], BusFull)


async def test_many_concurrent_publishes_all_arrive(nats_backend: Backend) -> None:
    bus = await nats_backend.open()
    sent = [make_envelope("c1", f"m{i}") for i in range(2000)]
    await bus.declare("writer", ["channels.>"])
    async with asyncio.timeout(TIMEOUT):
        await asyncio.gather(*(bus.publish(envelope) for envelope in sent))
    received: set[str] = set()
    async with bus.consume("writer", ["channels.>"]) as consumer:
        async with asyncio.timeout(TIMEOUT):
            async for batch in consumer.batches(500, 0.5):
                received.update(d.envelope.id for d in batch)
                await asyncio.gather(*(d.ack() for d in batch))
                if len(received) == len(sent):
                    break
    assert received == {e.id for e in sent}


async def test_bus_reconnects_after_losing_the_server(nats_backend: Backend) -> None:
    async with TcpProxy() as proxy:
        bus = create_bus(nats_backend.url().replace(NATS_SERVER, proxy.address))
        nats_backend.buses.append(bus)
        await bus.open()
        before, after = make_envelope("c1", "before"), make_envelope("c1", "after")
        async with (
            bus.subscribe(["channels.>"]) as subscription,
            bus.consume("writer", ["channels.>"]) as consumer,
        ):
            await bus.publish(before)
            assert await anext(subscription) == before
            await (await take(consumer, 1))[0].ack()

            await proxy.cut()
            await eventually(lambda: not bus.ready)
            async with asyncio.timeout(1.0):  # fails fast, no waiting for a PubAck
                with pytest.raises(BusUnavailable):
                    await bus.publish(after)

            await proxy.restore()
            await eventually(lambda: bus.ready, within=TIMEOUT)
            await bus.publish(after)
            async with asyncio.timeout(TIMEOUT):
                assert await anext(subscription) == after
                assert [d.envelope for d in await take(consumer, 1)] == [after]
