"""The bookkeeping of one connector's link: its state, who listens, and one link's life.

Kept apart from the request logic in `_connector.py`: this part has no protocol in it
and is what `on_state`, `states()` and the waits for a link are built on.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from ._errors import ConnectorError, ConnectorUnavailable
from ._types import ConnectorState, Reading

__all__ = ["CLOSED", "LINK_GONE", "Inbox", "Link", "StateBoard"]

logger = logging.getLogger("shopfloor.sdk.connectors")


class Signal(enum.Enum):
    LINK_GONE = 1  # the link a subscription was fed from is gone: feed again once back
    CLOSED = 3  # the connector is closed: the subscription ends


LINK_GONE = Signal.LINK_GONE
CLOSED = Signal.CLOSED
#: What an inbox says after its readings: a signal, or the error that ends it.
Told = Signal | ConnectorError


def _rank(told: Told) -> int:
    return told.value if isinstance(told, Signal) else 2


class Inbox:
    """A subscription's readings, then what ended its feed.

    Bounded: a consumer that does not keep up loses the oldest readings (`dropped`),
    newer values of a machine matter more. Readings come out before the signal that
    followed them; of several signals the weightiest (closed, an error, a lost link)
    wins.
    """

    def __init__(self, maxlen: int) -> None:
        self.readings: deque[Reading] = deque(maxlen=maxlen)
        self.dropped = 0
        self._told: Told | None = None
        self._wake = asyncio.Event()

    def put(self, reading: Reading) -> None:
        if len(self.readings) == self.readings.maxlen:
            self.dropped += 1
        self.readings.append(reading)
        self._wake.set()

    def tell(self, told: Told) -> None:
        if self._told is None or _rank(told) > _rank(self._told):
            self._told = told
        self._wake.set()

    async def next(self) -> Reading | Told:
        while True:
            if self.readings:
                return self.readings.popleft()
            if self._told is not None:
                told, self._told = self._told, None
                return told
            self._wake.clear()
            await self._wake.wait()


@dataclass(eq=False)
class Link:
    """One established connection, from `connected` to its loss."""

    lost: asyncio.Event = field(default_factory=asyncio.Event)
    error: ConnectorError | None = None
    #: Inboxes of the subscriptions fed from this link: told `LINK_GONE` on loss.
    watchers: set[Inbox] = field(default_factory=set)

    @property
    def up(self) -> bool:
        return not self.lost.is_set()

    def break_(self, error: ConnectorError) -> bool:
        """Mark the link gone (the first reason wins); False when it already was."""
        if self.lost.is_set():
            return False
        self.error = error
        self.lost.set()
        for inbox in self.watchers:
            inbox.tell(LINK_GONE)
        return True


class StateBoard:
    """The current state, its listeners, and a wake-up for whoever waits on a change."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.state = ConnectorState.CONNECTING
        self.last_error: ConnectorError | None = None
        self.link: Link | None = None
        self._listeners: list[Callable[[ConnectorState], None]] = []
        self._changed = asyncio.Event()

    def set(self, state: ConnectorState) -> None:
        if state is self.state or self.state is ConnectorState.CLOSED:
            return
        self.state = state
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()
        for callback in list(self._listeners):
            try:
                callback(state)
            except Exception:
                logger.exception("a state listener of connector %s failed", self.name)

    def listen(self, callback: Callable[[ConnectorState], None]) -> Callable[[], None]:
        self._listeners.append(callback)

        def remove() -> None:
            if callback in self._listeners:
                self._listeners.remove(callback)

        return remove

    async def states(self) -> AsyncIterator[ConnectorState]:
        queue: asyncio.Queue[ConnectorState] = asyncio.Queue()
        remove = self.listen(queue.put_nowait)
        try:
            state = self.state
            while True:
                yield state
                if state is ConnectorState.CLOSED:
                    return
                state = await queue.get()
        finally:
            remove()

    async def up(self, timeout: float | None) -> Link:  # noqa: ASYNC109 - reported as unavailable
        """The current link once it is up; `ConnectorUnavailable` when closed or late."""
        try:
            async with asyncio.timeout(timeout):
                while True:
                    if self.state is ConnectorState.CLOSED:
                        raise ConnectorUnavailable(f"connector {self.name} is closed")
                    link = self.link
                    if link is not None and link.up:
                        return link
                    await self._changed.wait()
        except TimeoutError:
            reason = f": {self.last_error}" if self.last_error is not None else ""
            raise ConnectorUnavailable(
                f"connector {self.name} is not connected ({self.state}){reason}"
            ) from self.last_error
