"""What amqtt's extension points share: the platform services, the limits, the live connections.

amqtt creates the plugin, the protocol handlers and the sessions itself; they reach
the ingress, the thing access and the broker's running task group through one
`Gateway`, handed to the plugin in its configuration and to each handler when the
broker makes it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from shopfloor.auth import AuthenticatedThing, ThingAccess
from shopfloor.ingress import Ingress
from shopfloor.messaging import Envelope
from shopfloor.pki import CertificateGate, Revoked

from ._metrics import MqttMetrics
from ._topics import errors_topic, message_topic, topic_matches

if TYPE_CHECKING:
    from ._connection import Connection

__all__ = [
    "CERTIFICATE_ATTRIBUTE",
    "THING_ATTRIBUTE",
    "WILL_ATTRIBUTE",
    "BrokerLimits",
    "Gateway",
]

#: amqtt `Session.attributes` keys (namespaced, as amqtt asks of extensions).
THING_ATTRIBUTE = "shopfloor.thing"
WILL_ATTRIBUTE = "shopfloor.will"
#: The `CertifiedThing` of a connection that logged in with a client certificate.
CERTIFICATE_ATTRIBUTE = "shopfloor.certificate"


@dataclass(frozen=True, slots=True, kw_only=True)
class BrokerLimits:
    """Tuning of the embedded broker (the defaults are what `EmbeddedBroker` uses)."""

    #: QoS 0 messages a connection may have waiting for the bus; more are dropped.
    #: (QoS 1 messages are bounded by the client's own in-flight window, since their
    #: PUBACK waits for the bus.)
    max_inbound_queued: int = 1000
    #: Messages waiting to be sent to one subscriber; more are dropped for it alone.
    max_outbound_queued: int = 1000
    #: QoS 1 messages sent to one subscriber and not acknowledged yet.
    max_inflight_out: int = 64
    #: Bus messages waiting to be handed to subscribers; more are dropped for MQTT.
    max_fan_out_queued: int = 10_000
    #: First and largest pause between two attempts while the bus refuses messages.
    retry_base: float = 0.02
    retry_cap: float = 2.0
    #: Seconds a new TCP connection has to send its CONNECT.
    connect_timeout: float = 10.0
    #: Seconds a disconnected persistent session (clean session off) is kept.
    session_expiry: int = 86_400

    def __post_init__(self) -> None:
        counts = (
            self.max_inbound_queued,
            self.max_outbound_queued,
            self.max_inflight_out,
            self.max_fan_out_queued,
        )
        if min(counts) < 1 or self.session_expiry < 1:
            raise ValueError("queue sizes, the in-flight window and session_expiry must be >= 1")
        if not 0 < self.retry_base <= self.retry_cap or not self.connect_timeout > 0:
            raise ValueError("need 0 < retry_base <= retry_cap and connect_timeout > 0")


class SessionTable(Protocol):
    """The part of amqtt's `Broker` the gateway reads (both are public properties)."""

    @property
    def sessions(self) -> Mapping[str, tuple[Any, Any]]: ...

    @property
    def subscriptions(self) -> Mapping[str, Sequence[tuple[Any, int]]]: ...


