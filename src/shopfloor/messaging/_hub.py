"""The event hub of a process: one place to emit platform events and to listen to them.

    hub.emit("registry.thing_key_rotated", {"thing_ids": [...], ...})
    listening = hub.listen("registry.>", on_change)     # on_change(event), must not block
    listening.remove()

`emit` calls the listeners of this process at once, before it returns (a cache here
is right the moment the change is committed), then sends the event on the bus in the
background, in order, so every other process on the bus hears it within
milliseconds; events from the bus that this process emitted itself are ignored. A
bus that refuses is retried with backoff while at most `max_backlog` events wait;
beyond that, events are dropped and counted (events are notices, never records).

When the bus connection comes back after a loss, events of other processes may have
been missed: the hub then tells its own listeners `bus.reconnected` (never sent on the
bus), and whoever keeps state from events starts afresh (the credential cache empties,
Mosquitto mode reconciles the broker).
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections import deque
from collections.abc import Callable, Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

from shopfloor.core import Backoff, Lifecycle

from ._bus import Bus
from ._errors import MessagingError
from ._events import Event, EventSubscription, event_filter, event_matches

__all__ = ["RECONNECTED", "EventHub", "Listening"]

#: Told to this process's listeners when the bus connection came back (events may be lost).
RECONNECTED = "bus.reconnected"

logger = logging.getLogger(__name__)

Listener = Callable[[Event], None]


@dataclass(eq=False)
class Listening:
    """A listener attached to the hub; `remove()` detaches it (also as a context manager)."""

    hub: EventHub
    subject_filter: str
    listener: Listener

    def remove(self) -> None:
        self.hub._listening.pop(self, None)

    def __enter__(self) -> Listening:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.remove()


class EventHub(Lifecycle):
    def __init__(self, bus: Bus, *, origin: str | None = None, max_backlog: int = 10_000) -> None:
        super().__init__()
        self.bus = bus
        self.origin = origin or f"{os.getpid()}-{os.urandom(4).hex()}"
        self.max_backlog = max_backlog
        self.dropped = 0
        # Insertion-ordered: listeners are called in the order they were attached.
        self._listening: dict[Listening, None] = {}
        self._outbox: deque[Event] = deque()
        self._wake = asyncio.Event()
        self._first: EventSubscription | None = None

    async def _start(self, stack: AsyncExitStack) -> None:
        # Subscribed before start returns: an event another process emits once this
        # process reports ready is heard.
        self._first = await self._subscribe()
        stack.callback(self.bus.on_reconnect(self._bus_reconnected))
        await self.spawn("events-out", self._send, cancel_on_stop=True)
        await self.spawn("events-in", self._receive, cancel_on_stop=True)

    def listen(self, subject_filter: str, listener: Listener) -> Listening:
        listening = Listening(self, event_filter(subject_filter), listener)
        self._listening[listening] = None
        return listening

    def emit(self, subject: str, data: Mapping[str, Any]) -> Event:
        """Tell this process now and every other one soon; returns the event."""
        event = Event(subject=subject, data=data, origin=self.origin)
        self._dispatch(event)
        if len(self._outbox) >= self.max_backlog:
            self.dropped += 1
            logger.warning(
                "event %s not sent: %d events wait for the bus", subject, self.max_backlog
            )
        else:
            self._outbox.append(event)
            self._wake.set()
        return event

    def _bus_reconnected(self) -> None:
        self._dispatch(Event(subject=RECONNECTED, data={}, origin=self.origin))

    def _dispatch(self, event: Event) -> None:
        for listening in list(self._listening):
            if event_matches(listening.subject_filter, event.subject):
                try:
                    listening.listener(event)
                except Exception:  # a faulty listener must not stop the others
                    logger.exception("event listener failed on %s", event.subject)

    async def _send(self, stopping: asyncio.Event) -> None:
        backoff = Backoff(base=0.05, cap=2.0)
        failures = 0
        while True:
            while not self._outbox:
                self._wake.clear()
                await self._wake.wait()
            try:
                await self.bus.publish_event(self._outbox[0])
            except MessagingError as exc:
                failures += 1
                if failures == 1:
                    logger.warning("events wait for the bus: %s", exc)
                await asyncio.sleep(backoff.delay(failures))
                continue
            failures = 0
            self._outbox.popleft()

    async def _subscribe(self) -> EventSubscription:
        subscription = self.bus.subscribe_events([">"])
        await subscription.__aenter__()
        return subscription

    async def _receive(self, stopping: asyncio.Event) -> None:
        subscription, self._first = self._first or await self._subscribe(), None
        try:
            async for event in subscription:
                if event.origin != self.origin:
                    self._dispatch(event)
        finally:
            await subscription.aclose()
        if not stopping.is_set():
            raise MessagingError("the event subscription ended; subscribing again")
