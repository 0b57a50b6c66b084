"""The in-process transport: the default of one process and the twin tests use.

`memory://name` names a broker in this process: every transport created with the same
name shares its topics, also between event loops in different threads (the SyncCore
runs its own). Where it differs from Kafka: everything lives in memory until the
process ends (nothing is retained on disk, there is no size limit), `ensure_topic` is
not needed (publishing creates the topic), and `publish` cannot fail while open.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncGenerator
from typing import Self

from shopfloor.core import UrlOptions

from .._errors import AasUnavailable, InvalidTransportUrl
from ._transport import PARTITIONS, Record, Transport

__all__ = ["MemoryTransport"]


class _Broker:
    """The partitions of one named broker, guarded by a thread lock."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.logs: dict[tuple[str, int], list[Record]] = {}
        self.waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()

    def append(self, topic: str, partition: int, key: str, value: bytes) -> None:
        with self.lock:
            log = self.logs.setdefault((topic, partition), [])
            log.append(Record(len(log), key, value))
            waiters = list(self.waiters)
        for loop, event in waiters:
            if not loop.is_closed():
                loop.call_soon_threadsafe(event.set)

    def since(self, topic: str, partition: int, offset: int) -> list[Record]:
        with self.lock:
            return list(self.logs.get((topic, partition), [])[offset:])


_BROKERS: dict[str, _Broker] = {}
_BROKERS_LOCK = threading.Lock()


def _broker(name: str) -> _Broker:
    with _BROKERS_LOCK:
        return _BROKERS.setdefault(name, _Broker())


class MemoryTransport(Transport, scheme="memory"):
    def __init__(self, name: str = "default") -> None:
        self.name = name
        self._broker = _broker(name)
        self._open = False

    @classmethod
    def from_url(cls, url: str) -> Self:
        options = UrlOptions(
            url, schemes=("memory",), what="AAS transport URL", error=InvalidTransportUrl
        )
        options.finish()
        return cls(options.parts.netloc or "default")

    async def open(self) -> None:
        self._open = True

    async def close(self) -> None:
        self._open = False

    def _check(self, partition: int) -> None:
        if not self._open:
            raise AasUnavailable("the memory transport is closed")
        if partition not in PARTITIONS:
            raise ValueError(f"a topic has partitions {PARTITIONS}, not {partition}")

    async def ensure_topic(self, topic: str) -> None:
        self._check(0)

    async def publish(self, topic: str, partition: int, key: str, value: bytes) -> None:
        self._check(partition)
        self._broker.append(topic, partition, key, value)

    async def snapshot(self, topic: str, partition: int) -> list[Record]:
        self._check(partition)
        return self._broker.since(topic, partition, 0)

    async def read(self, topic: str, partition: int) -> AsyncGenerator[Record, None]:
        self._check(partition)
        waiter = (asyncio.get_running_loop(), asyncio.Event())
        with self._broker.lock:
            self._broker.waiters.add(waiter)
        offset = 0
        try:
            while True:
                waiter[1].clear()
                for record in self._broker.since(topic, partition, offset):
                    offset = record.offset + 1
                    yield record
                if not self._open:
                    raise AasUnavailable("the memory transport was closed")
                await waiter[1].wait()
        finally:
            with self._broker.lock:
                self._broker.waiters.discard(waiter)
