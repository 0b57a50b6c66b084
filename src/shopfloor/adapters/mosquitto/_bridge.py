"""The bridge between Mosquitto and the bus, both ways, over one MQTT v5 connection.

In: the bridge logs in as `shopfloor-bridge` with a persistent session and takes a
share of `$share/<group>/channels/#` at QoS 1, so several platform processes split the
load and the broker keeps messages while the bridge is away. Each message goes through
`Ingress.publish_many` with the publisher the broker plugin stamped on it, in batches
of what arrived together; a message's PUBACK is sent only after the bus holds it (or
after a refusal was reported to the publisher on `channels/<ch>/messages/_errors/<thing>`),
batch by batch in the order the broker delivered. A crash
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
from collections.abc import Callable
from dataclasses import dataclass

import mqtt5

from shopfloor.auth import AuthenticatedThing
from shopfloor.core import ErrorKind, Lifecycle
from shopfloor.ingress import Incoming, Ingress, IngressError, sniff_content_type
from shopfloor.messaging import Bus, Envelope, MessagingError

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
from ._connection import BrokerConnection, ConnectionLost
from ._forwarder import ALL_CHANNELS, MQTT_PROTOCOL, SKIPPED, BrokerLink, Forwarder
from ._options import MosquittoOptions

__all__ = ["MosquittoBridge"]

logger = logging.getLogger(__name__)

_NO_CHANNEL = IngressError(
    "the channel does not exist", code="publish_not_allowed", kind=ErrorKind.FORBIDDEN
)


class _AckStalled(Exception):
    """A message could not be settled although its connection is up: start a new session."""


@dataclass(eq=False, slots=True)
class _Session:
    """One connection's inbound state; its acknowledgements belong to that connection."""

    connection: BrokerConnection
    pending: asyncio.Queue[asyncio.Task[_Settled] | None]
    alive: bool = True


@dataclass(eq=False, slots=True)
class _Settled:
    """What became of one batch: the packet ids to acknowledge, in the broker's order."""

    acks: list[int]
    unsettled: str | None = None  # the topic of a message that stays with the broker


