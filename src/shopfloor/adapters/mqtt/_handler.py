"""The amqtt protocol handler of a thing's connection, and the broker that uses it.

amqtt has no hook between "a PUBLISH arrived" and "its PUBACK is sent": its handler
acknowledges a QoS 1 message as soon as it is queued for amqtt's own routing. Shopfloor
acknowledges only once the bus holds the message, so the handler is subclassed and
`handle_publish` overridden; amqtt builds handlers itself, so the broker is subclassed
to swap the handler in. Both reach into amqtt internals (`_initialize_client_session`,
`_send_packet`), checked when this module is imported so that an amqtt upgrade that
moves them fails at start-up, not on the first message.
"""

from __future__ import annotations

import math
from typing import Any

from amqtt.broker import Broker
from amqtt.mqtt.disconnect import DisconnectPacket
from amqtt.mqtt.protocol.broker_handler import BrokerProtocolHandler
from amqtt.mqtt.puback import PubackPacket

from shopfloor.auth import AuthenticatedThing

from ..tls import CertifiedThing
from ._connection import Connection, Inbound
from ._gateway import CERTIFICATE_ATTRIBUTE, THING_ATTRIBUTE, WILL_ATTRIBUTE, Gateway

__all__ = ["ThingBroker", "ThingHandler"]

#: The QoS Shopfloor grants at most (the contract is QoS 0 and 1).
MAX_QOS = 1

for _owner, _name in (
    (Broker, "_initialize_client_session"),
    (Broker, "add_subscription"),
    (Broker, "external_connected"),
    (BrokerProtocolHandler, "_send_packet"),
    (BrokerProtocolHandler, "handle_publish"),
    (BrokerProtocolHandler, "handle_read_timeout"),
):
    if not callable(getattr(_owner, _name, None)):
        raise ImportError(f"amqtt {_owner.__name__}.{_name} is gone; this amqtt is unsupported")


# amqtt is untyped, so its base classes are `Any` to mypy.
class ThingHandler(BrokerProtocolHandler):  # type: ignore[misc]
    """A connection's protocol handler: PUBLISHes go to the ingress, not amqtt's routing."""

    def __init__(self, plugins_manager: Any, gateway: Gateway) -> None:
        super().__init__(plugins_manager)
        self._gateway = gateway
        self._connection: Connection | None = None
        self._clean_disconnect = False

    async def start(self) -> None:
        session = self.session
        thing = session.attributes.get(THING_ATTRIBUTE)
        if self._connection is None and isinstance(thing, AuthenticatedThing):
            # Before the reader starts, so that no PUBLISH can arrive without it.
            will = session.attributes.get(WILL_ATTRIBUTE)
            certified = session.attributes.get(CERTIFICATE_ATTRIBUTE)
            by_certificate = isinstance(certified, CertifiedThing)
            self._connection = Connection(
                self._gateway,
                self,
                client_id=session.client_id,
                thing=thing,
                key=None if by_certificate else session.password,
                serial=certified.serial if isinstance(certified, CertifiedThing) else None,
                will=will if isinstance(will, Inbound) else None,
            )
            self._gateway.open(self._connection)
        if session.keep_alive > 0:
            # The reader treats keep_alive as its read timeout; MQTT allows the client
            # one and a half periods [MQTT-3.1.2-24].
            session.keep_alive = math.ceil(session.keep_alive * 1.5)
        await super().start()

    async def stop(self) -> None:
        if self._connection is not None:
            self._connection.close(
                publish_will=not self._clean_disconnect and not self._gateway.stopping
            )
        await super().stop()

    async def handle_disconnect(self, disconnect: Any) -> None:
        if isinstance(disconnect, DisconnectPacket):
            self._clean_disconnect = True
        await super().handle_disconnect(disconnect)

    def handle_read_timeout(self) -> None:
        # amqtt's broker handler ignores a client that stays silent past its keep-alive,
        # which would keep half-open connections (and their wills) forever. Ending the
        # stream makes the reader see EOF and close the connection as if the client left.
        if self.reader is not None:
            self.reader.feed_eof()

    async def handle_publish(self, publish_packet: Any) -> None:
        # amqtt runs this in a task per packet, in arrival order; `receive` queues
        # without awaiting, so the connection sees the messages in that order too.
        connection = self._connection
        topic, data, qos = publish_packet.topic_name, publish_packet.data, publish_packet.qos
        if connection is None or topic is None or data is None:
            return
        stored = connection.receive(topic, bytes(data), qos)
        if stored is None or not await stored:
            return
        if qos == 1:
            packet_id = publish_packet.variable_header.packet_id
            await self._send_packet(PubackPacket.build(packet_id))
        else:
            # QoS 2 (beyond the contract): amqtt's own flow does the PUBREC/PUBREL/PUBCOMP
            # handshake; the plugin then refuses amqtt's routing of the message. A resent
            # QoS 2 message may thus reach the bus twice: at least once, not exactly once.
            await super().handle_publish(publish_packet)

    async def deliver(self, topic: str, payload: bytes, qos: int) -> None:
        await self.mqtt_publish(topic, payload, qos, retain=False)

    async def hang_up(self) -> None:
        await self.handle_connection_closed()


class ThingBroker(Broker):  # type: ignore[misc]
    """amqtt's broker with `ThingHandler` for every connection and QoS capped at 1."""

    def __init__(self, config: Any, gateway: Gateway) -> None:
        super().__init__(config)
        self._gateway = gateway

    async def _initialize_client_session(
        self, reader: Any, writer: Any, remote_address: str, remote_port: int
    ) -> tuple[ThingHandler, Any]:
        # amqtt builds a plain handler from the CONNECT; it is not attached to anything
        # yet, so it is replaced by ours before the session starts.
        _plain, session = await super()._initialize_client_session(
            reader, writer, remote_address, remote_port
        )
        # Set or cleared on every CONNECT: a persistent session may come back over
        # another listener, with a key this time.
        certified = getattr(writer, "certified", None)
        if isinstance(certified, CertifiedThing):
            session.attributes[CERTIFICATE_ATTRIBUTE] = certified
        else:
            session.attributes.pop(CERTIFICATE_ATTRIBUTE, None)
        return ThingHandler(self.plugins_manager, self._gateway), session

    async def add_subscription(self, subscription: tuple[str, int], session: Any) -> int:
        topic_filter, qos = subscription
        granted: int = await super().add_subscription((topic_filter, min(qos, MAX_QOS)), session)
        return granted
