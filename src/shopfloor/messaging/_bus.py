"""The bus interface every backend implements, and the registry that creates one from a URL.

Two ways to receive:

- `subscribe(filters)` is ephemeral fan-out (MQTT and WebSocket clients): every
  subscription gets every matching message published while it is open, nothing is
  kept for it afterwards, and a subscriber that does not keep up loses messages
  (counted in `dropped`) instead of slowing publishers down.
- `consume(durable, filters)` is durable work sharing (writers, alerts, flows): a
  declared durable consumer keeps every matching message until one of the
  consumers attached under that name acknowledges it; un-acknowledged messages are
  delivered again after the ack wait.

Platform events (`_events.py`) travel beside telemetry: `publish_event` hands an
event to whoever subscribed with `subscribe_events` at that moment, in every process
on the bus, and keeps nothing.
"""

from __future__ import annotations

import asyncio
import logging
from abc import abstractmethod
from collections.abc import Callable, Collection, Sequence
from typing import ClassVar, Self

from shopfloor.core import Backends, Opened, Pluggable

from ._envelope import Envelope
from ._errors import InvalidBusUrl
from ._events import Event, EventSubscription
from ._receivers import Consumer, Subscription

__all__ = ["DEFAULT_BATCH", "Bus", "bus_schemes", "create_bus"]

DEFAULT_BATCH = 256

_BACKENDS: Backends[Bus] = Backends("bus", keyword="scheme", error=InvalidBusUrl)
logger = logging.getLogger(__name__)


class Bus(Pluggable, Opened, registry=_BACKENDS):
    """A message bus: publish envelopes, subscribe to them, consume them durably.

    Backends register by class keyword, `class MemoryBus(Bus, scheme="memory")`, and
    are created from a URL with `create_bus`. A bus is an async context manager:
    entering connects, leaving ends its subscriptions and consumers and disconnects.
    """

    scheme: ClassVar[str]

    @classmethod
    @abstractmethod
    def from_url(cls, url: str) -> Self:
        """Create the backend from its URL; raise `InvalidBusUrl` on bad options."""

    @abstractmethod
    async def open(self) -> None:
        """Connect and prepare; raise `BusUnavailable` or `BusMisconfigured`."""

    @abstractmethod
    async def close(self) -> None:
        """End subscriptions and consumers, then disconnect; safe to call twice."""

    @property
    @abstractmethod
    def ready(self) -> bool:
        """Whether a publish would be attempted now (open and connected)."""

    @abstractmethod
    async def publish(self, envelope: Envelope) -> None:
        """Return once the bus holds the message; raise `BusUnavailable` or `BusFull`."""

    async def publish_many(self, envelopes: Sequence[Envelope]) -> list[Exception | None]:
        """Publish several; for each, in order, None once the bus holds it or the error
        `publish` raised for it. This default runs the publishes concurrently (a network
        bus then waits for one round trip, not one per message); they are started in
        order, so the bus sees them in order."""
        outcomes = await asyncio.gather(
            *(self.publish(envelope) for envelope in envelopes), return_exceptions=True
        )
        results: list[Exception | None] = []
        for outcome in outcomes:
            if isinstance(outcome, BaseException) and not isinstance(outcome, Exception):
                raise outcome
            results.append(outcome)
        return results

    @abstractmethod
    def subscribe(self, filters: Sequence[str], *, max_queued: int | None = None) -> Subscription:
        """An ephemeral fan-out subscription to logical filters (see `channel_filters`)."""

    def on_reconnect(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Call `callback` whenever the connection comes back after a loss (platform
        events sent meanwhile may be lost); returns the function that removes it."""
        listeners: list[Callable[[], None]] = self.__dict__.setdefault("_on_reconnect", [])
        listeners.append(callback)

        def remove() -> None:
            if callback in listeners:
                listeners.remove(callback)

        return remove

    def _reconnected(self) -> None:
        """For backends: tell the `on_reconnect` listeners."""
        for callback in list(self.__dict__.get("_on_reconnect", ())):
            try:
                callback()
            except Exception:
                logger.exception("a reconnect listener of the bus failed")

    @abstractmethod
    async def publish_event(self, event: Event) -> None:
        """Send a platform event to every current event subscriber; raise `BusUnavailable`."""

    @abstractmethod
    def subscribe_events(
        self, filters: Sequence[str], *, max_queued: int | None = None
    ) -> EventSubscription:
        """Platform events matching logical event filters (`registry.>`), while open."""

    @abstractmethod
    async def declare(
        self, durable: str, filters: Sequence[str], *, skip_protocols: Collection[str] = ()
    ) -> None:
        """Create or update a durable consumer so that it keeps messages from now on.

        Messages whose envelope `protocol` is in `skip_protocols` are never delivered
        to it: the memory bus does not keep them for it at all, JetStream (which cannot
        filter on a header) keeps them and its consumers acknowledge them unseen.
        """

    @abstractmethod
    def consume(
        self,
        durable: str,
        filters: Sequence[str],
        *,
        batch: int = DEFAULT_BATCH,
        skip_protocols: Collection[str] = (),
    ) -> Consumer:
        """A consumer attached to the durable `durable`, declared on entry (with
        `skip_protocols`, as `declare` takes them).

        One-by-one iteration may fetch up to `batch` messages ahead; each must be
        settled within the ack wait, or it is delivered again.
        """


def bus_schemes() -> tuple[str, ...]:
    """The URL schemes of the registered backends."""
    return _BACKENDS.names()


def create_bus(url: str) -> Bus:
    """The bus backend named by the URL scheme, e.g. `memory://` or `nats://host:4222`."""
    return _BACKENDS.for_url(url).from_url(url)
