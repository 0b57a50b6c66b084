"""The in-process bus: the single-process default and the twin other capabilities test with.

Semantics, and where they differ from JetStream:

- `publish` returns once every declared durable consumer whose filters match holds
  the message. It raises `BusFull` (and delivers nowhere) when one of them already
  keeps `max_pending` unacknowledged messages.
- A durable consumer exists from `declare()` or from the first time a consumer
  enters under its name, until the bus closes; messages published before that are
  not kept for it. Un-acknowledged deliveries are handed out again `ack_wait`
  seconds after delivery; a consumer that leaves returns its unsettled deliveries
  at once.
- An envelope id published again within `dedupe_window` seconds (and among the last
  `max_pending` ids) is accepted and ignored, for subscribers too.
- A durable declared with `skip_protocols` is not given messages of those protocols
  at all, so they neither wait in it nor count towards its `max_pending` (JetStream
  keeps them, and its consumers acknowledge them unseen).
- Everything lives in memory: stopping the process loses what no consumer acked,
  so the embedded server drains consumers before it closes the bus.

URL: `memory://?max_pending=100000&ack_wait=30&dedupe_window=120&max_queued=1024
&max_payload=1048576`.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Collection, Sequence
from typing import Self

from ._bus import DEFAULT_BATCH, Bus
from ._envelope import Envelope
from ._errors import BusFull, BusUnavailable, InvalidBusUrl, MessageTooLarge, TransientBusError
from ._events import Event, EventSubscription
from ._memory_durable import DurableQueue, MemoryConsumer
from ._receivers import Consumer, Subscription
from ._subjects import check_filters, envelope_subject, subject_matches, validate_name
from ._url import BusUrl

__all__ = ["MemoryBus", "MemorySubscription"]

DEFAULT_MAX_PENDING = 100_000
DEFAULT_ACK_WAIT = 30.0
DEFAULT_DEDUPE_WINDOW = 120.0
DEFAULT_MAX_QUEUED = 1024
DEFAULT_MAX_PAYLOAD = 1024 * 1024
#: Subjects whose durables are remembered; past this the memo starts afresh.
MAX_CACHED_SUBJECTS = 10_000


class MemorySubscription(Subscription):
    def __init__(self, bus: MemoryBus, filters: Sequence[str], *, max_queued: int) -> None:
        super().__init__(filters, max_queued=max_queued)
        self._bus = bus

    def accepts(self, subject: str) -> bool:
        return any(subject_matches(f, subject) for f in self.filters)

    async def _start(self) -> None:
        self._bus._add_subscription(self)

    async def _stop(self) -> None:
        self._bus._subscriptions.discard(self)


class MemoryEventSubscription(EventSubscription):
    def __init__(self, bus: MemoryBus, filters: Sequence[str], *, max_queued: int) -> None:
        super().__init__(filters, max_queued=max_queued)
        self._bus = bus

    async def _start(self) -> None:
        self._bus._check_open()
        self._bus._event_subscriptions.add(self)

    async def _stop(self) -> None:
        self._bus._event_subscriptions.discard(self)


class MemoryBus(Bus, scheme="memory"):
    """An in-process, bounded bus; see the module docstring for its exact semantics."""

    def __init__(
        self,
        *,
        max_pending: int = DEFAULT_MAX_PENDING,
        ack_wait: float = DEFAULT_ACK_WAIT,
        dedupe_window: float = DEFAULT_DEDUPE_WINDOW,
        max_queued: int = DEFAULT_MAX_QUEUED,
        max_payload: int = DEFAULT_MAX_PAYLOAD,
    ) -> None:
        if max_pending < 1 or max_queued < 1 or max_payload < 1:
            raise ValueError("max_pending, max_queued and max_payload must be >= 1")
        if not ack_wait > 0 or not dedupe_window >= 0:
            raise ValueError("ack_wait must be > 0 and dedupe_window >= 0")
        self.max_pending = max_pending
        self.ack_wait = ack_wait
        self.dedupe_window = dedupe_window
        self.max_queued = max_queued
        self.max_payload = max_payload
        self._open = False
        self._closed = False
        self._subscriptions: set[MemorySubscription] = set()
        self._event_subscriptions: set[MemoryEventSubscription] = set()
        self._consumers: set[MemoryConsumer] = set()
        self._durables: dict[str, DurableQueue] = {}
        # Which durables keep a subject: devices publish on few subjects over and over,
        # and matching every filter on every publish showed in profiles. Emptied
        # whenever a durable is declared or its filters change.
        self._targets: dict[str, list[DurableQueue]] = {}
        # Ids taken recently, and in taking order when to forget each: an OrderedDict
        # did both, at a quarter of the memory bus's time per message under load.
        self._recent_ids: set[str] = set()
        self._forget_at: deque[tuple[float, str]] = deque()

    @classmethod
    def from_url(cls, url: str) -> Self:
        parsed = BusUrl(url, schemes=("memory",))
        if parsed.parts.netloc or parsed.parts.path not in ("", "/"):
            raise InvalidBusUrl(f"a memory bus URL has no host or path: {parsed.redacted!r}")
        bus = cls(
            max_pending=parsed.integer("max_pending", DEFAULT_MAX_PENDING, minimum=1),
            ack_wait=parsed.number("ack_wait", DEFAULT_ACK_WAIT, minimum=0.001),
            dedupe_window=parsed.number("dedupe_window", DEFAULT_DEDUPE_WINDOW, minimum=0),
            max_queued=parsed.integer("max_queued", DEFAULT_MAX_QUEUED, minimum=1),
            max_payload=parsed.integer("max_payload", DEFAULT_MAX_PAYLOAD, minimum=1),
        )
        parsed.finish()
        return bus

    async def open(self) -> None:
        if self._closed:
            raise BusUnavailable("the memory bus was closed and cannot be reopened")
        self._open = True

    async def close(self) -> None:
        self._open = False
        self._closed = True
        for subscription in self._subscriptions:
            subscription._finish()
        for event_subscription in self._event_subscriptions:
            event_subscription._finish()
        self._event_subscriptions.clear()
        for consumer in self._consumers:
            consumer._finish()
        self._subscriptions.clear()
        self._consumers.clear()
        self._durables.clear()
        self._targets.clear()
        self._recent_ids.clear()
        self._forget_at.clear()

    @property
    def ready(self) -> bool:
        return self._open

    def backlog(self, durable: str) -> int:
        """Unacknowledged messages kept for a declared durable consumer (0 if undeclared)."""
        queue = self._durables.get(durable)
        return queue.backlog if queue is not None else 0

    async def publish(self, envelope: Envelope) -> None:
        self._check_size(envelope)
        # Yield before taking the message, as a network bus would: subscribers get to
        # run between publishes, and a publish cancelled here has taken nothing.
        await asyncio.sleep(0)
        self._take(envelope, asyncio.get_running_loop().time())

    async def publish_many(self, envelopes: Sequence[Envelope]) -> list[Exception | None]:
        """Like `publish` for each, with one yield to the loop for all of them."""
        await asyncio.sleep(0)
        now = asyncio.get_running_loop().time()
        results: list[Exception | None] = []
        for envelope in envelopes:
            try:
                self._check_size(envelope)
                self._take(envelope, now)
            except (TransientBusError, MessageTooLarge) as exc:
                results.append(exc)
            else:
                results.append(None)
        return results

    def _check_size(self, envelope: Envelope) -> None:
        if len(envelope.payload) > self.max_payload:
            raise MessageTooLarge(
                f"payload of {len(envelope.payload)} bytes exceeds max_payload={self.max_payload}"
            )

    def _take(self, envelope: Envelope, now: float) -> None:
        subject = envelope_subject(envelope)
        self._check_open()
        self._forget_old_ids(now)
        if envelope.id in self._recent_ids:
            return  # a retry of a message already held: accepted, not stored twice
        targets = self._targets.get(subject)
        if targets is None:
            if len(self._targets) >= MAX_CACHED_SUBJECTS:
                self._targets.clear()  # bounded; rebuilt on demand
            targets = [queue for queue in self._durables.values() if queue.accepts(subject)]
            self._targets[subject] = targets
        for queue in targets:
            if queue.full and envelope.protocol not in queue.skip_protocols:
                raise BusFull(
                    f"durable consumer {queue.name!r} holds {queue.backlog} unacknowledged "
                    f"messages (max_pending={self.max_pending})"
                )
        self._recent_ids.add(envelope.id)
        self._forget_at.append((now + self.dedupe_window, envelope.id))
        protocol = envelope.protocol
        for queue in targets:
            if protocol not in queue.skip_protocols:
                queue.append(envelope)
        for subscription in self._subscriptions:
            if subscription.accepts(subject):
                subscription._offer(envelope)

    def subscribe(
        self, filters: Sequence[str], *, max_queued: int | None = None
    ) -> MemorySubscription:
        return MemorySubscription(self, filters, max_queued=max_queued or self.max_queued)

    async def publish_event(self, event: Event) -> None:
        await asyncio.sleep(0)  # as a network bus would: the caller does not run on
        self._check_open()
        for subscription in list(self._event_subscriptions):
            if subscription.accepts(event.subject):
                subscription._offer(event)

    def subscribe_events(
        self, filters: Sequence[str], *, max_queued: int | None = None
    ) -> MemoryEventSubscription:
        return MemoryEventSubscription(self, filters, max_queued=max_queued or self.max_queued)

    async def declare(
        self, durable: str, filters: Sequence[str], *, skip_protocols: Collection[str] = ()
    ) -> None:
        self._check_open()
        name = validate_name(durable, what="durable consumer name")
        self._declare(name, check_filters(filters), frozenset(skip_protocols))

    def consume(
        self,
        durable: str,
        filters: Sequence[str],
        *,
        batch: int = DEFAULT_BATCH,
        skip_protocols: Collection[str] = (),
    ) -> Consumer:
        return MemoryConsumer(self, durable, filters, batch=batch, skip_protocols=skip_protocols)

    def _declare(
        self, durable: str, filters: tuple[str, ...], skip_protocols: frozenset[str]
    ) -> DurableQueue:
        self._targets.clear()
        queue = self._durables.get(durable)
        if queue is None:
            queue = DurableQueue(
                durable, filters, max_pending=self.max_pending, ack_wait=self.ack_wait
            )
            self._durables[durable] = queue
        else:
            # Re-declaring with other filters replaces them, as a JetStream update does.
            queue.filters = filters
        queue.skip_protocols = skip_protocols
        return queue

    def _attach(self, consumer: MemoryConsumer) -> DurableQueue:
        self._check_open()
        self._consumers.add(consumer)
        return self._declare(consumer.durable, consumer.filters, consumer.skip_protocols)

    def _detach(self, consumer: MemoryConsumer) -> None:
        self._consumers.discard(consumer)

    def _add_subscription(self, subscription: MemorySubscription) -> None:
        self._check_open()
        self._subscriptions.add(subscription)

    def _check_open(self) -> None:
        if not self._open:
            raise BusUnavailable("the memory bus is not open")

    def _forget_old_ids(self, now: float) -> None:
        recent, forget_at = self._recent_ids, self._forget_at
        while forget_at and (len(forget_at) >= self.max_pending or forget_at[0][0] <= now):
            recent.discard(forget_at.popleft()[1])
