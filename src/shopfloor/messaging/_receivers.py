"""What receivers hold: fan-out subscriptions, durable consumers and their deliveries.

The base classes own the behaviour every backend shares (bounded queues, drop
counting, settle-once deliveries, iteration and closing); backends fill in how
interest is registered and how messages are fetched.
"""

from __future__ import annotations

import asyncio
import contextlib
from abc import ABC, abstractmethod
from collections.abc import Collection, Sequence
from types import TracebackType
from typing import Generic, Self, TypeVar

from ._envelope import Envelope
from ._subjects import check_filters, validate_name

__all__ = ["Consumer", "Delivery", "Fanout", "Subscription"]

T = TypeVar("T")


class Delivery(ABC):
    """A message handed to a durable consumer, to be settled with `ack` or `nak`.

    The first settlement wins; later calls do nothing. `attempt` is 1 on the first
    delivery and grows with each redelivery, so a handler can spot poison messages.
    """

    def __init__(self, envelope: Envelope, *, attempt: int) -> None:
        self._envelope = envelope
        self._attempt = attempt
        self._settled = False

    @property
    def envelope(self) -> Envelope:
        return self._envelope

    @property
    def attempt(self) -> int:
        return self._attempt

    @property
    def settled(self) -> bool:
        return self._settled

    async def ack(self) -> None:
        """Done with this message: it will not be delivered to this durable again."""
        if not self._settled:
            await self._ack()
            self._settled = True

    async def nak(self, delay: float | None = None) -> None:
        """Not processed: deliver it again, after `delay` seconds if given."""
        if delay is not None and not delay >= 0:
            raise ValueError("nak delay must be >= 0 seconds")
        if not self._settled:
            await self._nak(delay)
            self._settled = True

    async def in_progress(self) -> None:
        """Still working on it: restart the ack wait so it is not redelivered meanwhile."""
        if not self._settled:
            await self._in_progress()

    @abstractmethod
    async def _ack(self) -> None: ...

    @abstractmethod
    async def _nak(self, delay: float | None) -> None: ...

    @abstractmethod
    async def _in_progress(self) -> None: ...


class _Receiver(ABC):
    """Lifecycle shared by subscriptions and consumers: entered once, closed once."""

    _kind = "receiver"

    def __init__(self) -> None:
        self._opened = False
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    async def __aenter__(self) -> Self:
        if self._opened:
            raise RuntimeError(f"a {self._kind} can be entered only once")
        self._opened = True
        await self._start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._closed:
            return
        self._finish()
        await self._stop()

    @abstractmethod
    def _finish(self) -> None:
        """Stop handing out messages (called on close, also by the bus when it closes)."""

    @abstractmethod
    async def _start(self) -> None: ...

    @abstractmethod
    async def _stop(self) -> None: ...


class Fanout(_Receiver, Generic[T]):
    """What every ephemeral subscription shares: `async with` it, then `async for` it.

    Items wait in a bounded queue; when it is full the new item is dropped for this
    subscription only and counted in `dropped`. Iteration ends when the subscription
    or its bus is closed.
    """

    def __init__(self, *, max_queued: int) -> None:
        if max_queued < 1:
            raise ValueError("max_queued must be >= 1")
        self._queue: asyncio.Queue[T | None] = asyncio.Queue(maxsize=max_queued)
        self._dropped = 0
        super().__init__()

    @property
    def dropped(self) -> int:
        """How many items were lost because this subscriber's queue was full."""
        return self._dropped

    def _offer(self, item: T) -> None:
        if self._closed:
            return
        try:
            self._queue.put_nowait(item)
        except asyncio.QueueFull:
            self._dropped += 1

    def _finish(self) -> None:
        """End iteration now (called on close, also by the bus when it closes)."""
        if self._closed:
            return
        self._closed = True
        # A blocked reader implies an empty queue, so the wake-up sentinel always fits then.
        with contextlib.suppress(asyncio.QueueFull):
            self._queue.put_nowait(None)

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> T:
        if not self._opened:
            raise RuntimeError(f"enter the {self._kind} with `async with` before iterating")
        if self._closed:
            raise StopAsyncIteration
        item = await self._queue.get()
        if item is None:
            raise StopAsyncIteration
        return item

    @abstractmethod
    async def _start(self) -> None:
        """Register interest; messages published after this returns must be received."""

    @abstractmethod
    async def _stop(self) -> None:
        """Remove interest and release backend resources."""


