"""The bridge between Mosquitto and the bus, both ways, over one MQTT v5 connection.

In: the bridge logs in as `shopfloor-bridge` with a persistent session and takes a
share of `$share/<group>/channels/#` at QoS 1, so several platform processes split the
load and the broker keeps messages while the bridge is away. Each message goes through
`Ingress.publish` with the publisher the broker plugin stamped on it; its PUBACK is
sent only after the bus holds it (or after a refusal was reported to the publisher on
`channels/<ch>/messages/_errors/<thing>`), in the order the broker delivered. A crash
before the PUBACK leaves the message in the session, to be delivered again; the message
id the plugin stamps lets the bridge recognise such a redelivery within one process.

Out: `Forwarder` publishes what reached the bus another way (HTTP, WebSocket). The
broker delivers those back to the bridge's own subscription (a shared subscription
cannot ask for "no local"); their `shopfloor-protocol` property, which only the bridge
can set, tells them apart, so nothing goes round twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
from collections.abc import Callable
from dataclasses import dataclass

import aiomqtt
import paho.mqtt.client as paho
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from shopfloor.auth import AuthenticatedThing
from shopfloor.core import ErrorKind, Lifecycle
from shopfloor.ingress import Ingress, IngressError, sniff_content_type
from shopfloor.messaging import Bus, MessagingError

from ._access import (
    BRIDGE_USERNAME,
    ERRORS_SUBTOPIC,
    MESSAGE_ID_PROPERTY,
    PROTOCOL_PROPERTY,
    PUBLISHER_PROPERTY,
    errors_topic,
)
from ._bridge_support import (
    BridgeMetrics,
    ChannelLookup,
    ChannelOrgs,
    RecentIds,
    parse_channel_topic,
)
from ._forwarder import ALL_CHANNELS, MQTT_PROTOCOL, BrokerLink, Forwarder
from ._options import MosquittoOptions

__all__ = ["MosquittoBridge"]

logger = logging.getLogger(__name__)

_NODELAY = (socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class _AckStalled(Exception):
    """A message could not be settled although its connection is up: start a new session."""


@dataclass(eq=False)
class _Session:
    """One connection's inbound state; its acknowledgements belong to that connection."""

    client: aiomqtt.Client
    window: asyncio.Semaphore
    pending: asyncio.Queue[tuple[aiomqtt.Message, asyncio.Task[bool]] | None]
    alive: bool = True

    def ack(self, message: aiomqtt.Message) -> None:
        if message.qos > 0:
            # aiomqtt 2.5 has no manual acknowledgement of its own: paho's is used.
            _paho(self.client).ack(message.mid, message.qos)


def _paho(client: aiomqtt.Client) -> paho.Client:
    return client._client


def _user_properties(message: aiomqtt.Message) -> dict[str, str]:
    pairs = getattr(message.properties, "UserProperty", None) or ()
    return {str(name): str(value) for name, value in pairs}


