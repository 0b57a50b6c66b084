"""The NATS JetStream bus: the scale-out backend shared by many processes.

- One stream (default `SHOPFLOOR`) over `[<prefix>.]channels.>`, created or updated on
  open. `publish` returns after the stream's PubAck, and sends `Nats-Msg-Id` so a
  retried publish within the duplicate window is stored once.
- `subscribe` is a core NATS subscription: the server hands every message published
  into the stream to core subscribers as well, with no JetStream cost.
- `consume` attaches to a durable pull consumer with explicit acks (see
  `_nats_consumer.py`); several processes using one durable name share its messages.
- Reconnection is the client's own, paced by `ReconnectPolicy` (capped, jittered
  exponential backoff). While disconnected, `ready` is False and `publish` fails fast
  with `BusUnavailable` instead of queueing messages nobody confirmed.

Latency and concurrency, checked against the client: asyncio enables TCP_NODELAY on
every TCP connection it opens, which is what nats-py uses; and `js.publish` is a
request over one shared reply subscription with a future per request, so concurrent
publishes are written back to back and their PubAcks awaited together.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Collection, Sequence
from typing import TYPE_CHECKING, Self
from urllib.parse import urlsplit

from shopfloor.core import lazy_import

from ._backoff import ReconnectPolicy
from ._bus import DEFAULT_BATCH, Bus
from ._envelope import Envelope
from ._errors import (
    BusFull,
    BusMisconfigured,
    BusUnavailable,
    EnvelopeDecodeError,
    MessageTooLarge,
    MessagingError,
)
from ._events import Event, EventSubscription, decode_event, encode_event, event_wire_subject
from ._nats_config import NatsBusConfig
from ._receivers import Subscription
from ._subjects import (
    check_filters,
    covering_filter,
    envelope_subject,
    reduce_filters,
    validate_name,
    with_prefix,
)
from ._wire import decode_envelope, encode_envelope

if TYPE_CHECKING:
    import nats
    import nats.errors
    import nats.js.api
    import nats.js.errors
    from nats.aio.client import Client
    from nats.aio.msg import Msg
    from nats.aio.subscription import Subscription as NatsCoreSubscription
    from nats.js import JetStreamContext

    from ._nats_consumer import NatsConsumer
else:
    # With aiohttp, 0.25 s of every command's start: imported when a bus first connects.
    nats = lazy_import("nats")

__all__ = ["NatsBus", "translate_nats_error"]

logger = logging.getLogger(__name__)


@functools.cache
def _unavailable() -> tuple[type[BaseException], ...]:
    """Connection-level failures: nothing is wrong with the request, try again later."""
    return (
        nats.errors.TimeoutError,
        nats.errors.NoRespondersError,
        nats.js.errors.NoStreamResponseError,
        nats.js.errors.ServiceUnavailableError,
        nats.errors.ConnectionClosedError,
        nats.errors.ConnectionDrainingError,
        nats.errors.ConnectionReconnectingError,
        nats.errors.OutboundBufferLimitError,
        nats.errors.StaleConnectionError,
        nats.errors.NoServersError,
        asyncio.TimeoutError,
        OSError,
    )


# JetStream "insufficient resources"; limits reached under discard=new say "maximum ...".
_STORE_FULL_ERR_CODES = frozenset({10047})
_MESSAGE_TOO_LARGE_ERR_CODE = 10054
_PING_INTERVAL = 10  # seconds; a dead peer is noticed after about three of them
_SUBSCRIBER_DEDUPE = 1024  # ids remembered per fan-out subscription


def translate_nats_error(exc: BaseException, action: str) -> MessagingError:
    """Our error for a nats-py failure while doing `action`, most specific first."""
    if isinstance(exc, nats.errors.MaxPayloadError):
        return MessageTooLarge(f"{action}: message exceeds the server's max_payload")
    if isinstance(exc, nats.js.errors.APIError):
        description = exc.description or ""
        if exc.err_code == _MESSAGE_TOO_LARGE_ERR_CODE:
            return MessageTooLarge(f"{action}: {description}")
        if "maximum" in description or exc.err_code in _STORE_FULL_ERR_CODES:
            return BusFull(f"{action}: stream refused the message: {description}")
        if not isinstance(exc, _unavailable()):
            return BusMisconfigured(f"{action}: JetStream error {exc.err_code}: {description}")
    if isinstance(exc, _unavailable()):
        return BusUnavailable(f"{action}: NATS unavailable ({type(exc).__name__})")
    return BusUnavailable(f"{action}: unexpected NATS failure ({type(exc).__name__}: {exc})")


def _hosts(servers: Sequence[str]) -> str:
    return ",".join(urlsplit(server).netloc.rpartition("@")[2] for server in servers)


async def _core_subscribe(
    bus: NatsBus,
    wire_filters: Sequence[str],
    callback: Callable[[Msg], Awaitable[None]],
    action: str,
) -> list[NatsCoreSubscription]:
    """Core NATS subscriptions to `wire_filters`, in place once this returns."""
    nc = bus._connection()
    subs: list[NatsCoreSubscription] = []
    try:
        for wire_filter in wire_filters:
            subs.append(await nc.subscribe(wire_filter, cb=callback))
        # Once the server has seen the SUB, a publish from any connection reaches us,
        # in principle. In practice one flush was not always enough: publishes from
        # another connection right after it were lost about once in 50 (plain nats-py
        # against nats-server 2.9 here; nats-io/nats-server#2150 reports the same), and
        # with a second round trip none of 320 were. A heuristic, not a guarantee.
        timeout = max(1, round(bus.config.publish_timeout))
        await nc.flush(timeout=timeout)
        await nc.flush(timeout=timeout)
    except Exception as exc:
        await _core_unsubscribe(subs)
        raise translate_nats_error(exc, action) from exc
    return subs


async def _core_unsubscribe(subs: Sequence[NatsCoreSubscription]) -> None:
    for sub in subs:
        try:
            await sub.unsubscribe()
        except nats.errors.Error as exc:
            # The connection is closed or reconnecting: the server forgets the
            # subscription with the connection, and the client has dropped it.
            logger.debug("unsubscribe skipped: %s", type(exc).__name__)


class NatsSubscription(Subscription):
    """A fan-out subscription: one core NATS subscription per (reduced) filter."""

    def __init__(self, bus: NatsBus, filters: Sequence[str], *, max_queued: int) -> None:
        super().__init__(filters, max_queued=max_queued)
        self._bus = bus
        self._subs: list[NatsCoreSubscription] = []
        # Overlapping filters deliver one message once per filter, and a retried publish
        # reaches core subscribers twice: remembering recent ids removes both.
        self._recent_ids: OrderedDict[str, None] = OrderedDict()

    async def _start(self) -> None:
        prefix = self._bus.config.prefix
        wire = [with_prefix(f, prefix) for f in reduce_filters(self.filters)]
        self._subs = await _core_subscribe(self._bus, wire, self._on_message, "subscribe")
        self._bus._subscriptions.add(self)

    async def _stop(self) -> None:
        self._bus._subscriptions.discard(self)
        subs, self._subs = self._subs, []
        await _core_unsubscribe(subs)

    async def _on_message(self, msg: Msg) -> None:
        try:
            envelope = decode_envelope(
                msg.subject, msg.headers, msg.data, prefix=self._bus.config.prefix
            )
        except EnvelopeDecodeError as exc:
            self._malformed += 1
            logger.debug("ignoring malformed message on %s: %s", msg.subject, exc)
            return
        recent = self._recent_ids
        if envelope.id in recent:
            return
        recent[envelope.id] = None
        if len(recent) > _SUBSCRIBER_DEDUPE:
            recent.popitem(last=False)
        self._offer(envelope)


class NatsEventSubscription(EventSubscription):
    """Platform events: one core NATS subscription per filter under `events.`."""

    def __init__(self, bus: NatsBus, filters: Sequence[str], *, max_queued: int) -> None:
        super().__init__(filters, max_queued=max_queued)
        self._bus = bus
        self._subs: list[NatsCoreSubscription] = []

    async def _start(self) -> None:
        prefix = self._bus.config.prefix
        wire = [event_wire_subject(f, prefix=prefix) for f in self.filters]
        self._subs = await _core_subscribe(self._bus, wire, self._on_message, "subscribe to events")
        self._bus._event_subscriptions.add(self)

    async def _stop(self) -> None:
        self._bus._event_subscriptions.discard(self)
        subs, self._subs = self._subs, []
        await _core_unsubscribe(subs)

    async def _on_message(self, msg: Msg) -> None:
        try:
            event = decode_event(msg.subject, msg.data, prefix=self._bus.config.prefix)
        except EnvelopeDecodeError as exc:
            logger.debug("ignoring malformed event on %s: %s", msg.subject, exc)
            return
        self._offer(event)


class NatsBus(Bus, scheme="nats"):
    """A bus on NATS JetStream; see the module docstring and `NatsBusConfig`."""

    def __init__(self, config: NatsBusConfig | None = None) -> None:
        self.config = config or NatsBusConfig()
        self._nc: Client | None = None
        self._js: JetStreamContext | None = None
        self._closed = False
        self._stream_ready = False
        self._inflight = 0
        self._subscriptions: set[NatsSubscription] = set()
        self._event_subscriptions: set[NatsEventSubscription] = set()
        self._consumers: set[NatsConsumer] = set()
        # Bumped on every reconnect: pull requests sent before it may be lost.
        self.generation = 0

    @classmethod
    def from_url(cls, url: str) -> Self:
        return cls(NatsBusConfig.from_url(url))

    @property
    def ready(self) -> bool:
        return self._stream_ready and self._connected()

    async def open(self) -> None:
        if self._closed:
            raise BusUnavailable("the NATS bus was closed and cannot be reopened")
        if self._nc is not None:
            return
        config = self.config
        try:
            nc = await nats.connect(
                servers=list(config.servers),
                name=config.name,
                connect_timeout=config.connect_timeout,
                # During the first connect nats-py paces attempts by this fixed wait and
                # gives up after max_reconnect_attempts; later on ReconnectPolicy paces.
                reconnect_time_wait=1,
                max_reconnect_attempts=1,
                reconnect_to_server_handler=ReconnectPolicy(),
                ping_interval=_PING_INTERVAL,
                max_outstanding_pings=3,
                error_cb=self._on_error,
                disconnected_cb=self._on_disconnected,
                reconnected_cb=self._on_reconnected,
            )
        except Exception as exc:
            hosts = _hosts(config.servers)
            raise BusUnavailable(f"cannot connect to NATS at {hosts}") from exc
        # Connected once: from now on never give up reconnecting; `ready` tells the story.
        nc.options["max_reconnect_attempts"] = -1
        self._nc = nc
        self._js = nc.jetstream(timeout=config.publish_timeout)
        try:
            await self._ensure_stream()
        except BaseException:
            # Left unopened rather than closed, so a supervisor may call open() again.
            await self._disconnect()
            raise
        self._stream_ready = True

    async def close(self) -> None:
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
        await self._disconnect()

    async def _disconnect(self) -> None:
        self._stream_ready = False
        self._js = None
        nc, self._nc = self._nc, None
        if nc is not None and not nc.is_closed:
            try:
                await nc.close()
            except (nats.errors.Error, OSError) as exc:
                logger.warning("closing the NATS connection failed: %s", type(exc).__name__)

    async def publish(self, envelope: Envelope) -> None:
        subject = envelope_subject(envelope, prefix=self.config.prefix)
        headers, body = encode_envelope(envelope)
        js = self._jetstream()
        if self._inflight >= self.config.max_inflight:
            raise BusFull(f"{self._inflight} publishes await their PubAck (max_inflight)")
        self._inflight += 1
        try:
            await js.publish(
                subject,
                body,
                timeout=self.config.publish_timeout,
                stream=self.config.stream,
                headers=headers,
            )
        except Exception as exc:
            raise translate_nats_error(exc, "publish") from exc
        finally:
            self._inflight -= 1

    def subscribe(
        self, filters: Sequence[str], *, max_queued: int | None = None
    ) -> NatsSubscription:
        return NatsSubscription(self, filters, max_queued=max_queued or self.config.max_queued)

    async def publish_event(self, event: Event) -> None:
        """Core NATS, not JetStream: events are notices for whoever listens now."""
        nc = self._connection()
        if not self._connected():
            raise BusUnavailable("the NATS bus is not connected")
        try:
            await nc.publish(event_wire_subject(event.subject, prefix=self.config.prefix),
                             encode_event(event))  # fmt: skip
        except Exception as exc:
            raise translate_nats_error(exc, "publish an event") from exc

    def subscribe_events(
        self, filters: Sequence[str], *, max_queued: int | None = None
    ) -> NatsEventSubscription:
        return NatsEventSubscription(self, filters, max_queued=max_queued or self.config.max_queued)

    async def declare(
        self, durable: str, filters: Sequence[str], *, skip_protocols: Collection[str] = ()
    ) -> None:
        """Create or update the durable pull consumer `durable` of the stream.

        JetStream 2.9 gives a consumer one filter subject, so several filters are
        folded into the narrowest covering one and consumers drop the rest (acking
        them, since this durable does not want them). It cannot filter on a header
        either: messages of `skip_protocols` are kept, and dropped by the consumers.
        """
        validate_name(durable, what="durable consumer name")
        subject_filter = covering_filter(check_filters(filters))
        config = nats.js.api.ConsumerConfig(
            durable_name=durable,
            ack_policy=nats.js.api.AckPolicy.EXPLICIT,
            # "Declared" means: keeps what is published from now on, like MemoryBus.
            deliver_policy=nats.js.api.DeliverPolicy.NEW,
            filter_subject=with_prefix(subject_filter, self.config.prefix),
            ack_wait=self.config.ack_wait,
            max_ack_pending=self.config.max_ack_pending,
        )
        js = self._jetstream()
        try:
            await js.add_consumer(self.config.stream, config=config)
        except Exception as exc:
            raise translate_nats_error(exc, f"declare consumer {durable!r}") from exc

    def consume(
        self,
        durable: str,
        filters: Sequence[str],
        *,
        batch: int = DEFAULT_BATCH,
        skip_protocols: Collection[str] = (),
    ) -> NatsConsumer:
        from ._nats_consumer import NatsConsumer

        return NatsConsumer(self, durable, filters, batch=batch, skip_protocols=skip_protocols)

    def _connection(self) -> Client:
        if self._nc is None or self._closed:
            raise BusUnavailable("the NATS bus is not open")
        return self._nc

    def _connected(self) -> bool:
        return self._nc is not None and self._nc.is_connected and not self._closed

    def _jetstream(self) -> JetStreamContext:
        if self._js is None or not self._connected():
            raise BusUnavailable("the NATS bus is not connected")
        return self._js

    async def _ensure_stream(self) -> None:
        config = self.config
        stream_config = nats.js.api.StreamConfig(
            name=config.stream,
            subjects=[config.stream_subjects],
            retention=nats.js.api.RetentionPolicy.LIMITS,
            max_age=config.max_age,
            max_bytes=config.max_bytes,
            max_msgs=config.max_msgs,
            discard=nats.js.api.DiscardPolicy(config.discard),
            storage=nats.js.api.StorageType(config.storage),
            num_replicas=config.replicas,
            duplicate_window=config.duplicate_window,
        )
        js = self._jetstream()
        try:
            try:
                await js.stream_info(config.stream)
            except nats.js.errors.NotFoundError:
                await js.add_stream(stream_config)
            else:
                await js.update_stream(stream_config)
        except Exception as exc:
            raise translate_nats_error(exc, f"ensure stream {config.stream!r}") from exc

    async def _on_error(self, exc: Exception) -> None:
        logger.warning("NATS connection error: %s: %s", type(exc).__name__, exc)

    async def _on_disconnected(self) -> None:
        if not self._closed:
            logger.warning("disconnected from NATS; reconnecting")

    async def _on_reconnected(self) -> None:
        self.generation += 1
        logger.info("reconnected to NATS")
        self._reconnected()
        for consumer in self._consumers:
            consumer._wake()
