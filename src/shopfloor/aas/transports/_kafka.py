"""Kafka (aiokafka): a shell's topic is a Kafka topic with two partitions.

`kafka://host:9092[,host2:9092]?client_id=shopfloor-aas&replication=1&fetch_wait_ms=500`.
`fetch_wait_ms` is how long the broker may hold a fetch that finds no record (Kafka's
`fetch.max.wait.ms`): a broker answers as soon as a record arrives, but one that holds
every fetch to the end of that wait (Tansu does) makes each hop wait half of it on
average, so lower it there (docs/aas-protocol.md). Partitions are
assigned explicitly (`assign`, no consumer group, nothing committed), as the AAS
developer guide does: every reader starts at the earliest offset and the protocol
skips what it handled already. A topic that is missing is created with two
partitions and `replication` replicas; one that exists with fewer partitions is
refused.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from typing import TYPE_CHECKING, Self, TypeVar

from shopfloor.core import UrlOptions, lazy_import

from .._errors import AasUnavailable, InvalidTransportUrl
from ._transport import PARTITIONS, Record, Transport

if TYPE_CHECKING:
    import aiokafka
    import aiokafka.admin
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
    from aiokafka.admin import AIOKafkaAdminClient
else:
    aiokafka = lazy_import("aiokafka")  # imported when the transport first opens

__all__ = ["KafkaTransport"]

T = TypeVar("T")

#: The longest reading a partition back (at a start) may take.
SNAPSHOT_SECONDS = 60.0
#: How long one poll of a reader waits for records before it polls again (ms).
POLL_MS = 500
#: Kafka's own default `fetch.max.wait.ms`.
DEFAULT_FETCH_WAIT_MS = 500


class KafkaTransport(Transport, scheme="kafka"):
    def __init__(
        self,
        servers: list[str],
        *,
        client_id: str,
        replication: int,
        fetch_wait_ms: int = DEFAULT_FETCH_WAIT_MS,
    ) -> None:
        self.servers = servers
        self.client_id = client_id
        self.replication = replication
        self.fetch_wait_ms = fetch_wait_ms
        self._producer: AIOKafkaProducer | None = None
        self._admin: AIOKafkaAdminClient | None = None
        self._topics: set[str] = set()

    @classmethod
    def from_url(cls, url: str) -> Self:
        options = UrlOptions(
            url, schemes=("kafka",), what="AAS transport URL", error=InvalidTransportUrl
        )
        servers = [s for s in options.parts.netloc.split(",") if s]
        if not servers:
            raise InvalidTransportUrl("a kafka:// transport URL names at least one host:port")
        client_id = options.text("client_id", "shopfloor-aas")
        replication = options.integer("replication", 1, minimum=1)
        fetch_wait_ms = options.integer(
            "fetch_wait_ms", DEFAULT_FETCH_WAIT_MS, minimum=1, maximum=60_000
        )
        options.finish()
        return cls(
            servers, client_id=client_id, replication=replication, fetch_wait_ms=fetch_wait_ms
        )

    async def open(self) -> None:
        import aiokafka.admin  # not among the names the package imports itself

        try:
            self._admin = aiokafka.admin.AIOKafkaAdminClient(
                bootstrap_servers=self.servers, client_id=self.client_id
            )
            await self._admin.start()
            self._producer = aiokafka.AIOKafkaProducer(
                bootstrap_servers=self.servers, client_id=self.client_id, acks="all"
            )
            await self._producer.start()
        except aiokafka.errors.KafkaError as exc:
            await self.close()
            raise AasUnavailable(f"Kafka at {','.join(self.servers)} is not reachable") from exc

    async def close(self) -> None:
        producer, admin, self._producer, self._admin = self._producer, self._admin, None, None
        if producer is not None:
            await producer.stop()
        if admin is not None:
            await admin.close()

    async def ensure_topic(self, topic: str) -> None:
        if topic in self._topics:
            return
        admin = self._running(self._admin)
        import aiokafka.admin

        try:
            new = aiokafka.admin.NewTopic(
                topic, num_partitions=len(PARTITIONS), replication_factor=self.replication
            )
            await admin.create_topics([new])
        except aiokafka.errors.TopicAlreadyExistsError:
            pass
        except aiokafka.errors.KafkaError as exc:
            raise AasUnavailable(f"cannot create the Kafka topic {topic}: {exc}") from exc
        partitions = await self._partitions(topic)
        if len(partitions) < len(PARTITIONS):
            raise AasUnavailable(
                f"the Kafka topic {topic} has {len(partitions)} partitions; the AAS "
                f"protocol needs {len(PARTITIONS)}"
            )
        self._topics.add(topic)

    async def _partitions(self, topic: str) -> set[int]:
        producer = self._running(self._producer)
        try:
            await producer.client.force_metadata_update()
        except aiokafka.errors.KafkaError as exc:
            raise AasUnavailable(f"Kafka does not answer: {exc}") from exc
        return producer.client.cluster.partitions_for_topic(topic) or set()

    async def publish(self, topic: str, partition: int, key: str, value: bytes) -> None:
        producer = self._running(self._producer)
        try:
            await producer.send_and_wait(topic, value=value, key=key.encode(), partition=partition)
        except aiokafka.errors.KafkaError as exc:
            raise AasUnavailable(f"cannot publish to the Kafka topic {topic}: {exc}") from exc

    async def snapshot(self, topic: str, partition: int) -> list[Record]:
        found: list[Record] = []
        async with self._consumer() as consumer:
            tp = aiokafka.TopicPartition(topic, partition)
            consumer.assign([tp])
            try:
                end = (await consumer.end_offsets([tp]))[tp]
                await consumer.seek_to_beginning(tp)
                async with asyncio.timeout(SNAPSHOT_SECONDS):
                    while await consumer.position(tp) < end:
                        batches = await consumer.getmany(tp, timeout_ms=POLL_MS)
                        found.extend(_record(m) for m in batches.get(tp, []) if m.offset < end)
            except TimeoutError:
                raise AasUnavailable(
                    f"reading back the Kafka topic {topic} took over {SNAPSHOT_SECONDS} s"
                ) from None
            except aiokafka.errors.KafkaError as exc:
                raise AasUnavailable(f"cannot read the Kafka topic {topic}: {exc}") from exc
        return found

    async def read(self, topic: str, partition: int) -> AsyncGenerator[Record, None]:
        async with self._consumer() as consumer:
            tp = aiokafka.TopicPartition(topic, partition)
            consumer.assign([tp])
            await consumer.seek_to_beginning(tp)
            while True:
                try:
                    batches = await consumer.getmany(tp, timeout_ms=POLL_MS)
                except aiokafka.errors.KafkaError as exc:
                    raise AasUnavailable(f"cannot read the Kafka topic {topic}: {exc}") from exc
                for message in batches.get(tp, []):
                    yield _record(message)

    def _consumer(self) -> _Consumer:
        self._running(self._producer)
        return _Consumer(self.servers, self.client_id, self.fetch_wait_ms)

    @staticmethod
    def _running(client: T | None) -> T:
        if client is None:
            raise AasUnavailable("the Kafka transport is not open")
        return client


class _Consumer:
    """An AIOKafkaConsumer without a group (explicit assignment), started and stopped."""

    def __init__(self, servers: list[str], client_id: str, fetch_wait_ms: int) -> None:
        self._consumer = aiokafka.AIOKafkaConsumer(
            bootstrap_servers=servers,
            client_id=client_id,
            fetch_max_wait_ms=fetch_wait_ms,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
        )

    async def __aenter__(self) -> AIOKafkaConsumer:
        try:
            await self._consumer.start()
        except aiokafka.errors.KafkaError as exc:
            raise AasUnavailable(f"Kafka is not reachable: {exc}") from exc
        return self._consumer

    async def __aexit__(self, *exc_info: object) -> None:
        await self._consumer.stop()


def _record(message: object) -> Record:
    key = getattr(message, "key", None)
    value = getattr(message, "value", None)
    return Record(
        int(getattr(message, "offset", 0)),
        key.decode("utf-8", "replace") if isinstance(key, bytes) else "",
        value if isinstance(value, bytes) else b"",
    )
