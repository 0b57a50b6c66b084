"""The interface every machine connector implements, and `connect(url)` that picks one.

A connector owns the link to one machine and keeps it: a background loop connects,
checks liveness every `heartbeat` seconds, and on a loss (a failed request, a failed
heartbeat, or the protocol's own signal) reconnects after a capped, jittered backoff.
Requests made while the link is down wait up to `timeout` for it to come back, then
raise `ConnectorUnavailable`; subscriptions wait as long as it takes and resume.

A backend implements the protocol in a few template methods (`_open`, `_close`,
`_read`, `_write`, `_probe`, and where the protocol has them `_call`, `_feed` for
native subscriptions and `_serve` for a loop that runs while connected); everything
about states, waiting, timeouts and reconnecting is here, once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AsyncExitStack
from typing import Any, ClassVar, Generic, Self, TypeVar

from shopfloor.core import Backends, Backoff, Lifecycle, Pluggable

from ._errors import (
    ConnectorError,
    ConnectorTimeout,
    ConnectorUnavailable,
    InvalidAddress,
    InvalidConnectorUrl,
    NotSupported,
)
from ._link import CLOSED, LINK_GONE, Inbox, Link, StateBoard
from ._types import ConnectorOptions, ConnectorState, Quality, Reading

__all__ = ["Connector", "connect", "connector_protocols"]

logger = logging.getLogger("shopfloor.sdk.connectors")

#: Readings a subscription holds for a slow consumer; the oldest are dropped beyond.
MAX_QUEUED = 1000

_BACKENDS: Backends[Connector[Any]] = Backends(
    "connector", keyword="protocol", error=InvalidConnectorUrl
)

AddressT = TypeVar("AddressT")
T = TypeVar("T")
Emit = Callable[[Reading], None]


class Connector(Pluggable, Lifecycle, ABC, Generic[AddressT], registry=_BACKENDS):
    """A link to one machine: read, read_many, subscribe, write, call, heartbeat.

    Backends register by class keyword, `class ModbusConnector(Connector[...],
    protocol="modbus")`, and are made from a URL by `connect`. A connector is an async
    context manager: entering starts the link in the background (it does not wait for
    it), leaving ends subscriptions and disconnects.
    """

    protocol: ClassVar[str]

    def __init__(self, *, name: str, options: ConnectorOptions | None = None) -> None:
        super().__init__()
        self.name = name
        self.options = options or ConnectorOptions()
        self._board = StateBoard(name)
        self._backoff = Backoff(base=self.options.reconnect_delay, cap=self.options.reconnect_max)
        self._inboxes: set[Inbox] = set()
        # Feeds of subscriptions, cancelled at close even if a consumer left its
        # iterator without closing it.
        self._feeders: set[asyncio.Task[None]] = set()

    @classmethod
    @abstractmethod
    def from_url(cls, url: str) -> Self:
        """Create the connector from its URL; raise `InvalidConnectorUrl` on bad options."""

    # -- what an agent sees -------------------------------------------------------------

    @property
    def state(self) -> ConnectorState:
        return self._board.state

    @property
    def connected(self) -> bool:
        link = self._board.link
        return link is not None and link.up

    @property
    def last_error(self) -> ConnectorError | None:
        """Why the last connection attempt failed or the last link broke."""
        return self._board.last_error

    def on_state(self, callback: Callable[[ConnectorState], None]) -> Callable[[], None]:
        """Call `callback(state)` on every change; returns the function that removes it."""
        return self._board.listen(callback)

    def states(self) -> AsyncIterator[ConnectorState]:
        """The current state, then every change, ending after `closed`."""
        return self._board.states()

    async def wait_connected(self) -> None:
        """Return once the link is up (bound it with `asyncio.timeout`); raise
        `ConnectorUnavailable` when the connector is closed."""
        await self._board.up(None)

    async def read(self, address: str) -> Reading:
        """The current value of one address."""
        (reading,) = await self.read_many([address])
        return reading

    async def read_many(self, addresses: Sequence[str]) -> list[Reading]:
        """The current values of several addresses, in the protocol's fewest requests."""
        parsed = [self._parse(address) for address in addresses]
        if not parsed:
            return []
        return await self._request("read", lambda: self._read(parsed))

    def subscribe(
        self, addresses: Sequence[str], *, interval: float = 1.0
    ) -> AsyncIterator[Reading]:
        """Readings whenever a value (or its quality) changes, until the connector closes.

        Native where the protocol has it (OPC UA data changes, MQTT messages), else
        polled every `interval` seconds; after a reconnect the subscription is made again
        and the current values come first. Addresses are checked here, at once. To stop
        before the connector closes, close the iterator (`contextlib.aclosing`).
        """
        parsed = [self._parse(address) for address in addresses]
        if not parsed:
            raise InvalidAddress("subscribe needs at least one address")
        if not interval > 0:
            raise ValueError("a subscription interval is a number of seconds > 0")
        return self._subscription(parsed, interval)

    async def write(self, address: str, value: Any) -> None:
        """Set one address; `WriteRefused` when the machine does not take the value."""
        parsed = self._parse(address)
        await self._request("write", lambda: self._write(parsed, value))

    async def call(self, method: str, *args: Any) -> Any:
        """Run a method on the machine and return its result; `NotSupported` where the
        protocol has none."""
        if type(self)._call is Connector._call:
            await self._call(method, args)  # says what is not supported, link or not
        return await self._request("call", lambda: self._call(method, args))

    async def heartbeat(self) -> None:
        """Check now that the machine answers; a failure counts as a lost link."""
        link = await self._board.up(self.options.timeout)
        try:
            await self._request("heartbeat", self._probe)
        except ConnectorTimeout as exc:
            self._break(link, exc)
            raise

    # -- what a backend implements ------------------------------------------------------

    @abstractmethod
    def _parse(self, address: str) -> AddressT:
        """The protocol's form of an address; `InvalidAddress` when it is none."""

    @abstractmethod
    async def _open(self) -> None:
        """Establish the link (bounded by `timeout`); raise on failure."""

    @abstractmethod
    async def _close(self) -> None:
        """Release the link; called after every `_open`, failed or not."""

    @abstractmethod
    async def _read(self, addresses: Sequence[AddressT]) -> list[Reading]:
        """One reading per address, in order."""

    @abstractmethod
    async def _write(self, address: AddressT, value: Any) -> None: ...

    async def _call(self, method: str, args: tuple[Any, ...]) -> Any:
        raise NotSupported(f"{self.protocol} has no method calls")

    @abstractmethod
    async def _probe(self) -> None:
        """The protocol's liveness check; raise when the machine does not answer."""

    async def _serve(self) -> None:
        """Runs while connected; returning or raising means the link is gone."""
        await asyncio.get_running_loop().create_future()

    async def _feed(self, addresses: Sequence[AddressT], interval: float, emit: Emit) -> None:
        """Emit readings of `addresses` as they change, until cancelled; polls by default.

        Raising `ConnectorUnavailable` ends this link's feed; the subscription starts a
        new one once the connector has reconnected.
        """
        last: dict[int, tuple[Any, Quality]] = {}
        while True:
            try:
                readings = await self._request("poll", lambda: self._read(addresses))
            except ConnectorTimeout:
                logger.info("connector %s: a poll had no answer in time", self.name)
            else:
                for index, reading in enumerate(readings):
                    seen = (reading.value, reading.quality)
                    if last.get(index) != seen:
                        last[index] = seen
                        emit(reading)
            await asyncio.sleep(interval)

    def _translate(self, exc: Exception) -> ConnectorError:
        """A foreign exception as a connector error; backends handle theirs first."""
        if isinstance(exc, ConnectorError):
            return exc
        if isinstance(exc, TimeoutError):
            return ConnectorTimeout(f"connector {self.name}: no answer in time")
        if isinstance(exc, OSError | EOFError | asyncio.IncompleteReadError):
            return ConnectorUnavailable(f"connector {self.name}: {type(exc).__name__}: {exc}")
        return ConnectorError(f"connector {self.name}: {type(exc).__name__}: {exc}")

    def _link_broken(self, exc: BaseException) -> None:
        """For backends: the protocol says the current link is gone."""
        link = self._board.link
        if link is not None:
            error = exc if isinstance(exc, ConnectorError) else None
            self._break(link, error or ConnectorUnavailable(f"connector {self.name}: {exc}"))

    # -- the machinery ------------------------------------------------------------------

    async def _start(self, stack: AsyncExitStack) -> None:
        stack.callback(self._mark_closed)
        await self.spawn(f"connector-{self.protocol}", self._keep_linked, cancel_on_stop=True)

    def _mark_closed(self) -> None:
        self._board.set(ConnectorState.CLOSED)
        for inbox in self._inboxes:
            inbox.tell(CLOSED)
        for feeder in self._feeders:
            feeder.cancel()

    async def _request(self, what: str, operation: Callable[[], Awaitable[T]]) -> T:
        link = await self._board.up(self.options.timeout)
        try:
            async with asyncio.timeout(self.options.timeout):
                return await operation()
        except Exception as exc:
            error = self._translate(exc)
            if isinstance(error, ConnectorTimeout) and isinstance(exc, TimeoutError):
                error = ConnectorTimeout(
                    f"connector {self.name}: no answer to {what} within {self.options.timeout} s"
                )
            if isinstance(error, ConnectorUnavailable) and not isinstance(error, ConnectorTimeout):
                self._break(link, error)
            if error is exc:
                raise
            raise error from exc

    def _break(self, link: Link, error: ConnectorError) -> None:
        if link.break_(error):
            self._board.last_error = error

    async def _keep_linked(self, stopping: asyncio.Event) -> None:
        # Consecutive failures: attempts that failed, and links that broke before
        # `reconnect_max` seconds, so a machine that takes connections and drops them
        # at once is paced like one that refuses them.
        failures = 0
        loop = asyncio.get_running_loop()
        while not stopping.is_set():
            try:
                async with asyncio.timeout(self.options.timeout):
                    await self._open()
            except asyncio.CancelledError:
                await self._close_quietly()
                raise
            except Exception as exc:
                await self._close_quietly()
                error = self._translate(exc)
                self._board.last_error = error
                log = logger.warning if failures == 0 else logger.debug
                log("connector %s cannot connect: %s", self.name, error)
                failures += 1
                await self._pause(stopping, failures)
                continue
            link = Link()
            self._board.link = link
            logger.info("connector %s connected", self.name)
            self._board.set(ConnectorState.CONNECTED)
            since = loop.time()
            try:
                await self._watch(link)
            finally:
                self._board.link = None
                self._break(link, ConnectorUnavailable(f"connector {self.name} is closing"))
                await self._close_quietly()
            logger.warning("connector %s lost: %s", self.name, link.error)
            self._board.set(ConnectorState.LOST)
            failures = 0 if loop.time() - since >= self.options.reconnect_max else failures + 1
            await self._pause(stopping, failures)

    async def _pause(self, stopping: asyncio.Event, failures: int) -> None:
        """The jittered wait before the next attempt (short after a long-lived link)."""
        delay = self._backoff.delay(max(failures - 1, 0))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), timeout=delay)

    async def _watch(self, link: Link) -> None:
        """Return when the link is gone: marked lost, a failed heartbeat, `_serve` ended."""

        async def serve() -> None:
            try:
                await self._serve()
                raise ConnectorUnavailable(f"connector {self.name}: the connection ended")
            except Exception as exc:
                self._break(link, self._translate(exc))

        async def beat() -> None:
            while self.options.heartbeat:
                await asyncio.sleep(self.options.heartbeat)
                try:
                    async with asyncio.timeout(self.options.timeout):
                        await self._probe()
                except Exception as exc:
                    self._break(link, self._translate(exc))
                    return

        async with asyncio.TaskGroup() as tasks:
            helpers = [
                tasks.create_task(serve(), name=f"connector-{self.protocol}-serve"),
                tasks.create_task(beat(), name=f"connector-{self.protocol}-heartbeat"),
            ]
            try:
                await link.lost.wait()
            finally:
                for helper in helpers:
                    helper.cancel()

    async def _close_quietly(self) -> None:
        try:
            await self._close()
        except Exception:
            logger.exception("connector %s failed to close its link", self.name)

    async def _subscription(
        self, addresses: Sequence[AddressT], interval: float
    ) -> AsyncIterator[Reading]:
        inbox = Inbox(MAX_QUEUED)
        self._inboxes.add(inbox)

        async def pump(link: Link) -> None:
            try:
                await self._feed(addresses, interval, inbox.put)
                inbox.tell(LINK_GONE)
            except Exception as exc:
                error = self._translate(exc)
                if not isinstance(error, ConnectorUnavailable):
                    inbox.tell(error)
                    return
                if not isinstance(error, ConnectorTimeout):
                    self._break(link, error)
                inbox.tell(LINK_GONE)

        try:
            while True:
                try:
                    link = await self._board.up(None)
                except ConnectorUnavailable:
                    return  # closed
                link.watchers.add(inbox)
                feeder = asyncio.create_task(pump(link), name=f"connector-{self.protocol}-feed")
                self._feeders.add(feeder)
                feeder.add_done_callback(self._feeders.discard)
                try:
                    while True:
                        item = await inbox.next()
                        if isinstance(item, Reading):
                            yield item
                        elif item is LINK_GONE:
                            break
                        elif isinstance(item, ConnectorError):
                            raise item
                        elif item is CLOSED:
                            return
                finally:
                    link.watchers.discard(inbox)
                    feeder.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await feeder
        finally:
            self._inboxes.discard(inbox)
            if inbox.dropped:
                logger.warning(
                    "connector %s: a subscription dropped %d readings it was not read fast "
                    "enough for", self.name, inbox.dropped,
                )  # fmt: skip


def connector_protocols() -> tuple[str, ...]:
    """The protocol names and URL schemes of the registered connectors."""
    return _BACKENDS.names()


def connect(url: str) -> Connector[Any]:
    """The connector for the URL's scheme: `opc.tcp://`, `modbus+tcp://`, `mqtt://`,
    `http://`, `https://`, `tcp://`. Enter it (`async with`) to start the link."""
    return _BACKENDS.for_url(url).from_url(url)
