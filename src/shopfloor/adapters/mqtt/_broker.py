"""`EmbeddedBroker`: amqtt serving things, with the Shopfloor bus doing the routing."""

from __future__ import annotations

import asyncio
import logging
import ssl
from contextlib import AsyncExitStack
from dataclasses import dataclass

from amqtt.adapters import ReaderAdapter, StreamWriterAdapter
from amqtt.contexts import BrokerConfig, ListenerConfig, ListenerType
from prometheus_client import CollectorRegistry

from shopfloor.auth import ThingAccess
from shopfloor.core import Lifecycle
from shopfloor.ingress import Ingress
from shopfloor.messaging import Bus, Subscription
from shopfloor.pki import CertificateGate

from ._gateway import BrokerLimits, Gateway
from ._handler import ThingBroker
from ._listener import Listener
from ._metrics import MqttMetrics
from ._plugin import plugin_path

__all__ = ["BrokerTls", "EmbeddedBroker"]

logger = logging.getLogger(__name__)

#: Every message of every channel (bus subject filter).
ALL_CHANNELS = "channels.>"
#: amqtt requires a listener named "default"; it is external: the socket is ours.
_LISTENER = "default"


@dataclass(frozen=True, slots=True, kw_only=True)
class BrokerTls:
    """The broker's TLS listener: its context (server certificate, client CA, client
    certificates optional; see `server_tls_context`), the gate that admits client
    certificates, and its port (0: the OS chooses) and address (None: the broker's)."""

    context: ssl.SSLContext
    gate: CertificateGate
    port: int = 8883
    host: str | None = None


class EmbeddedBroker(Lifecycle):
    """The single-process MQTT broker; an async context manager, entered once.

    Things connect with username = thing id, password = thing key. What they publish
    on `channels/<channel>/messages[/<subtopic>]` goes through the ingress onto the
    bus (a QoS 1 PUBACK once the bus holds it); subscribers get every message of the
    bus that matches their filters, whichever protocol brought it.

    With `tls`, a second listener speaks MQTT over TLS: the same logins, and a client
    certificate in place of the key. Revoking a certificate in the gate hangs up its
    connections at once.
    """

    def __init__(
        self,
        ingress: Ingress,
        bus: Bus,
        access: ThingAccess,
        *,
        host: str = "0.0.0.0",  # noqa: S104 - a broker for devices on the plant network
        port: int = 1883,
        metrics_registry: CollectorRegistry,
        limits: BrokerLimits | None = None,
        tls: BrokerTls | None = None,
    ) -> None:
        super().__init__()
        self._limits = limits or BrokerLimits()
        metrics = MqttMetrics.create(metrics_registry)
        gate = tls.gate if tls is not None else None
        self._gateway = Gateway(ingress, access, metrics, self._limits, gate)
        self._bus = bus
        self._listener = Listener(self._gateway, self._hand_over, host=host, port=port)
        self._tls = tls
        self._tls_listener = (
            Listener(
                self._gateway,
                self._hand_over,
                host=tls.host or host,
                port=tls.port,
                tls=tls.context,
            )
            if tls is not None
            else None
        )
        self._amqtt: ThingBroker | None = None
        self._fan_out_task: asyncio.Task[None] | None = None
        self._started = False

    @property
    def ready(self) -> bool:
        """Accepting connections and forwarding bus messages to subscribers."""
        task = self._fan_out_task
        return self._started and task is not None and not task.done()

    @property
    def port(self) -> int:
        """The port listened on (the one the OS chose, when 0 was asked)."""
        return self._listener.port

    @property
    def tls_port(self) -> int | None:
        """The TLS listener's port (None without one)."""
        return self._tls_listener.port if self._tls_listener is not None else None

    async def _start(self, stack: AsyncExitStack) -> None:
        # Exit callbacks run last-in first-out: stop accepting, shut amqtt down (which
        # closes every connection), end half-done handshakes, close the bus
        # subscription, then wait for the connections to finish their last messages.
        tasks = await self.task_group()  # each connection runs a task in it
        subscription = await stack.enter_async_context(
            self._bus.subscribe([ALL_CHANNELS], max_queued=self._limits.max_fan_out_queued)
        )
        self._fan_out_task = tasks.create_task(self._fan_out(subscription), name="mqtt-fan-out")
        listeners = [self._listener]
        if self._tls_listener is not None:
            listeners.append(self._tls_listener)
        for listener in listeners:
            await listener.bind()
            stack.push_async_callback(listener.close)
        broker = ThingBroker(self._amqtt_config(), self._gateway)
        self._gateway.bind(tasks, broker)
        await broker.start()
        self._amqtt = broker
        stack.push_async_callback(broker.shutdown)
        if self._tls is not None:
            stack.callback(self._tls.gate.on_revoked(self._gateway.revoked))
        for listener in listeners:
            await listener.start()
            stack.push_async_callback(listener.stop_accepting)
        self._started = True

    async def aclose(self) -> None:
        self._started = False
        self._gateway.stopping = True
        await super().aclose()
        self._amqtt = None

    def _amqtt_config(self) -> BrokerConfig:
        listener = ListenerConfig(type=ListenerType.EXTERNAL, bind=f":{self.port}")
        return BrokerConfig(
            listeners={_LISTENER: listener},
            # Only ours: no anonymous access, no $SYS topics, no packet logging.
            plugins={plugin_path(): {"gateway": self._gateway}},
            session_expiry_interval=self._limits.session_expiry,
        )

    async def _hand_over(self, reader: ReaderAdapter, writer: StreamWriterAdapter) -> None:
        broker = self._amqtt
        if broker is not None and self._started:
            await broker.external_connected(reader, writer, _LISTENER)

    async def _fan_out(self, subscription: Subscription) -> None:
        try:
            async for envelope in subscription:
                try:
                    self._gateway.fan_out(envelope)
                except Exception:
                    logger.exception("cannot hand message %s to MQTT subscribers", envelope.id)
        except Exception:
            # `ready` turns false; the health check reports it.
            logger.exception("the MQTT broker lost its bus subscription")
