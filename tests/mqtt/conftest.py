"""A plant (registry, thing access, memory bus, ingress) with the embedded broker on a free port."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiomqtt
import pytest
from paho.mqtt.reasoncodes import ReasonCode
from prometheus_client import CollectorRegistry

from shopfloor.adapters.mqtt import BrokerLimits, BrokerTls, EmbeddedBroker
from shopfloor.auth import ThingAccess, ThingKeys
from shopfloor.ingress import Ingress, IngressMetrics
from shopfloor.messaging import Envelope, MemoryBus
from shopfloor.registry import Permission, Registry

PUBLISH = (Permission.PUBLISH,)
SUBSCRIBE = (Permission.SUBSCRIBE,)
BOTH = (Permission.PUBLISH, Permission.SUBSCRIBE)

#: name → permissions on the plant's channel (None: not connected at all)
THINGS: dict[str, tuple[Permission, ...] | None] = {
    "press": PUBLISH,
    "reader": SUBSCRIBE,
    "robot": BOTH,
    "stranger": None,
}


@dataclass
class Plant:
    registry: Registry
    access: ThingAccess
    ingress: Ingress
    bus: MemoryBus
    broker: EmbeddedBroker
    metrics: CollectorRegistry
    org: str
    channel: str
    things: dict[str, tuple[str, str]] = field(default_factory=dict)  # name → (id, key)

    def client(self, name: str, *, key: str | None = None, **options: Any) -> aiomqtt.Client:
        thing_id, thing_key = self.things[name]
        return mqtt_client(
            self.broker.port, username=thing_id, password=key or thing_key, **options
        )

    def topic(self, subtopic: str = "", channel: str | None = None) -> str:
        base = f"channels/{channel or self.channel}/messages"
        return f"{base}/{subtopic}" if subtopic else base

    def errors(self, channel: str | None = None) -> str:
        return self.topic("_errors", channel)

    def rejected(self, code: str) -> float:
        value = self.metrics.get_sample_value("shopfloor_mqtt_rejected_total", {"code": code})
        return value or 0.0


def mqtt_client(port: int, **options: Any) -> aiomqtt.Client:
    options.setdefault("timeout", 10)
    return aiomqtt.Client("127.0.0.1", port, protocol=aiomqtt.ProtocolVersion.V311, **options)


@asynccontextmanager
async def running_plant(
    tmp_path: Path,
    *,
    bus: MemoryBus | None = None,
    limits: BrokerLimits | None = None,
    tls: BrokerTls | None = None,
) -> AsyncIterator[Plant]:
    registry = await Registry.open(f"sqlite:///{tmp_path / 'registry.db'}", ThingKeys(b"k" * 32))
    try:
        access = ThingAccess(registry)
        org = await registry.create_org("Plant")
        channel = await registry.create_channel(org.id, name="telemetry")
        things = {}
        for name, permissions in THINGS.items():
            thing, key = await registry.create_thing(org.id, name=name)
            if permissions:
                await registry.connect(org.id, channel.id, thing.id, permissions)
            things[name] = (thing.id, key)
        metrics = CollectorRegistry()
        async with bus or MemoryBus() as opened:
            ingress = Ingress(
                access, opened, IngressMetrics.create(metrics), max_payload_bytes=64 * 1024
            )
            broker = EmbeddedBroker(
                ingress,
                opened,
                access,
                host="127.0.0.1",
                port=0,
                metrics_registry=metrics,
                limits=limits,
                tls=tls,
            )
            async with broker:
                yield Plant(
                    registry, access, ingress, opened, broker, metrics, org.id, channel.id, things
                )
    finally:
        await registry.close()


@pytest.fixture
async def plant(tmp_path: Path) -> AsyncIterator[Plant]:
    async with running_plant(tmp_path) as running:
        yield running


@asynccontextmanager
async def bus_tap(bus: MemoryBus) -> AsyncIterator[asyncio.Queue[Envelope]]:
    """Every envelope published on the bus while open, in a queue."""
    received: asyncio.Queue[Envelope] = asyncio.Queue()

    async def pump() -> None:
        async for envelope in subscription:
            received.put_nowait(envelope)

    async with bus.subscribe(["channels.>"]) as subscription, asyncio.TaskGroup() as tasks:
        task = tasks.create_task(pump(), name="bus-tap")
        try:
            yield received
        finally:
            task.cancel()


async def next_message(client: aiomqtt.Client) -> aiomqtt.Message:
    async with asyncio.timeout(10):
        return await anext(client.messages)


async def next_json(client: aiomqtt.Client) -> Any:
    message = await next_message(client)
    assert isinstance(message.payload, bytes | bytearray)
    return json.loads(message.payload)


async def wait_until(condition: Callable[[], bool | Awaitable[bool]]) -> None:
    """Poll a condition with a deadline (for state with no event to wait on)."""
    async with asyncio.timeout(10):
        while True:
            result = condition()
            if not isinstance(result, bool):
                result = await result
            if result:
                return
            await asyncio.sleep(0.01)


def return_codes(granted: tuple[int, ...] | list[ReasonCode]) -> list[int]:
    """The SUBACK return codes (granted QoS, or 0x80 for a failure)."""
    return [code if isinstance(code, int) else code.value for code in granted]