@dataclass(eq=False, slots=True)
class _Inbound:
    """A message of a batch that goes to the ingress."""

    packet: mqtt5.PublishPacket
    channel: str
    subtopic: str
    publisher: str
    message_id: str | None


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
        # Once the bus refused a batch as busy, batches pass the gate one at a time until
        # one goes through whole: all of them sending again whenever the writer freed a
        # little room refused millions of messages a run and starved the writer.
        self._busy = False
        self._gate = asyncio.Lock()
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
            await self._bus.declare(
                self._options.outbound_durable, ALL_CHANNELS, skip_protocols=SKIPPED
            )
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
            connection: BrokerConnection | None = None
            try:
                connection = await self._connect()
                await self._subscribe(connection)
                opened, attempt, sessions = True, 0, sessions + 1
                self._metrics.connects.inc()
                logger.info("mosquitto bridge connected to %s:%s", self._host, self._port)
                if sessions > 1:
                    self._on_reconnect()  # registry changes may have been missed
                await self._serve(connection)
            except* ConnectionLost as group:
                logger.warning("mosquitto bridge connection lost: %s", group.exceptions[0])
            except* _AckStalled as group:
                logger.error("mosquitto bridge restarts its session: %s", group.exceptions[0])
            except* Exception:
                # A bug must not take the platform down: log it and connect again.
                logger.exception("mosquitto bridge session failed")
            finally:
                self._link.down()
                if connection is not None:
                    await connection.close()
            if self._stopping.is_set():
                return
            attempt = 0 if opened else attempt + 1
            delay = self._backoff.delay(attempt)  # fmt: skip
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._stopping.wait()

    async def _connect(self) -> BrokerConnection:
        options = self._options
        return await BrokerConnection.open(
            self._host,
            self._port,
            client_id=options.client_id,
            username=BRIDGE_USERNAME,
            password=self._password,
            session_expiry=options.session_expiry,
            # The broker sends at most this many unacknowledged messages: the inbound window.
            receive_max=options.inbound_window,
            outbound_window=options.outbound_window,
            connect_within=options.timeout,
        )

    async def _subscribe(self, connection: BrokerConnection) -> None:
        topic = f"$share/{self._options.share_group}/channels/#"
        async with asyncio.timeout(self._options.timeout):
            code = await connection.subscribe(topic, qos=1)
        if code != 1:
            raise ConnectionLost(f"subscribing to {topic} was refused ({code:#04x})")

    async def _serve(self, connection: BrokerConnection) -> None:
        """Bridge one connection's messages until it is lost or the bridge stops."""
        session = _Session(connection, asyncio.Queue())
        lost: BaseException | None = None
        async with asyncio.TaskGroup() as tasks:
            acker = tasks.create_task(self._acknowledge(session), name="mosquitto-bridge-acks")
            reader = tasks.create_task(self._read(session, tasks), name="mosquitto-bridge-read")
            stop = tasks.create_task(self._stopping.wait(), name="mosquitto-bridge-stop")
            self._link.up(connection)
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

    async def _read(self, session: _Session, tasks: asyncio.TaskGroup) -> ConnectionLost | None:
        """Hand each batch of messages to a task of its own, so that a slow one (a bus
        that retries) does not hold the next back; the broker's Receive Maximum bounds
        how many are taken and not yet acknowledged."""
        try:
            while True:
                batch = await session.connection.messages()
                settling = tasks.create_task(
                    self._settle(session, batch), name="mosquitto-bridge-batch"
                )
                session.pending.put_nowait(settling)
        except ConnectionLost as exc:
            return exc

    async def _acknowledge(self, session: _Session) -> None:
        """Acknowledge batches in the order they came, each once its messages are settled.

        A message that could not be settled stays with the broker: while stopping it
        is delivered again after the restart; on a live connection it would hold a slot
        of the window for good, so the session starts over and the broker resends it.
        """
        while (settling := await session.pending.get()) is not None:
            # Shielded: cancelling the acknowledger (the connection is gone) must not
            # cancel the batch, which finishes putting its messages on the bus.
            settled = await asyncio.shield(settling)
            with contextlib.suppress(ConnectionLost):
                session.connection.ack(settled.acks)
            if settled.unsettled is not None and not self._stopping.is_set():
                raise _AckStalled(f"a message on {settled.unsettled} was not settled")

    async def _settle(self, session: _Session, batch: list[mqtt5.PublishPacket]) -> _Settled:
        """Put a batch on the bus; what may be acknowledged of it."""
        try:
            return await self._settle_batch(session, batch)
        except Exception:
            # A bug must not end the bridge; the messages stay with the broker.
            logger.exception("mosquitto bridge failed on a batch of %d messages", len(batch))
            return _Settled([], unsettled=batch[0].topic)

    async def _settle_batch(self, session: _Session, batch: list[mqtt5.PublishPacket]) -> _Settled:
        settled: set[int] = set()  # indexes into batch
        todo: list[tuple[int, _Inbound]] = []
        for index, packet in enumerate(batch):
            inbound = self._inspect(packet)
            if inbound is None:
                settled.add(index)
            else:
                todo.append((index, inbound))
        await self._send_all(session, todo, settled)
        acks: list[int] = []
        unsettled: str | None = None
        for index, packet in enumerate(batch):
            if index not in settled:
                unsettled = unsettled or packet.topic
            elif packet.packet_id is not None:  # QoS 0 has none, and no PUBACK
                acks.append(packet.packet_id)
        return _Settled(acks, unsettled)

    async def _send_all(
        self, session: _Session, todo: list[tuple[int, _Inbound]], settled: set[int]
    ) -> None:
        """Through the ingress until each message is settled (its index added to
        `settled`) or the connection or the bridge ends."""
        attempt = 0
        gated = False
        try:
            while todo:
                if self._busy and not gated:
                    await self._gate.acquire()  # a busy bus takes one batch at a time
                    gated = True
                # After a refusal one message of one batch tells whether the bus takes
                # messages again: every batch checking all of its messages anew at each
                # retry cost about a tenth of the CPU while the bus was full.
                sending, rest = (todo[:1], todo[1:]) if attempt else (todo, [])
                retry: list[tuple[int, _Inbound]] = []
                delay = 0.0
                results = await self._publish(sending)
                for (index, inbound), result in zip(sending, results, strict=True):
                    if isinstance(result, Envelope):
                        if inbound.message_id is not None:
                            self._recent.add(inbound.message_id)
                        settled.add(index)
                    elif isinstance(result, IngressError) and not result.transient:
                        if await self._report(session, inbound, result):
                            settled.add(index)
                    else:
                        if isinstance(result, IngressError):
                            delay = max(delay, result.retry_after or 0.0)
                        else:
                            # The registry or the bus failed unexpectedly: retried like a
                            # busy bus, the broker keeps the message meanwhile.
                            logger.error(
                                "mosquitto bridge could not publish a message on %s: %r",
                                inbound.packet.topic, result,
                            )  # fmt: skip
                        retry.append((index, inbound))
                todo = retry + rest
                if not retry:
                    attempt = 0  # the rest goes at once
                    continue
                if not session.alive or self._stopping.is_set():
                    break  # what is left is delivered again on the next connection
                self._busy = True
                if not gated:
                    continue  # to the gate, behind the batch that holds it
                attempt += 1
                # A busy bus says when to come back: backing off further (up to the 5 s cap)
                # left the writer idle once it had drained the backlog. Failures that name
                # no time back off.
                await asyncio.sleep(delay or self._backoff.delay(attempt))
            if gated and not todo:
                self._busy = False  # a whole batch went through: the bus has room again
        finally:
            if gated:
                self._gate.release()

    def _inspect(self, packet: mqtt5.PublishPacket) -> _Inbound | None:
        """What goes to the ingress of a message; None for one settled as it is."""
        topic = packet.topic
        parsed = parse_channel_topic(topic)
        if parsed is None:
            self._metrics.dropped.labels("topic").inc()
            return None
        channel, subtopic = parsed
        if subtopic == ERRORS_SUBTOPIC or subtopic.startswith(f"{ERRORS_SUBTOPIC}/"):
            return None  # the bridge's own reports to publishers
        publisher = message_id = None
        for name, value in packet.user_properties:
            if name == PUBLISHER_PROPERTY:
                publisher = value
            elif name == MESSAGE_ID_PROPERTY:
                message_id = value
            elif name == PROTOCOL_PROPERTY:
                return None  # what the bridge itself published from the bus
        if not publisher or publisher == BRIDGE_USERNAME:
            # Not stamped by the plugin: the broker is not configured as documented.
            self._metrics.dropped.labels("no_publisher").inc()
            logger.warning("mosquitto message on %s has no publisher; dropped", topic)
            return None
        if message_id is not None and message_id in self._recent:
            self._metrics.duplicates.inc()
            return None
        return _Inbound(packet, channel, subtopic, publisher, message_id)

    async def _publish(self, todo: list[tuple[int, _Inbound]]) -> list[Envelope | Exception]:
        """Through the ingress, all at once; for each, its envelope or why not."""
        orgs: dict[str, str | None] = {}
        results: list[Envelope | Exception | None] = []
        messages: list[Incoming] = []
        for _, inbound in todo:
            channel = inbound.channel
            if channel not in orgs:
                try:
                    orgs[channel] = await self._channels.org_of(channel)
                except Exception as exc:
                    results.append(exc)
                    continue
            org_id = orgs[channel]
            if org_id is None:
                # Ingress would refuse it as well: no connection to a channel that does
                # not exist (it was deleted, and the broker is not in step yet).
                results.append(_NO_CHANNEL)
                continue
            packet = inbound.packet
            payload = packet.payload
            # The plugin's id for this message: a redelivery after a crash, or to
            # another bridge process, is deduplicated by the bus.
            thing = AuthenticatedThing(inbound.publisher, org_id)
            content_type = packet.content_type or sniff_content_type(payload)
            messages.append(
                Incoming(
                    thing, channel, inbound.subtopic, payload, content_type, inbound.message_id
                )
            )
            results.append(None)
        published = iter(await self._ingress.publish_many(messages, protocol=MQTT_PROTOCOL))
        return [result if result is not None else next(published) for result in results]

    async def _report(self, session: _Session, inbound: _Inbound, error: IngressError) -> bool:
        """Tell the publisher why its message was refused; True once the broker has it."""
        self._metrics.rejected.labels(error.code).inc()
        topic = inbound.packet.topic
        report = json.dumps({"code": error.code, "message": error.message, "topic": topic})
        try:
            await session.connection.publish(
                errors_topic(inbound.channel, inbound.publisher), report.encode(),
                content_type="application/json", ack_within=self._options.timeout,
            )  # fmt: skip
        except ConnectionLost as exc:
            logger.warning("cannot report a refused message to %s: %s", inbound.publisher, exc)
            return False
        return True

    # -- bus → Mosquitto -----------------------------------------------------------------
