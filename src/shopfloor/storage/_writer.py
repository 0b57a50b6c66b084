"""The writer service: bus → SenML normalizer → time-series store, nothing lost.

A batch is acknowledged on the bus only after the store has it. When the store is
down, the batch is handed back (nak with a delay) and the writer backs off; the bus
keeps the messages (JetStream on disk, the memory bus up to its bound, after which
adapters answer 503). Redelivered messages are harmless: stores ignore a
`(message_id, seq)` they already hold.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

from prometheus_client import CollectorRegistry, Counter, Histogram

from shopfloor.core import Backoff
from shopfloor.messaging import Bus, Consumer, Delivery, Envelope, MessagingError
from shopfloor.senml import Record, SenMLError, normalize
from shopfloor.storage._errors import InvalidRecord, StorageError, StorageUnavailable
from shopfloor.storage._message import StoredMessage, stored_messages
from shopfloor.storage._store import TimeseriesStore

logger = logging.getLogger(__name__)

ALL_CHANNELS = ("channels.>",)
#: Subtopics the platform itself writes (error reports); they are not telemetry.
PLATFORM_SUBTOPIC_PREFIX = "_"


@dataclass(frozen=True, slots=True)
class WriterMetrics:
    records: Counter
    messages: Counter
    malformed: Counter
    failures: Counter
    batch_seconds: Histogram

    @classmethod
    def create(cls, registry: CollectorRegistry) -> WriterMetrics:
        return cls(
            records=Counter(
                "shopfloor_writer_records", "Records stored by the writer.", registry=registry
            ),
            messages=Counter(
                "shopfloor_writer_messages", "Messages stored by the writer.", registry=registry
            ),
            malformed=Counter(
                "shopfloor_writer_malformed",
                "Messages the writer could not normalise (acknowledged, not stored).",
                ["code"],
                registry=registry,
            ),
            failures=Counter(
                "shopfloor_writer_store_failures",
                "Batches handed back because the store failed.",
                registry=registry,
            ),
            batch_seconds=Histogram(
                "shopfloor_writer_batch_seconds",
                "Time to normalise and store one batch.",
                registry=registry,
                buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0),
            ),
        )


class Writer:
    def __init__(
        self,
        bus: Bus,
        store: TimeseriesStore,
        metrics: WriterMetrics,
        *,
        durable: str = "writer",
        batch_size: int = 2000,
        max_wait: float = 0.25,
        linger: float = 0.002,
        drain_seconds: float = 30.0,
        max_backoff: float = 10.0,
    ) -> None:
        self.bus = bus
        self.store = store
        self.metrics = metrics
        self.durable = durable
        self.batch_size = batch_size
        self.max_wait = max_wait
        self.linger = linger
        self.drain_seconds = drain_seconds
        self.max_backoff = max_backoff
        self._backoff = Backoff(base=0.1, cap=max_backoff, min_fraction=0.5)
        self.running = False

    async def declare(self) -> None:
        """Make the bus keep messages for the writer from now on, even before it runs."""
        await self.bus.declare(self.durable, ALL_CHANNELS)

    async def run(self, stopping: asyncio.Event) -> None:
        """Store until `stopping` is set, then drain what the bus still holds, and return.

        One batch is being stored while the next is fetched and turned into rows: the
        store works off the event loop (SQLite in its own thread, the network for the
        others), and waiting for it with nothing else to do left a third of a core idle
        whenever the bus was full and its publishers waited.
        """
        failures = 0
        deadline: float | None = None
        storing: asyncio.Task[bool] | None = None
        previous: asyncio.Task[bool] | None = None
        async with self.bus.consume(self.durable, ALL_CHANNELS, batch=self.batch_size) as consumer:
            self.running = True
            try:
                while True:
                    if stopping.is_set() and deadline is None:
                        deadline = time.monotonic() + self.drain_seconds
                    if deadline is not None and time.monotonic() > deadline:
                        logger.warning("writer stopped before draining: the bus keeps the rest")
                        return
                    batch = await self._next_batch(consumer)
                    if not batch and storing is None:
                        if stopping.is_set():
                            return  # drained
                        continue
                    previous = storing
                    storing = asyncio.create_task(self._store(batch)) if batch else None
                    if previous is not None:
                        failures = 0 if await asyncio.shield(previous) else failures + 1
                    if failures:
                        if storing is not None:
                            # Stored or handed back too, before waiting: the wait is long.
                            failures = 0 if await storing else failures + 1
                            storing = None
                        if failures:
                            await self._back_off(failures, stopping)
            finally:
                # Whatever happens to the writer, a batch being stored is settled first.
                for task in (previous, storing):
                    if task is not None:
                        with contextlib.suppress(Exception):
                            await asyncio.shield(task)
                self.running = False

    async def _next_batch(self, consumer: Consumer) -> list[Delivery]:
        """Wait up to `max_wait` for one message, then `linger` for what comes with it.

        Asking for a full batch would hold a lone message until the batch filled or the
        wait ran out (both backends' `fetch` fill up to the count). Taking only what is
        ready at once wrote one transaction per message at a steady 2,000 msg/s, and that
        per-transaction work pushed the one event loop into queueing; a 2 ms linger
        gathers them, and under heavier load the batch fills without waiting.
        """
        first = await consumer.fetch(1, self.max_wait)
        if not first or self.batch_size == 1:
            return first
        return first + await consumer.fetch(self.batch_size - 1, self.linger)

    async def _store(self, batch: Sequence[Delivery]) -> bool:
        started = time.perf_counter()
        rows: list[StoredMessage] = []
        stored: list[Delivery] = []
        skipped: list[Delivery] = []
        for delivery in batch:
            envelope = delivery.envelope
            if envelope.subtopic.startswith(PLATFORM_SUBTOPIC_PREFIX):
                skipped.append(delivery)
                continue
            try:
                records = _records(envelope)
            except SenMLError as exc:
                self._set_aside(delivery, exc.code)
                skipped.append(delivery)
                continue
            rows.extend(stored_messages(envelope, records))
            stored.append(delivery)
        try:
            await self._write(rows, stored, skipped)
        except StorageUnavailable as exc:
            logger.warning("store unavailable, %d messages handed back: %s", len(batch), exc)
            self.metrics.failures.inc()
            await _settle(batch, ack=False, delay=1.0)
            return False
        except StorageError:
            logger.exception("store refused a batch of %d messages; handing it back", len(batch))
            self.metrics.failures.inc()
            await _settle(batch, ack=False, delay=5.0)
            return False
        await _settle([*stored, *skipped], ack=True)
        self.metrics.records.inc(len(rows))
        self.metrics.messages.inc(len(stored))
        self.metrics.batch_seconds.observe(time.perf_counter() - started)
        return True

    async def _write(
        self, rows: list[StoredMessage], stored: list[Delivery], skipped: list[Delivery]
    ) -> None:
        """Write; messages with records no store can hold are set aside, the rest retried."""
        try:
            await self.store.write(rows)
        except InvalidRecord as exc:
            refused = {message_id for message_id, _seq in exc.records}
            for delivery in [d for d in stored if d.envelope.id in refused]:
                self._set_aside(delivery, "invalid_record")
                stored.remove(delivery)
                skipped.append(delivery)
            rows[:] = [row for row in rows if row.message_id not in refused]
            await self.store.write(rows)

    def _set_aside(self, delivery: Delivery, code: str) -> None:
        envelope = delivery.envelope
        self.metrics.malformed.labels(code).inc()
        logger.warning(
            "message %s from %s on channel %s not stored: %s",
            envelope.id, envelope.publisher, envelope.channel, code,
        )  # fmt: skip

    async def _back_off(self, failures: int, stopping: asyncio.Event) -> None:
        delay = self._backoff.delay(failures)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), timeout=delay)


def _records(envelope: Envelope) -> list[Record]:
    """The message's records: as the adapter in this process already parsed them, or
    parsed from the payload (a message that came over the network)."""
    if isinstance(envelope.decoded, list):
        return cast("list[Record]", envelope.decoded)
    return normalize(envelope.payload, envelope.content_type, now=envelope.created / 1e9)


async def _settle(deliveries: Sequence[Delivery], *, ack: bool, delay: float = 0.0) -> None:
    # One after the other rather than gathered: settling is a local operation (memory
    # bus) or a buffered publish (JetStream ack), and a task per message cost about a
    # tenth of the writer's time under load.
    failed = 0
    error: MessagingError | None = None
    for delivery in deliveries:
        try:
            if ack:
                await delivery.ack()
            else:
                await delivery.nak(delay)
        except MessagingError as exc:
            failed += 1
            error = exc
    if error is not None:
        # Unsettled messages are redelivered after the ack wait; stores deduplicate.
        logger.warning("could not settle %d of %d deliveries: %s", failed, len(deliveries), error)