class Gateway:
    """The platform side of the broker, and the connected clients by MQTT client id."""

    def __init__(
        self,
        ingress: Ingress,
        access: ThingAccess,
        metrics: MqttMetrics,
        limits: BrokerLimits,
        gate: CertificateGate | None = None,
    ) -> None:
        self.ingress = ingress
        self.access = access
        self.metrics = metrics
        self.limits = limits
        #: Admits client certificates (None: the broker has no TLS listener).
        self.gate = gate
        #: Set when the broker begins to stop: no more retries, no more wills.
        self.stopping = False
        self._tasks: asyncio.TaskGroup | None = None
        self._table: SessionTable | None = None
        self._connections: dict[str, Connection] = {}
        #: Client ids of the live connections of each thing, for its error reports.
        self._client_ids: dict[str, set[str]] = {}

    def bind(self, tasks: asyncio.TaskGroup, table: SessionTable) -> None:
        self._tasks = tasks
        self._table = table

    def open(self, connection: Connection) -> None:
        """Register a new connection and run its loops in the broker's task group."""
        if self._tasks is None or self.stopping:
            raise RuntimeError("the MQTT broker is not running")
        # A take-over (same client id) replaces the old connection, which closes itself.
        self._connections[connection.client_id] = connection
        self._client_ids.setdefault(connection.thing.id, set()).add(connection.client_id)
        self._tasks.create_task(connection.run(), name=f"mqtt-connection-{connection.client_id}")

    def forget(self, connection: Connection) -> None:
        if self._connections.get(connection.client_id) is connection:
            del self._connections[connection.client_id]
            client_ids = self._client_ids.get(connection.thing.id, set())
            client_ids.discard(connection.client_id)
            if not client_ids:
                self._client_ids.pop(connection.thing.id, None)

    def report(self, thing_id: str, channel: str, payload: bytes) -> None:
        """Offer an error report to every connection of `thing_id` subscribed to it.

        As in Mosquitto mode, where reports go to `_errors/<thing id>`: a device with a
        separate monitoring session sees the refusals of its publishing session.
        """
        topic = errors_topic(channel)
        for client_id in self._client_ids.get(thing_id, ()):
            connection = self._connections.get(client_id)
            qos = self.subscribed_qos(client_id, channel, topic)
            if connection is not None and qos is not None:
                connection.offer_report(topic, payload, qos)

    async def take_over(self, client_id: str) -> None:
        """Disconnect the live connection using `client_id`, if there is one.

        MQTT 3.1.1 [MQTT-3.1.4-2]: a new client with that id replaces it. amqtt does so
        only when the old session is persistent and still marked connected; a clean
        session it deletes, leaving the old TCP connection open beside the new one.
        """
        connection = self._connections.get(client_id)
        if connection is not None:
            self.metrics.taken_over.inc()
            await connection.hang_up()

    def revoked(self, revoked: Revoked) -> None:
        """Hang up every connection that logged in with the revoked certificate."""
        if self._tasks is None or self.stopping:
            return
        for connection in list(self._connections.values()):
            if connection.serial == revoked.serial:
                connection.mark_revoked()
                self._tasks.create_task(
                    connection.hang_up(), name=f"mqtt-revoke-{connection.client_id}"
                )

    def session_owner(self, client_id: str) -> str | None:
        """The thing id of the session (live or persistent) already using a client id."""
        if self._table is None or not client_id:
            return None
        session = self._table.sessions.get(client_id, (None, None))[0]
        if session is None:
            return None
        thing = session.attributes.get(THING_ATTRIBUTE)
        # A session without a thing never authenticated; it may be taken.
        return thing.id if isinstance(thing, AuthenticatedThing) else None

    def _matching(self, channel: str, topic: str) -> Iterator[tuple[str, int]]:
        """(client id, QoS) of every subscription matching a topic of `channel`."""
        if self._table is None:
            return
        prefix = message_topic(channel)
        for topic_filter, entries in self._table.subscriptions.items():
            # Every accepted filter starts with its channel's prefix, so this cheap test
            # skips the subscriptions of other channels.
            if topic_filter.startswith(prefix) and topic_matches(topic_filter, topic):
                for session, qos in entries:
                    yield session.client_id, qos

    def subscribed_qos(self, client_id: str, channel: str, topic: str) -> int | None:
        """The highest QoS a client subscribed to `topic` with, None if it did not."""
        granted = [qos for cid, qos in self._matching(channel, topic) if cid == client_id]
        return max(granted) if granted else None

    def fan_out(self, envelope: Envelope) -> None:
        """Offer a bus message to every connected subscriber of its topic, once each."""
        topic = message_topic(envelope.channel, envelope.subtopic)
        targets: dict[str, int] = {}
        for client_id, qos in self._matching(envelope.channel, topic):
            targets[client_id] = max(qos, targets.get(client_id, 0))
        for client_id, qos in targets.items():
            connection = self._connections.get(client_id)
            if connection is not None:
                connection.offer(envelope.channel, topic, envelope.payload, qos)
