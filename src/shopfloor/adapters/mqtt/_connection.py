"""One authenticated MQTT client: its messages to the bus, and the bus's messages to it.

Two loops per connection run in the broker's task group:

- ingest: PUBLISHes, in the order they arrived, go through
  `Ingress.publish(..., protocol="mqtt")`. A future per QoS 1 message tells the
  protocol handler when it may send the PUBACK: once the bus holds the message, or
  once the message is refused for good (malformed or not allowed: sending it again
  cannot help, so it is acknowledged, counted and reported). While the bus is full or
  unavailable the message is retried with capped, jittered backoff and its PUBACK
  withheld, so the client's in-flight window fills and the device itself slows down.
  Once the client is gone, what it left behind gets one attempt each.
- deliver: bus messages and error reports to this client; QoS 0 in line, QoS 1 with
  up to `max_inflight_out` messages awaiting their PUBACK. Every delivery re-checks
  the thing's key and subscribe permission (cached by `ThingAccess`), so removing a
  connection in the registry stops the flow without waiting for a reconnect.

A connection that logged in with a client certificate has no key: it is checked by its
certificate's serial (not revoked) and its thing (still in the registry) instead; the
broker hangs it up the moment the gate hears of the revocation (`Gateway.revoked`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from dataclasses import dataclass
from typing import Protocol

from shopfloor.auth import AuthenticatedThing
from shopfloor.core import Backoff
from shopfloor.ingress import IngressError, sniff_content_type
from shopfloor.messaging import new_message_id
from shopfloor.registry import Permission

from ._gateway import Gateway
from ._topics import TopicError, parse_publish_topic

__all__ = ["Connection", "Inbound", "Peer"]

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class Inbound:
    """A PUBLISH from the client (or its will), waiting for the bus."""

    topic: str
    payload: bytes
    qos: int
    #: Resolved True when the message may be acknowledged, False when it must not be.
    stored: asyncio.Future[bool] | None = None


@dataclass(frozen=True, slots=True)
class _Outbound:
    topic: str
    payload: bytes
    qos: int
    #: The channel whose subscribe permission the delivery needs; None for reports.
    channel: str | None


class Peer(Protocol):
    """The network side of a connection (the amqtt protocol handler)."""

    async def deliver(self, topic: str, payload: bytes, qos: int) -> None:
        """Send a PUBLISH; for QoS 1 return once the client acknowledged it."""

    async def hang_up(self) -> None:
        """Close the network connection."""


class Connection:
    def __init__(
        self,
        gateway: Gateway,
        peer: Peer,
        *,
        client_id: str,
        thing: AuthenticatedThing,
        key: str | None,
        serial: int | None = None,
        will: Inbound | None = None,
    ) -> None:
        """`key` for a key login; `serial` (and no key) for a certificate login."""
        if (key is None) == (serial is None):
            raise ValueError("a connection has a key or a certificate serial, not both")
        self.client_id = client_id
        self.thing = thing
        #: The serial of the client certificate it logged in with (None: a key login).
        self.serial = serial
        self._gateway = gateway
        self._peer = peer
        self._key = key
        self._will = will
        self._inbox: asyncio.Queue[Inbound | None] = asyncio.Queue()
        self._outbox: asyncio.Queue[_Outbound | None] = asyncio.Queue(
            gateway.limits.max_outbound_queued
        )
        self._closed = asyncio.Event()
        self._revoked = False
        self._held_back = False
        # The ceiling is capped per call (`_pause`): never less than half of it.
        self._backoff = Backoff(base=gateway.limits.retry_base, cap=3600.0, min_fraction=0.5)

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    def receive(self, topic: str, payload: bytes, qos: int) -> asyncio.Future[bool] | None:
        """Queue a PUBLISH for the bus; for QoS > 0 the future says whether to acknowledge."""
        if self._closed.is_set():
            return None
        if qos == 0 and self._inbox.qsize() >= self._gateway.limits.max_inbound_queued:
            self._reject("overloaded", "too many messages wait for the bus", topic, _channel(topic))
            return None
        stored = asyncio.get_running_loop().create_future() if qos > 0 else None
        self._inbox.put_nowait(Inbound(topic, payload, qos, stored))
        return stored

    def offer(self, channel: str, topic: str, payload: bytes, qos: int) -> None:
        """Queue a bus message for this subscriber; dropped (and counted) if it is behind."""
        if not self._closed.is_set():
            self._enqueue(_Outbound(topic, payload, qos, channel))

    def offer_report(self, topic: str, payload: bytes, qos: int) -> None:
        """Queue an error report of this connection's thing (see `Gateway.report`)."""
        if not self._closed.is_set():
            self._enqueue(_Outbound(topic, payload, qos, None))

    def close(self, *, publish_will: bool) -> None:
        """The client is gone: finish what it sent, drop what waited to be sent to it."""
        if self._closed.is_set():
            return
        self._closed.set()
        self._gateway.forget(self)
        if publish_will and self._will is not None and not self._revoked:
            self._inbox.put_nowait(self._will)
        self._inbox.put_nowait(None)
        while not self._outbox.empty():
            self._outbox.get_nowait()
        self._outbox.put_nowait(None)

    async def hang_up(self) -> None:
        """Close the network connection (the client left, as far as the rest can tell)."""
        await self._peer.hang_up()

    def mark_revoked(self) -> None:
        """Its credential is gone: no will is published when it drops."""
        self._revoked = True

    async def run(self) -> None:
        metrics = self._gateway.metrics
        metrics.connections.inc()
        try:
            async with asyncio.TaskGroup() as loops:
                loops.create_task(self._ingest_loop(), name=f"mqtt-ingest-{self.client_id}")
                loops.create_task(self._deliver_loop(), name=f"mqtt-deliver-{self.client_id}")
        except Exception:
            # A bug here must cost one connection, not the broker's task group.
            logger.exception("MQTT connection %s failed; disconnecting it", self.client_id)
            self.close(publish_will=False)
            with contextlib.suppress(Exception):
                await self._peer.hang_up()
        finally:
            metrics.connections.dec()

    # -- client → bus ----------------------------------------------------------------

    async def _ingest_loop(self) -> None:
        while (message := await self._inbox.get()) is not None:
            acknowledge = False
            try:
                acknowledge = await self._ingest(message)
            finally:
                if message.stored is not None and not message.stored.done():
                    message.stored.set_result(acknowledge)

    async def _ingest(self, message: Inbound) -> bool:
        """Put one message on the bus; True when it may be acknowledged."""
        try:
            target = parse_publish_topic(message.topic)
        except TopicError as exc:
            self._reject(exc.code, exc.message, message.topic, exc.channel)
            return True
        content_type = sniff_content_type(message.payload)
        message_id = new_message_id()  # one id for every retry: the bus deduplicates
        attempt = 0
        while True:
            cap = self._gateway.limits.retry_cap
            try:
                thing = await self._verified()
                if thing is None:
                    reason = "the thing key is no longer valid"
                    self._reject("invalid_credentials", reason, message.topic, None)
                    return False
                await self._gateway.ingress.publish(
                    thing,
                    target.channel,
                    target.subtopic,
                    message.payload,
                    content_type,
                    protocol="mqtt",
                    message_id=message_id,
                )
            except IngressError as exc:
                if not exc.transient:
                    self._reject(exc.code, exc.message, message.topic, target.channel)
                    return True
                if exc.retry_after:
                    cap = min(cap, exc.retry_after)
            except Exception:
                # E.g. the registry database is unreachable on a cache miss: as transient
                # as a full bus, and acknowledging would lose the message.
                if attempt == 0:
                    logger.warning("publishing for %s failed", self.client_id, exc_info=True)
            else:
                if self._held_back:
                    self._held_back = False
                    logger.info("the bus accepts messages of client %s again", self.client_id)
                return True
            if self._closed.is_set() or self._gateway.stopping:
                self._reject("unavailable", "the bus refused the message", message.topic, None)
                return False
            if not self._held_back:
                self._held_back = True
                logger.warning(
                    "the bus refuses messages of client %s; withholding acknowledgements",
                    self.client_id,
                )
            self._gateway.metrics.retries.inc()
            await self._pause(attempt, cap)
            attempt += 1

    async def _pause(self, attempt: int, cap: float) -> None:
        delay = self._backoff.delay(attempt, cap=cap)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._closed.wait(), delay)

    def _reject(self, code: str, message: str, topic: str, channel: str | None) -> None:
        """Count a message that will not reach the bus and tell its thing why."""
        self._gateway.metrics.rejected.labels(code).inc()
        logger.debug("client %s: message on %r refused: %s", self.client_id, topic, code)
        if channel is None:
            return
        body = json.dumps({"code": code, "message": message, "topic": topic}).encode()
        self._gateway.report(self.thing.id, channel, body)

    async def _verified(self) -> AuthenticatedThing | None:
        """The thing, if its credential is still valid; hangs up (once) when it is not."""
        access = self._gateway.access
        if self._key is not None:
            thing = await access.authenticate_as(self.thing.id, self._key)
            credential = "key"
        else:
            gate = self._gateway.gate
            revoked = gate is None or self.serial is None or gate.is_revoked(self.serial)
            thing = None if revoked else await access.thing(self.thing.id)
            credential = "certificate"
        if thing is None and not self._revoked:
            self._revoked = True
            logger.info(
                "client %s: the %s of thing %s was revoked",
                self.client_id, credential, self.thing.id,
            )  # fmt: skip
            await self._peer.hang_up()
        return thing

    # -- bus → client ----------------------------------------------------------------

    def _enqueue(self, item: _Outbound) -> None:
        try:
            self._outbox.put_nowait(item)
        except asyncio.QueueFull:
            self._gateway.metrics.dropped.labels("subscriber_behind").inc()

    async def _deliver_loop(self) -> None:
        window = asyncio.Semaphore(self._gateway.limits.max_inflight_out)
        async with asyncio.TaskGroup() as sends:
            while (item := await self._outbox.get()) is not None:
                if item.channel is not None and not await self._may_receive(item.channel):
                    self._gateway.metrics.dropped.labels("not_allowed").inc()
                    continue
                if item.qos == 0:
                    await self._send(item)
                    continue
                await window.acquire()
                # Started in order, and amqtt writes under a FIFO lock: order is kept.
                sends.create_task(
                    self._send_acknowledged(item, window), name=f"mqtt-send-{self.client_id}"
                )

    async def _send_acknowledged(self, item: _Outbound, window: asyncio.Semaphore) -> None:
        try:
            await self._send(item)
        finally:
            window.release()

    async def _send(self, item: _Outbound) -> None:
        try:
            await self._peer.deliver(item.topic, item.payload, item.qos)
        except Exception:
            # No PUBACK within amqtt's 5 s, or the connection broke: the subscriber
            # loses this message (the bus's fan-out is best effort, like WebSocket's).
            self._gateway.metrics.dropped.labels("send_failed").inc()
            logger.debug("client %s: delivery on %r failed", self.client_id, item.topic)
            return
        self._gateway.metrics.delivered.inc()

    async def _may_receive(self, channel: str) -> bool:
        try:
            thing = await self._verified()
            return thing is not None and await self._gateway.access.allowed(
                thing.id, channel, Permission.SUBSCRIBE
            )
        except Exception:
            logger.warning("client %s: cannot check its permissions", self.client_id, exc_info=True)
            return False


def _channel(topic: str) -> str | None:
    """The channel a topic names, if it can be read, to report a refusal on."""
    try:
        return parse_publish_topic(topic).channel
    except TopicError as exc:
        return exc.channel
