"""NATS JetStream: a shell's topic is one stream with a subject per partition.

`nats://host:4222?prefix=aas&stream_prefix=AAS&replicas=1`. The topic
`aas.<readable>.<hash>` is the stream `AAS_aas_<readable>_<hash>` (stream names take no
dots) holding `<prefix>.<topic>.0` and `<prefix>.<topic>.1`. One stream per shell, not
one for all: a shell's log is kept, limited and deleted on its own (as a Kafka topic
is), and reading one partition from the start never scans the other shells' messages.
The key travels in the `Aas-Key` header; the offset of a record is its stream sequence
(growing within a partition, but with gaps where the other partition's records are).
Readers are ordered consumers (no acks, no durable state on the server, resumed at the
next sequence after a reconnect), from the first message on.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from typing import TYPE_CHECKING, Self

from shopfloor.core import UrlOptions, lazy_import

from .._errors import AasUnavailable, InvalidTransportUrl
from ._transport import PARTITIONS, Record, Transport

if TYPE_CHECKING:
    import nats
    import nats.errors
    import nats.js.api
    import nats.js.errors
    from nats.aio.client import Client
    from nats.aio.msg import Msg
    from nats.js import JetStreamContext
else:
    nats = lazy_import("nats")  # imported when the transport first connects

__all__ = ["NatsTransport"]

KEY_HEADER = "Aas-Key"


class NatsTransport(Transport, scheme="nats"):
    def __init__(
        self, servers: list[str], *, prefix: str, stream_prefix: str, replicas: int
    ) -> None:
        self.servers = servers
        self.prefix = prefix
        self.stream_prefix = stream_prefix
        self.replicas = replicas
        self._nc: Client | None = None
        self._js: JetStreamContext | None = None
        self._streams: set[str] = set()

    @classmethod
    def from_url(cls, url: str) -> Self:
        options = UrlOptions(
            url, schemes=("nats",), what="AAS transport URL", error=InvalidTransportUrl
        )
        hosts = [h for h in options.parts.netloc.split(",") if h]
        if not hosts:
            raise InvalidTransportUrl("a nats:// transport URL names at least one host:port")
        prefix = options.text("prefix", "aas")
        stream_prefix = options.text("stream_prefix", "AAS")
        replicas = options.integer("replicas", 1, minimum=1, maximum=5)
        options.finish()
        return cls(
            [f"nats://{h}" for h in hosts],
            prefix=prefix,
            stream_prefix=stream_prefix,
            replicas=replicas,
        )

    def stream(self, topic: str) -> str:
        return f"{self.stream_prefix}_{topic.replace('.', '_')}"

    def subject(self, topic: str, partition: int) -> str:
        return f"{self.prefix}.{topic}.{partition}"

    async def open(self) -> None:
        try:
            self._nc = await nats.connect(
                servers=self.servers,
                name="shopfloor-aas",
                reconnect_time_wait=1,
                max_reconnect_attempts=-1,
                connect_timeout=5,
                allow_reconnect=True,
            )
        except (OSError, nats.errors.Error) as exc:
            raise AasUnavailable(f"NATS at {','.join(self.servers)} is not reachable") from exc
        self._js = self._nc.jetstream()

    async def close(self) -> None:
        nc, self._nc, self._js = self._nc, None, None
        if nc is not None:
            await nc.close()

    def _jetstream(self) -> JetStreamContext:
        if self._js is None:
            raise AasUnavailable("the NATS transport is not open")
        return self._js

    async def ensure_topic(self, topic: str) -> None:
        stream = self.stream(topic)
        if stream in self._streams:
            return
        js = self._jetstream()
        config = nats.js.api.StreamConfig(
            name=stream,
            subjects=[self.subject(topic, p) for p in PARTITIONS],
            num_replicas=self.replicas,
        )
        try:
            try:
                await js.stream_info(stream)
            except nats.js.errors.NotFoundError:
                await js.add_stream(config)
        except (nats.errors.Error, OSError) as exc:
            raise AasUnavailable(f"cannot create the NATS stream {stream}: {exc}") from exc
        self._streams.add(stream)

    async def publish(self, topic: str, partition: int, key: str, value: bytes) -> None:
        await self.ensure_topic(topic)
        try:
            await self._jetstream().publish(
                self.subject(topic, partition),
                value,
                stream=self.stream(topic),
                headers={KEY_HEADER: key},
            )
        except (nats.errors.Error, OSError) as exc:
            raise AasUnavailable(f"cannot publish to the NATS stream of {topic}: {exc}") from exc

    async def snapshot(self, topic: str, partition: int) -> list[Record]:
        await self.ensure_topic(topic)
        subject = self.subject(topic, partition)
        try:
            info = await self._jetstream().stream_info(self.stream(topic), subjects_filter=subject)
        except (nats.errors.Error, OSError) as exc:
            raise AasUnavailable(f"cannot read the NATS stream of {topic}: {exc}") from exc
        if not (info.state.subjects or {}).get(subject):
            return []
        found: list[Record] = []
        async for msg in self._messages(topic, partition):
            found.append(_record(msg))
            if msg.metadata.num_pending == 0:
                break
        return found

    async def read(self, topic: str, partition: int) -> AsyncGenerator[Record, None]:
        await self.ensure_topic(topic)
        async for msg in self._messages(topic, partition):
            yield _record(msg)

    async def _messages(self, topic: str, partition: int) -> AsyncIterator[Msg]:
        try:
            subscription = await self._jetstream().subscribe(
                self.subject(topic, partition),
                stream=self.stream(topic),
                ordered_consumer=True,
                deliver_policy=nats.js.api.DeliverPolicy.ALL,
            )
        except (nats.errors.Error, OSError) as exc:
            raise AasUnavailable(f"cannot read the NATS stream of {topic}: {exc}") from exc
        try:
            async for msg in subscription.messages:
                yield msg
        finally:
            await subscription.unsubscribe()


def _record(msg: Msg) -> Record:
    return Record(
        int(msg.metadata.sequence.stream), (msg.headers or {}).get(KEY_HEADER, ""), msg.data
    )
