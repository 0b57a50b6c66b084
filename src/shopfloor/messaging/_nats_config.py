"""Settings of the NATS JetStream bus, read from its URL.

`nats://[user:password@]host:port[,host2:port2]?option=value&...`

| option            | default     | meaning                                                   |
|-------------------|-------------|-----------------------------------------------------------|
| `stream`          | `SHOPFLOOR` | JetStream stream holding the messages                     |
| `prefix`          | (none)      | subject prefix: subjects are `<prefix>.channels.>`        |
| `max_age`         | `86400`     | seconds a message is kept in the stream (0: no limit)     |
| `max_bytes`       | `-1`        | stream size limit in bytes (-1: no limit)                 |
| `max_msgs`        | `-1`        | stream message count limit (-1: no limit)                 |
| `discard`         | `old`       | at a limit: `old` drops the oldest, `new` refuses          |
|                   |             | publishes with `BusFull`                                  |
| `storage`         | `file`      | `file` or `memory`                                        |
| `replicas`        | `1`         | stream replicas in a cluster                              |
| `duplicate_window`| `120`       | seconds within which a repeated envelope id is ignored    |
| `ack_wait`        | `30`        | seconds before an unacknowledged delivery is redelivered  |
| `max_ack_pending` | `4096`      | unacknowledged deliveries per durable consumer            |
| `max_inflight`    | `10000`     | publishes awaiting their PubAck; beyond: `BusFull`        |
| `publish_timeout` | `5`         | seconds to wait for a PubAck; beyond: `BusUnavailable`    |
| `connect_timeout` | `2`         | whole seconds per connection attempt                      |
| `max_queued`      | `1024`      | default queue size of a fan-out subscription              |
| `name`            | `shopfloor` | connection name shown in NATS monitoring                  |
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from ._errors import InvalidBusUrl
from ._subjects import CHANNELS_ROOT, validate_name, validate_prefix, with_prefix
from ._url import BusUrl

__all__ = ["NatsBusConfig"]


@dataclass(frozen=True, kw_only=True)
class NatsBusConfig:
    """Where and how the bus keeps messages; see the module docstring for each option."""

    # No slots: `from_url` reads the defaults back from the class attributes.
    servers: tuple[str, ...] = ("nats://127.0.0.1:4222",)
    stream: str = "SHOPFLOOR"
    prefix: str = ""
    max_age: float = 86_400.0
    max_bytes: int = -1
    max_msgs: int = -1
    discard: str = "old"
    storage: str = "file"
    replicas: int = 1
    duplicate_window: float = 120.0
    ack_wait: float = 30.0
    max_ack_pending: int = 4096
    max_inflight: int = 10_000
    publish_timeout: float = 5.0
    connect_timeout: int = 2
    max_queued: int = 1024
    name: str = "shopfloor"

    def __post_init__(self) -> None:
        if not self.servers:
            raise InvalidBusUrl("a NATS bus needs at least one server")
        try:
            validate_name(self.stream, what="stream name")
            validate_prefix(self.prefix)
        except ValueError as exc:
            raise InvalidBusUrl(str(exc)) from exc

    @property
    def stream_subjects(self) -> str:
        return with_prefix(f"{CHANNELS_ROOT}.>", self.prefix)

    @classmethod
    def from_url(cls, url: str) -> NatsBusConfig:
        parsed = BusUrl(url, schemes=("nats",))
        if parsed.parts.path not in ("", "/"):
            raise InvalidBusUrl(f"a NATS bus URL has no path: {parsed.redacted!r}")
        config = cls(
            servers=_servers(parsed.parts.netloc),
            stream=parsed.text("stream", cls.stream),
            prefix=parsed.text("prefix", cls.prefix),
            max_age=parsed.number("max_age", cls.max_age, minimum=0),
            max_bytes=parsed.integer("max_bytes", cls.max_bytes, minimum=-1),
            max_msgs=parsed.integer("max_msgs", cls.max_msgs, minimum=-1),
            discard=parsed.choice("discard", cls.discard, ("old", "new")),
            storage=parsed.choice("storage", cls.storage, ("file", "memory")),
            replicas=parsed.integer("replicas", cls.replicas, minimum=1),
            duplicate_window=parsed.number("duplicate_window", cls.duplicate_window, minimum=0),
            ack_wait=parsed.number("ack_wait", cls.ack_wait, minimum=0.001),
            max_ack_pending=parsed.integer("max_ack_pending", cls.max_ack_pending, minimum=1),
            max_inflight=parsed.integer("max_inflight", cls.max_inflight, minimum=1),
            publish_timeout=parsed.number("publish_timeout", cls.publish_timeout, minimum=0.001),
            connect_timeout=parsed.integer("connect_timeout", cls.connect_timeout, minimum=1),
            max_queued=parsed.integer("max_queued", cls.max_queued, minimum=1),
            name=parsed.text("name", cls.name),
        )
        parsed.finish()
        return config


def _servers(netloc: str) -> tuple[str, ...]:
    """`user:pw@h1:4222,h2:4222` -> one server URL each, credentials applied to all."""
    credentials, at, hosts = netloc.rpartition("@")
    if not hosts:
        raise InvalidBusUrl("a NATS bus URL needs host:port")
    servers = []
    for host in hosts.split(","):
        if not host:
            raise InvalidBusUrl("a NATS bus URL has an empty server in its list")
        server = f"nats://{credentials}{at}{host}"
        try:
            urlsplit(server).port  # noqa: B018 - raises ValueError on a bad port
        except ValueError as exc:
            raise InvalidBusUrl(f"invalid NATS server {host!r}: {exc}") from exc
        servers.append(server)
    return tuple(servers)
