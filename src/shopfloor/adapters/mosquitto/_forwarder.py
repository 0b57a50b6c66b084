"""Bus → Mosquitto: what reached the platform another way, for MQTT subscribers.

A durable bus consumer (shared by every bridge process, so each message is sent once)
hands over every channel message but those that came from Mosquitto (its subscribers
have them; the durable skips the MQTT protocol). Each is published at QoS 1 with the
`shopfloor-publisher`, `shopfloor-message-id` and `shopfloor-protocol` properties,
which the broker plugin lets the bridge set, and acknowledged on the bus once the
broker has them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field

from shopfloor.messaging import Bus, Delivery, Envelope

from ._access import MESSAGE_ID_PROPERTY, PROTOCOL_PROPERTY, PUBLISHER_PROPERTY
from ._bridge_support import BridgeMetrics, channel_topic
from ._connection import BrokerConnection, ConnectionLost
from ._options import MosquittoOptions

__all__ = ["ALL_CHANNELS", "MQTT_PROTOCOL", "SKIPPED", "BrokerLink", "Forwarder"]

logger = logging.getLogger(__name__)

#: The protocol of envelopes that came through Mosquitto.
MQTT_PROTOCOL = "mqtt"
#: Filter of every channel on the bus (the bus's own subject scheme).
ALL_CHANNELS = ("channels.>",)
#: What the outbound durable is not given: what came from Mosquitto. Acknowledging
#: each of those unseen cost the bridge's process a sixth of its time per message.
SKIPPED = frozenset({MQTT_PROTOCOL})


@dataclass(eq=False)
class BrokerLink:
    """The bridge's current connection, shared by its inbound and outbound sides."""

    client: BrokerConnection | None = None
    connected: asyncio.Event = field(default_factory=asyncio.Event)

    def up(self, client: BrokerConnection) -> None:
        self.client = client
        self.connected.set()

    def down(self) -> None:
        self.client = None
        self.connected.clear()


class Forwarder:
    """Publishes the bus's messages of other protocols to Mosquitto until cancelled."""

    def __init__(
        self, link: BrokerLink, bus: Bus, metrics: BridgeMetrics, options: MosquittoOptions
    ) -> None:
        self._link = link
        self._bus = bus
        self._metrics = metrics
        self._options = options
        self._backoff = self._options.backoff()

    async def run(self, stopping: asyncio.Event) -> None:
        """Forward until cancelled; `stopping` ends it should a cancellation be lost."""
        attempt = 0
        while not stopping.is_set():
            try:
                await self._forward_all()
            except Exception:
                # The bus failed (closed, unreachable): never end the bridge for it.
                logger.exception("mosquitto bridge lost its bus consumer")
            attempt += 1
            await asyncio.sleep(
                self._backoff.delay(attempt)
            )  # fmt: skip

    async def _forward_all(self) -> None:
        window = asyncio.Semaphore(self._options.outbound_window)
        consumer = self._bus.consume(
            self._options.outbound_durable,
            ALL_CHANNELS,
            batch=self._options.outbound_window,
            skip_protocols=SKIPPED,
        )
        async with consumer, asyncio.TaskGroup() as tasks:
            async for delivery in consumer:
                await window.acquire()
                task = tasks.create_task(self._forward(delivery), name="mosquitto-bridge-send")
                task.add_done_callback(lambda _task: window.release())

    async def _forward(self, delivery: Delivery) -> None:
        envelope = delivery.envelope
        deadline = envelope.created / 1e9 + self._options.outbound_max_age
        topic = channel_topic(envelope.channel, envelope.subtopic)
        properties = _outbound_properties(envelope)
        content_type = envelope.content_type
        while (remaining := deadline - time.time()) > 0:
            client = self._link.client
            if client is None:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(min(remaining, self._options.timeout)):
                        await self._link.connected.wait()
                await delivery.in_progress()  # still ours while the broker is away
                continue
            try:
                await client.publish(
                    topic, envelope.payload, content_type=content_type,
                    user_properties=properties, ack_within=min(remaining, self._options.timeout),
                )  # fmt: skip
            except ConnectionLost as exc:
                logger.debug("forwarding to mosquitto failed, retrying: %s", exc)
                await asyncio.sleep(min(remaining, self._options.backoff_base))
                continue
            self._metrics.forwarded.inc()
            await delivery.ack()
            return
        # MQTT subscribers get what is published while they listen, not a stale backlog.
        self._metrics.expired.inc()
        await delivery.ack()


def _outbound_properties(envelope: Envelope) -> list[tuple[str, str]]:
    return [
        (PUBLISHER_PROPERTY, envelope.publisher),
        (MESSAGE_ID_PROPERTY, envelope.id),
        (PROTOCOL_PROPERTY, envelope.protocol),
    ]
