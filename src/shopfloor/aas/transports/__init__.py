"""Transports of the Manager ↔ Core protocol, chosen by URL: two-partition logs per shell.

transport = create_transport("kafka://127.0.0.1:9092")  # memory://name, nats://host:4222
async with transport:
    await transport.ensure_topic(topic)
    await transport.publish(topic, 1, "core-status", b"{...}")
    async with contextlib.aclosing(transport.read(topic, 0)) as records:
        async for record in records: ...
"""

from ._kafka import KafkaTransport
from ._memory import MemoryTransport
from ._nats import NatsTransport
from ._transport import PARTITIONS, Record, Transport, create_transport, transport_schemes

__all__ = [
    "PARTITIONS",
    "KafkaTransport",
    "MemoryTransport",
    "NatsTransport",
    "Record",
    "Transport",
    "create_transport",
    "transport_schemes",
]
