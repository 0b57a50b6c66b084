"""Helpers of the bridge tests: a platform assembled in-process next to a real Mosquitto.

The platform is the real one, minus HTTP: a registry on SQLite in the test's folder,
`ThingAccess`, `Ingress` and a `MemoryBus` that records what it took (and can be made
slow or refuse for a while, as a busy consumer side would). This module holds no tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from mosquitto_testkit import BRIDGE_PASSWORD, RunningBroker
from prometheus_client import CollectorRegistry

from shopfloor.adapters.mosquitto import MosquittoOptions, MosquittoService
from shopfloor.auth import ThingAccess, ThingKeys
from shopfloor.ingress import Ingress, IngressMetrics
from shopfloor.messaging import Bus, BusFull, Envelope, MemoryBus
from shopfloor.registry import Channel, Org, Permission, Registry, Thing

#: Quick reconnects and retries, so recovery tests take little time.
FAST = MosquittoOptions(timeout=5.0, backoff_base=0.02, backoff_cap=0.2, stop_timeout=5.0)
SENML = b'[{"bn":"press-1/","n":"pressure","u":"bar","v":4.2}]'


class RecordingBus(MemoryBus):
    """A memory bus that keeps every envelope it took, in order.

    `slow(delay)` makes publishing take `delay` seconds, one publish at a time (a
    consumer side that cannot keep up); `refuse_every(n)` makes every n-th publish
    raise `BusFull`, which Ingress turns into a 503. `hold(marker)` blocks publishes of
    payloads containing `marker` until `release()`.
    """

    def __init__(self) -> None:
        super().__init__()
        self.taken: list[Envelope] = []
        self._changed = asyncio.Condition()
        self._delay = 0.0
        self._refuse_every = 0
        self._calls = 0
        self.refused = 0
        self._slow_lane = asyncio.Lock()
        self._held: bytes | None = None
        self._release = asyncio.Event()

    def slow(self, delay: float) -> None:
        self._delay = delay

    def refuse_every(self, n: int) -> None:
        self._refuse_every = n

    def hold(self, marker: bytes) -> None:
        self._held = marker
        self._release.clear()

    def release(self) -> None:
        self._release.set()

    async def publish(self, envelope: Envelope) -> None:
        if self._held is not None and self._held in envelope.payload:
            await self._release.wait()
        if self._delay:
            async with self._slow_lane:
                await asyncio.sleep(self._delay)
        self._calls += 1
        if self._refuse_every and self._calls % self._refuse_every == 0:
            self.refused += 1
            raise BusFull("the test makes the bus refuse now and then")
        await super().publish(envelope)
        self.taken.append(envelope)
        async with self._changed:
            self._changed.notify_all()

    async def publish_many(self, envelopes: Sequence[Envelope]) -> list[Exception | None]:
        # Every message through `publish` above (concurrently, as a network bus does).
        return await Bus.publish_many(self, envelopes)

    def with_payload(self, payload: bytes) -> list[Envelope]:
        return [e for e in self.taken if e.payload == payload]

    async def wait_for(
        self, predicate: Callable[[Envelope], bool], within: float = 10.0
    ) -> Envelope:
        def found() -> Envelope | None:
            return next((e for e in self.taken if predicate(e)), None)

        async with asyncio.timeout(within), self._changed:
            await self._changed.wait_for(lambda: found() is not None)
        envelope = found()
        assert envelope is not None
        return envelope

    async def wait_until(self, condition: Callable[[], bool], within: float = 30.0) -> None:
        async with asyncio.timeout(within), self._changed:
            await self._changed.wait_for(condition)


@dataclass
class Plant:
    """The in-process platform, one organisation and one channel."""

    broker: RunningBroker
    registry: Registry
    bus: RecordingBus
    ingress: Ingress
    org: Org
    channel: Channel
    services: list[MosquittoService] = field(default_factory=list)

    async def thing(self, name: str, *permissions: Permission) -> tuple[Thing, str]:
        """A new thing, connected to the channel with these permissions (none: not at all)."""
        thing, key = await self.registry.create_thing(self.org.id, name=name)
        if permissions:
            await self.registry.connect(self.org.id, self.channel.id, thing.id, permissions)
        return thing, key

    def topic(self, subtopic: str = "", channel: str | None = None) -> str:
        base = f"channels/{channel or self.channel.id}/messages"
        return f"{base}/{subtopic}" if subtopic else base

    @contextlib.asynccontextmanager
    async def service(
        self, options: MosquittoOptions = FAST
    ) -> AsyncIterator[tuple[MosquittoService, CollectorRegistry]]:
        """A running MosquittoService, entered once it is ready."""
        metrics = CollectorRegistry()
        service = MosquittoService(
            self.broker.admin_url, BRIDGE_PASSWORD, self.registry, self.ingress, self.bus,
            metrics_registry=metrics, options=options,
        )  # fmt: skip
        async with service:
            self.services.append(service)
            await eventually(lambda: service.ready)
            yield service, metrics


@contextlib.asynccontextmanager
async def in_process_platform(tmp_path: Path, broker: RunningBroker) -> AsyncIterator[Plant]:
    registry = await Registry.open(f"sqlite:///{tmp_path / 'registry.db'}", ThingKeys(b"k" * 32))
    try:
        async with RecordingBus() as bus:
            ingress = Ingress(
                ThingAccess(registry), bus, IngressMetrics.create(CollectorRegistry()),
                max_payload_bytes=64 * 1024,
            )  # fmt: skip
            org = await registry.create_org("plant")
            channel = await registry.create_channel(org.id, name="line-1")
            yield Plant(broker, registry, bus, ingress, org, channel)
    finally:
        await registry.close()


async def eventually(
    condition: Callable[[], bool | Awaitable[bool]], within: float = 10.0, every: float = 0.02
) -> None:
    """Poll until `condition` holds; fail after `within` seconds."""
    deadline = time.monotonic() + within
    while True:
        result = condition()
        if not isinstance(result, bool):
            result = await result
        if result:
            return
        assert time.monotonic() < deadline, "the condition did not hold in time"
        await asyncio.sleep(every)


def sample(metrics: CollectorRegistry, name: str, **labels: str) -> float:
    return metrics.get_sample_value(name, labels) or 0.0