class Subscription(Fanout[Envelope]):
    """An ephemeral fan-out subscription to channel messages (see `Fanout`)."""

    _kind = "subscription"

    def __init__(self, filters: Sequence[str], *, max_queued: int) -> None:
        self._filters = check_filters(filters)
        self._malformed = 0
        super().__init__(max_queued=max_queued)

    @property
    def filters(self) -> tuple[str, ...]:
        return self._filters

    @property
    def malformed(self) -> int:
        """How many messages were ignored because they are not envelopes."""
        return self._malformed


class Consumer(_Receiver):
    """A durable work consumer: `async with` it, then `async for` its `Delivery` objects.

    Entering declares the durable consumer (if needed) and attaches to it. Every
    consumer attached under one durable name gets a share of the messages, each
    message going to one of them. `batches(max_messages, max_wait)` yields lists
    for consumers that process in bulk. One task receives from a consumer; for
    parallel work, attach several consumers under the same durable name.
    """

    _kind = "consumer"

    def __init__(
        self,
        durable: str,
        filters: Sequence[str],
        *,
        batch: int,
        skip_protocols: Collection[str] = (),
    ) -> None:
        if batch < 1:
            raise ValueError("batch must be >= 1")
        self._durable = validate_name(durable, what="durable consumer name")
        self._filters = check_filters(filters)
        self._batch = batch
        self._skip_protocols = frozenset(skip_protocols)
        super().__init__()

    @property
    def durable(self) -> str:
        return self._durable

    @property
    def filters(self) -> tuple[str, ...]:
        return self._filters

    @property
    def skip_protocols(self) -> frozenset[str]:
        """Protocols whose messages this consumer never receives (see `Bus.declare`)."""
        return self._skip_protocols

    @property
    def batch(self) -> int:
        """How many messages one-by-one iteration asks the backend for at a time."""
        return self._batch

    def _finish(self) -> None:
        """Stop handing out messages (called on close, also by the bus when it closes)."""
        self._closed = True
        self._wake()

    def _check_open(self) -> None:
        if not self._opened:
            raise RuntimeError("enter the consumer with `async with` before receiving")

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> Delivery:
        self._check_open()
        delivery = await self._next()
        if delivery is None:
            raise StopAsyncIteration
        return delivery

    def batches(self, max_messages: int, max_wait: float) -> _Batches:
        """Iterate over non-empty lists of up to `max_messages` deliveries.

        Each list holds what arrived within `max_wait` seconds, or fewer seconds if
        it filled up sooner; iteration ends when the consumer is closed.
        """
        if max_messages < 1 or not max_wait > 0:
            raise ValueError("max_messages must be >= 1 and max_wait > 0")
        return _Batches(self, max_messages, max_wait)

    @abstractmethod
    async def fetch(self, max_messages: int, max_wait: float) -> list[Delivery]:
        """Up to `max_messages` deliveries, waiting at most `max_wait` s; may be empty."""

    @abstractmethod
    async def _next(self) -> Delivery | None:
        """The next delivery, waiting as long as needed; None once closed."""

    @abstractmethod
    async def _start(self) -> None: ...

    @abstractmethod
    async def _stop(self) -> None: ...

    @abstractmethod
    def _wake(self) -> None:
        """Wake every waiter so that it notices the consumer closed."""


class _Batches:
    """Async iterator behind `Consumer.batches` (a class, so nothing needs finalising)."""

    def __init__(self, consumer: Consumer, max_messages: int, max_wait: float) -> None:
        self._consumer = consumer
        self._max_messages = max_messages
        self._max_wait = max_wait

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> list[Delivery]:
        self._consumer._check_open()
        while not self._consumer.closed:
            batch = await self._consumer.fetch(self._max_messages, self._max_wait)
            if batch:
                return batch
        raise StopAsyncIteration