class MosquittoBridge(Lifecycle):
    """Moves messages between Mosquitto and the bus; see the module docstring."""

    def __init__(
        self,
        *,
        host: str,
        port: int,
        password: str,
        ingress: Ingress,
        bus: Bus,
        channels: ChannelLookup,
        metrics: BridgeMetrics,
        options: MosquittoOptions,
        on_reconnect: Callable[[], None] = lambda: None,
    ) -> None:
        super().__init__()
        self._host = host
        self._port = port
        self._password = password
        self._ingress = ingress
        self._bus = bus
        self._channels = ChannelOrgs(channels)
        self._metrics = metrics
        self._options = options
        self._on_reconnect = on_reconnect
        self._recent = RecentIds(options.dedupe_ids)
        self._backoff = self._options.backoff()
        self._link = BrokerLink()
        self._forwarder = Forwarder(self._link, bus, metrics, options)
        self._may_connect = asyncio.Event()
        self._inbound: asyncio.Task[None] | None = None
        self._outbound: asyncio.Task[None] | None = None

    @property
    def connected(self) -> bool:
        return self._link.connected.is_set()

    def allow_connect(self) -> None:
        """Let the bridge log in (once the broker knows its client)."""
        self._may_connect.set()

    def forget_channel(self, channel_id: str) -> None:
        self._channels.forget(channel_id)

    async def _start(self, stack: contextlib.AsyncExitStack) -> None:
        try:
            # Declared now, so what is published from here on is kept for Mosquitto.
            await self._bus.declare(self._options.outbound_durable, ALL_CHANNELS)
        except MessagingError as exc:
            logger.warning("cannot declare the bus consumer for mosquitto yet: %s", exc)
        self._inbound = await self.spawn("mosquitto-bridge-in", self._run_inbound, restart=False)
        # What the outbound side did not acknowledge goes to the next consumer.
        self._outbound = await self.spawn(
            "mosquitto-bridge-out", self._forwarder.run, restart=False, cancel_on_stop=True
        )

    async def aclose(self) -> None:
        # Inbound finishes what it took and acknowledges it before logging out, so a
        # restart delivers nothing twice; the outbound side is simply cancelled.
        if self._outbound is not None:
            self._outbound.cancel()
        self._stopping.set()
        self._may_connect.set()  # a bridge still waiting to log in just ends
        inbound = self._inbound
        if inbound is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._options.stop_timeout):
                    await asyncio.shield(inbound)
            inbound.cancel()
        await super().aclose()

    # -- Mosquitto → bus -----------------------------------------------------------------

    async def _run_inbound(self, _stopping: asyncio.Event) -> None:
        await self._may_connect.wait()
        attempt, sessions = 0, 0
        while not self._stopping.is_set():
            opened = False
            try:
                client = self._new_client()
                async with client:
                    await self._subscribe(client)
                    opened, attempt, sessions = True, 0, sessions + 1
                    self._metrics.connects.inc()
                    logger.info("mosquitto bridge connected to %s:%s", self._host, self._port)
                    if sessions > 1:
                        self._on_reconnect()  # registry changes may have been missed
                    await self._serve(client)
            except* aiomqtt.MqttError as group:
                logger.warning("mosquitto bridge connection lost: %s", group.exceptions[0])
            except* _AckStalled as group:
                logger.error("mosquitto bridge restarts its session: %s", group.exceptions[0])
            except* Exception:
                # A bug must not take the platform down: log it and connect again.
                logger.exception("mosquitto bridge session failed")
            finally:
                self._link.down()
            if self._stopping.is_set():
                return
            attempt = 0 if opened else attempt + 1
            delay = self._backoff.delay(attempt)  # fmt: skip
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._stopping.wait()

    def _new_client(self) -> aiomqtt.Client:
        options = self._options
        properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        properties.SessionExpiryInterval = options.session_expiry
        # The broker sends at most this many unacknowledged messages: the inbound window.
        properties.ReceiveMaximum = options.inbound_window
        client = aiomqtt.Client(
            self._host,
            self._port,
            username=BRIDGE_USERNAME,
            password=self._password,
            identifier=options.client_id,
            protocol=aiomqtt.ProtocolVersion.V5,
            clean_start=False,
            properties=properties,
            timeout=options.timeout,
            max_inflight_messages=options.outbound_window,
            socket_options=[_NODELAY],
        )
        # Many publishes in flight at once is the design, not a symptom.
        client.pending_calls_threshold = options.outbound_window + options.inbound_window
        _paho(client).manual_ack_set(True)
        return client

    async def _subscribe(self, client: aiomqtt.Client) -> None:
        topic = f"$share/{self._options.share_group}/channels/#"
        (granted,) = await client.subscribe(topic, qos=1)
        code = granted.value if isinstance(granted, ReasonCode) else granted
        if code != 1:
            raise aiomqtt.MqttCodeError(code, f"subscribing to {topic} was refused")

    async def _serve(self, client: aiomqtt.Client) -> None:
        """Bridge one connection's messages until it is lost or the bridge stops."""
        window = self._options.inbound_window
        session = _Session(client, asyncio.Semaphore(window), asyncio.Queue())
        lost: BaseException | None = None
        async with asyncio.TaskGroup() as tasks:
            acker = tasks.create_task(self._acknowledge(session), name="mosquitto-bridge-acks")
            reader = tasks.create_task(self._read(session, tasks), name="mosquitto-bridge-read")
            stop = tasks.create_task(self._stopping.wait(), name="mosquitto-bridge-stop")
            self._link.up(client)
            await asyncio.wait({acker, reader, stop}, return_when=asyncio.FIRST_COMPLETED)
            self._link.down()
            reader.cancel()
            stop.cancel()
            if reader.done() and not reader.cancelled():
                lost = reader.result()
            if lost is None:
                session.pending.put_nowait(None)  # stopping: settle what was taken, then end
            else:
                session.alive = False  # acknowledgements cannot reach the broker any more
                acker.cancel()
        if lost is not None:
            raise lost

    async def _read(self, session: _Session, tasks: asyncio.TaskGroup) -> aiomqtt.MqttError | None:
        try:
            async for message in session.client.messages:
                await session.window.acquire()
                handler = tasks.create_task(
                    self._bridge_in(session, message), name="mosquitto-bridge-message"
                )
                session.pending.put_nowait((message, handler))
        except aiomqtt.MqttError as exc:
            return exc
        return None

    async def _acknowledge(self, session: _Session) -> None:
        """Acknowledge messages in the order they came, each once its handler is done.

        A message its handler could not settle stays with the broker: while stopping it
        is delivered again after the restart; on a live connection it would hold a slot
        of the window for good, so the session starts over and the broker resends it.
        """
        while (item := await session.pending.get()) is not None:
            message, handler = item
            # Shielded: cancelling the acknowledger (the connection is gone) must not
            # cancel the handler, which finishes putting its message on the bus.
            settled = await asyncio.shield(handler)
            session.window.release()
            if settled:
                session.ack(message)
            elif not self._stopping.is_set():
                raise _AckStalled(f"message {message.mid} on {message.topic} was not settled")

    async def _bridge_in(self, session: _Session, message: aiomqtt.Message) -> bool:
        """Put one message on the bus; True when it may be acknowledged."""
        try:
            return await self._deliver(session, message)
        except Exception:
            # A bug must not end the bridge; the message stays with the broker.
            logger.exception("mosquitto bridge failed on a message on %s", message.topic)
            return False

    async def _deliver(self, session: _Session, message: aiomqtt.Message) -> bool:
        topic = message.topic.value
        parsed = parse_channel_topic(topic)
        if parsed is None:
            self._metrics.dropped.labels("topic").inc()
            return True
        channel, subtopic = parsed
        if subtopic == ERRORS_SUBTOPIC or subtopic.startswith(f"{ERRORS_SUBTOPIC}/"):
            return True  # the bridge's own reports to publishers
        properties = _user_properties(message)
        if PROTOCOL_PROPERTY in properties:
            return True  # what the bridge itself published from the bus
        publisher = properties.get(PUBLISHER_PROPERTY)
        if not publisher or publisher == BRIDGE_USERNAME:
            # Not stamped by the plugin: the broker is not configured as documented.
            self._metrics.dropped.labels("no_publisher").inc()
            logger.warning("mosquitto message on %s has no publisher; dropped", topic)
            return True
        message_id = properties.get(MESSAGE_ID_PROPERTY)
        if message_id is not None and message_id in self._recent:
            self._metrics.duplicates.inc()
            return True
        payload = message.payload if isinstance(message.payload, bytes) else b""
        content_type = getattr(message.properties, "ContentType", None)
        handled = await self._publish(
            session, topic, publisher, channel, subtopic, payload,
            content_type or sniff_content_type(payload), message_id,
        )  # fmt: skip
        if handled and message_id is not None:
            self._recent.add(message_id)
        return handled

    async def _publish(
        self,
        session: _Session,
        topic: str,
        publisher: str,
        channel: str,
        subtopic: str,
        payload: bytes,
        content_type: str,
        message_id: str | None,
    ) -> bool:
        attempt = 0
        while True:
            try:
                org_id = await self._channels.org_of(channel)
                if org_id is None:
                    # Ingress would refuse it as well: no connection to a channel that
                    # does not exist (it was deleted, and the broker is not in step yet).
                    raise IngressError(
                        "the channel does not exist",
                        code="publish_not_allowed",
                        kind=ErrorKind.FORBIDDEN,
                    )
                thing = AuthenticatedThing(publisher, org_id)
                # The plugin's id for this message: a redelivery after a crash, or to
                # another bridge process, is deduplicated by the bus.
                await self._ingress.publish(
                    thing, channel, subtopic, payload, content_type,
                    protocol=MQTT_PROTOCOL, message_id=message_id,
                )  # fmt: skip
                return True
            except IngressError as exc:
                if not exc.transient:
                    return await self._report(session, topic, publisher, channel, exc)
                delay = exc.retry_after
            except Exception:
                # The registry or the bus failed unexpectedly: retried like a busy bus,
                # the broker keeps the message meanwhile.
                logger.exception("mosquitto bridge could not publish a message on %s", topic)
                delay = None
            if not session.alive or self._stopping.is_set():
                return False  # delivered again on the next connection
            attempt += 1
            await asyncio.sleep(
                max(
                    delay or 0.0,
                    self._backoff.delay(attempt),
                )
            )  # fmt: skip

    async def _report(
        self, session: _Session, topic: str, publisher: str, channel: str, error: IngressError
    ) -> bool:
        """Tell the publisher why its message was refused; True once the broker has it."""
        self._metrics.rejected.labels(error.code).inc()
        report = json.dumps({"code": error.code, "message": error.message, "topic": topic})
        properties = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
        properties.ContentType = "application/json"
        try:
            await session.client.publish(
                errors_topic(channel, publisher), report.encode(), qos=1, properties=properties
            )
        except aiomqtt.MqttError as exc:
            logger.warning("cannot report a refused message to %s: %s", publisher, exc)
            return False
        return True

    # -- bus → Mosquitto -----------------------------------------------------------------
