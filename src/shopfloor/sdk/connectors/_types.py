"""The values every connector deals in: readings, their quality, link states, options."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from shopfloor.core import UrlOptions

__all__ = ["ConnectorOptions", "ConnectorState", "Quality", "Reading"]


class Quality(enum.StrEnum):
    """How far a value can be trusted, as OPC UA status codes say it for every protocol."""

    GOOD = "good"
    UNCERTAIN = "uncertain"  # the machine has a value but doubts it (a stale sensor)
    BAD = "bad"  # no usable value: the machine reports a fault, or the field is absent


class ConnectorState(enum.StrEnum):
    """The link to the machine, as `Connector.on_state` and `states()` report it.

    connecting ──▶ connected ──▶ lost ──▶ connected ...  and closed, once, at the end.
    Failed attempts leave the state as it is: `connecting` before the first link,
    `lost` after one broke, until an attempt succeeds.
    """

    CONNECTING = "connecting"
    CONNECTED = "connected"
    LOST = "lost"
    CLOSED = "closed"


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Reading:
    """One value of one address, with the time the machine (or, failing that, the
    connector) took it and its quality."""

    address: str
    value: Any
    timestamp: datetime = field(default_factory=_now)
    quality: Quality = Quality.GOOD

    @property
    def good(self) -> bool:
        return self.quality is Quality.GOOD


#: URL options every connector takes, with their defaults.
DEFAULT_TIMEOUT = 5.0
DEFAULT_HEARTBEAT = 5.0
DEFAULT_RECONNECT_DELAY = 0.2
DEFAULT_RECONNECT_MAX = 10.0


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectorOptions:
    """Timing every connector shares (URL options of the same names).

    `timeout`: seconds for one request, and for one connection attempt; a request
    made while the link is down waits that long for it to come back.
    `heartbeat`: seconds between liveness checks while connected (0: none).
    `reconnect_delay` and `reconnect_max`: the first and the longest ceiling of the
    jittered wait between connection attempts (it doubles after each failure).
    """

    timeout: float = DEFAULT_TIMEOUT
    heartbeat: float = DEFAULT_HEARTBEAT
    reconnect_delay: float = DEFAULT_RECONNECT_DELAY
    reconnect_max: float = DEFAULT_RECONNECT_MAX

    def __post_init__(self) -> None:
        if self.timeout <= 0 or self.heartbeat < 0:
            raise ValueError("connector options need timeout > 0 and heartbeat >= 0")
        if not 0 < self.reconnect_delay <= self.reconnect_max:
            raise ValueError("connector options need 0 < reconnect_delay <= reconnect_max")

    @classmethod
    def from_url(cls, parsed: UrlOptions) -> ConnectorOptions:
        delay = parsed.number("reconnect_delay", DEFAULT_RECONNECT_DELAY, minimum=0.001)
        ceiling = parsed.number("reconnect_max", max(delay, DEFAULT_RECONNECT_MAX), minimum=delay)
        return cls(
            timeout=parsed.number("timeout", DEFAULT_TIMEOUT, minimum=0.001),
            heartbeat=parsed.number("heartbeat", DEFAULT_HEARTBEAT, minimum=0),
            reconnect_delay=delay,
            reconnect_max=ceiling,
        )
