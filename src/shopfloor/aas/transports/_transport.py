"""The transport interface every backend implements, and the registry that creates one
from a URL (`memory://name`, `kafka://host:9092`, `nats://host:4222`).

A transport carries the topics of shells: each topic has two partitions, an ordered,
append-only log each (0 written by the Manager, 1 by the Core, docs/aas-protocol.md).
A record has a key, a value and an offset that grows within its partition.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import ClassVar, Self

from shopfloor.core import Backends, Opened, Pluggable

from .._errors import InvalidTransportUrl

__all__ = ["PARTITIONS", "Record", "Transport", "create_transport", "transport_schemes"]

#: Every topic has these two partitions.
PARTITIONS = (0, 1)

_BACKENDS: Backends[Transport] = Backends(
    "AAS transport", keyword="scheme", error=InvalidTransportUrl
)


@dataclass(frozen=True, slots=True)
class Record:
    offset: int
    key: str
    value: bytes


class Transport(Pluggable, Opened, registry=_BACKENDS):
    """Two-partition logs per shell. An async context manager: entering connects,
    leaving ends the readers and disconnects. Failures of the broker are
    `AasUnavailable`."""

    scheme: ClassVar[str]

    @classmethod
    @abstractmethod
    def from_url(cls, url: str) -> Self:
        """Create the backend from its URL; raise `InvalidTransportUrl` on bad options."""

    @abstractmethod
    async def open(self) -> None: ...

    @abstractmethod
    async def close(self) -> None:
        """Disconnect; safe to call twice."""

    @abstractmethod
    async def ensure_topic(self, topic: str) -> None:
        """Create the topic with its two partitions unless it exists."""

    @abstractmethod
    async def publish(self, topic: str, partition: int, key: str, value: bytes) -> None:
        """Return once the broker holds the record."""

    @abstractmethod
    async def snapshot(self, topic: str, partition: int) -> list[Record]:
        """Every record the partition holds now, oldest first."""

    @abstractmethod
    def read(self, topic: str, partition: int) -> AsyncGenerator[Record, None]:
        """Every record of the partition from the earliest on, then each new one as it
        comes, until the iterator is closed (use `contextlib.aclosing`)."""


def transport_schemes() -> tuple[str, ...]:
    return _BACKENDS.names()


def create_transport(url: str) -> Transport:
    """The transport named by the URL scheme."""
    return _BACKENDS.for_url(url).from_url(url)
