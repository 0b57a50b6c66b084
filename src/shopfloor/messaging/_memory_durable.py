"""Durable consumers of the in-process bus: a shared work queue per durable name.

Every un-acknowledged message of a durable sits in `_entries`, either ready (its
sequence number in the `_ready` heap) or out with a consumer until a deadline (in
`_waits` when the deadline is now + ack_wait, which only grows, so a deque in deadline
order suffices; in the `_timers` heap for a nak's own delay). Deadlines are checked
lazily whenever a consumer asks for work, so redelivery needs no background task: a
message whose ack wait ran out is simply ready again for the next consumer that looks.
Heap and deque entries are invalidated rather
than removed; `token` tells a stale timer or a stale delivery from the current one.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections import deque
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ._envelope import Envelope
from ._receivers import Consumer, Delivery
from ._subjects import subject_matches

if TYPE_CHECKING:
    from ._memory import MemoryBus

__all__ = ["DurableQueue", "MemoryConsumer"]


@dataclass(slots=True)
class _Entry:
    seq: int
    envelope: Envelope
    attempts: int = 0
    token: int = 0
    deadline: float | None = None  # None: ready for delivery


class DurableQueue:
    """The state of one durable consumer, shared by every consumer attached to it."""

    def __init__(
        self, name: str, filters: Sequence[str], *, max_pending: int, ack_wait: float
    ) -> None:
        self.name = name
        self.filters = tuple(filters)
        #: Protocols whose messages the bus does not give this durable (`Bus.declare`).
        self.skip_protocols: frozenset[str] = frozenset()
        self.max_pending = max_pending
        self.ack_wait = ack_wait
        self.changed = asyncio.Event()
        self._entries: dict[int, _Entry] = {}
        self._ready: list[int] = []
        self._timers: list[tuple[float, int, int]] = []
        self._waits: deque[tuple[float, int, int]] = deque()
        self._sequence = itertools.count(1)

    @property
    def backlog(self) -> int:
        """Messages kept for this durable and not acknowledged yet."""
        return len(self._entries)

    @property
    def full(self) -> bool:
        return len(self._entries) >= self.max_pending

    def accepts(self, subject: str) -> bool:
        return any(subject_matches(f, subject) for f in self.filters)

    def append(self, envelope: Envelope) -> None:
        seq = next(self._sequence)
        self._entries[seq] = _Entry(seq, envelope)
        heapq.heappush(self._ready, seq)
        self.changed.set()

    def take(self, now: float) -> _Entry | None:
        """The oldest ready message, now out for `ack_wait` seconds; None if none is ready."""
        self._expire(now)
        while self._ready:
            entry = self._entries.get(heapq.heappop(self._ready))
            if entry is None or entry.deadline is not None:
                continue  # acknowledged meanwhile, or a stale heap entry
            entry.attempts += 1
            entry.token += 1
            self._wait(entry, now)
            return entry
        return None

    def next_deadline(self) -> float | None:
        """When the earliest message out with a consumer becomes ready again."""
        while self._timers and not self._is_current(*self._timers[0]):
            heapq.heappop(self._timers)
        while self._waits and not self._is_current(*self._waits[0]):
            self._waits.popleft()
        deadlines = [timers[0][0] for timers in (self._timers, self._waits) if timers]
        return min(deadlines) if deadlines else None

    def ack(self, seq: int) -> None:
        # Any delivery of a message may acknowledge it, even one whose wait ran out.
        self._entries.pop(seq, None)

    def nak(self, seq: int, token: int, delay: float | None, now: float) -> None:
        entry = self._current(seq, token)
        if entry is None:
            return
        if delay:
            self._set_deadline(entry, now + delay)
        else:
            self._make_ready(entry)

    def touch(self, seq: int, token: int, now: float) -> None:
        entry = self._current(seq, token)
        if entry is not None:
            self._wait(entry, now)

    def release(self, seq: int, token: int) -> None:
        """Ready again at once: its consumer left without settling it."""
        entry = self._current(seq, token)
        if entry is not None:
            self._make_ready(entry)

    def _current(self, seq: int, token: int) -> _Entry | None:
        entry = self._entries.get(seq)
        if entry is None or entry.token != token or entry.deadline is None:
            return None
        return entry

    def _make_ready(self, entry: _Entry) -> None:
        entry.deadline = None
        heapq.heappush(self._ready, entry.seq)
        self.changed.set()

    def _set_deadline(self, entry: _Entry, deadline: float) -> None:
        entry.deadline = deadline
        heapq.heappush(self._timers, (deadline, entry.seq, entry.token))

    def _wait(self, entry: _Entry, now: float) -> None:
        """Out with a consumer for `ack_wait` seconds from `now` (the loop's clock)."""
        entry.deadline = deadline = now + self.ack_wait
        self._waits.append((deadline, entry.seq, entry.token))

    def _is_current(self, deadline: float, seq: int, token: int) -> bool:
        entry = self._entries.get(seq)
        return entry is not None and entry.token == token and entry.deadline == deadline

    def _expire(self, now: float) -> None:
        while self._timers and self._timers[0][0] <= now:
            deadline, seq, token = heapq.heappop(self._timers)
            if self._is_current(deadline, seq, token):
                self._make_ready(self._entries[seq])
        while self._waits and self._waits[0][0] <= now:
            deadline, seq, token = self._waits.popleft()
            if self._is_current(deadline, seq, token):
                self._make_ready(self._entries[seq])


class MemoryDelivery(Delivery):
    def __init__(self, consumer: MemoryConsumer, queue: DurableQueue, entry: _Entry) -> None:
        super().__init__(entry.envelope, attempt=entry.attempts)
        self._consumer = consumer
        self._queue = queue
        self._seq = entry.seq
        self._token = entry.token

    async def _ack(self) -> None:
        self._queue.ack(self._seq)
        self._consumer._outstanding.pop(self._seq, None)

    async def _nak(self, delay: float | None) -> None:
        self._queue.nak(self._seq, self._token, delay, asyncio.get_running_loop().time())
        self._consumer._outstanding.pop(self._seq, None)

    async def _in_progress(self) -> None:
        self._queue.touch(self._seq, self._token, asyncio.get_running_loop().time())


class MemoryConsumer(Consumer):
    """A consumer attached to a `DurableQueue` of a `MemoryBus`.

    Leaving the consumer makes its unsettled deliveries ready again at once (a crashed
    consumer's deliveries come back after the ack wait instead, as on JetStream).
    """

    def __init__(
        self,
        bus: MemoryBus,
        durable: str,
        filters: Sequence[str],
        *,
        batch: int,
        skip_protocols: Collection[str] = (),
    ) -> None:
        super().__init__(durable, filters, batch=batch, skip_protocols=skip_protocols)
        self._bus = bus
        self._queue: DurableQueue | None = None
        self._outstanding: dict[int, int] = {}  # seq -> token of unsettled deliveries

    async def _start(self) -> None:
        self._queue = self._bus._attach(self)

    async def _stop(self) -> None:
        self._bus._detach(self)
        if self._queue is not None:
            for seq, token in self._outstanding.items():
                self._queue.release(seq, token)
        self._outstanding.clear()

    def _wake(self) -> None:
        if self._queue is not None:
            self._queue.changed.set()

    async def _next(self) -> Delivery | None:
        return await self._take(deadline=None)

    async def fetch(self, max_messages: int, max_wait: float) -> list[Delivery]:
        self._check_open()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max_wait
        deliveries: list[Delivery] = []
        queue = self._queue
        while len(deliveries) < max_messages:
            if queue is not None and not self.closed:
                # What is ready now is taken in one go: a coroutine, a clock read and an
                # event per message showed in the writer's profile under load.
                now = loop.time()
                while len(deliveries) < max_messages and (entry := queue.take(now)):
                    self._outstanding[entry.seq] = entry.token
                    deliveries.append(MemoryDelivery(self, queue, entry))
                if len(deliveries) >= max_messages:
                    break
            delivery = await self._take(deadline=deadline)
            if delivery is None:
                break
            deliveries.append(delivery)
        return deliveries

    async def _take(self, *, deadline: float | None) -> Delivery | None:
        loop = asyncio.get_running_loop()
        queue = self._queue
        while queue is not None and not self.closed:
            # Clear before looking: a message appended after the look sets the event
            # again, so the wait below cannot miss it.
            queue.changed.clear()
            now = loop.time()
            entry = queue.take(now)
            if entry is not None:
                self._outstanding[entry.seq] = entry.token
                return MemoryDelivery(self, queue, entry)
            if deadline is not None and now >= deadline:
                return None
            wake_at = queue.next_deadline()
            candidates = [t for t in (deadline, wake_at) if t is not None]
            try:
                async with asyncio.timeout_at(min(candidates) if candidates else None):
                    await queue.changed.wait()
            except TimeoutError:
                pass
        return None
