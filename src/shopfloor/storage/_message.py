"""The row a store keeps for each SenML record of each message."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from shopfloor.messaging._envelope import Envelope
from shopfloor.senml import EARLIEST_TIME, LATEST_TIME, Record

__all__ = [
    "EARLIEST_TIME",
    "LATEST_TIME",
    "StoredMessage",
    "finite_or_none",
    "from_micros",
    "stored_messages",
    "to_micros",
]

_MICROS = 1_000_000
# EARLIEST_TIME and LATEST_TIME are defined once, by the normalizer that refuses records
# outside them; every store keeps this range so that a batch is storable everywhere or
# nowhere.


def to_micros(seconds: float) -> int:
    """Seconds since the epoch as whole microseconds, the precision every store keeps.

    Stores and query bounds quantise through this one function, so a record at time `t`
    and a bound `from=t` land on the same microsecond in every backend.
    """
    return round(seconds * _MICROS)


def from_micros(micros: int) -> float:
    # True division is correctly rounded, so `from_micros(to_micros(t)) == t` for any
    # `t` written with at most six decimals.
    return micros / _MICROS


def finite_or_none(number: float | None) -> float | None:
    """NaN and infinities are stored as absent by every store: InfluxDB cannot hold them,
    SQLite turns NaN into NULL, and JSON readers could not render them."""
    return number if number is None or math.isfinite(number) else None


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredMessage:
    """One stored record, with the envelope fields of the message it came from.

    `(message_id, seq)` identifies it: `seq` is the record's index in its message, so a
    redelivered message maps onto the same rows. `time` is seconds since the epoch;
    stores keep it to the microsecond. A `value` or `sum` that is NaN or infinite is
    stored as absent.

    Rows of an aggregated query reuse this shape: one row per `(name, bucket)` with
    `time` = bucket start, `value` = the aggregate, `channel`/`subtopic`/`publisher`
    echoing the query filters ("" when not filtered), and empty `protocol`/`message_id`.
    """

    channel: str
    subtopic: str
    publisher: str
    protocol: str
    message_id: str
    seq: int
    name: str
    unit: str | None = None
    time: float
    value: float | None = None
    string_value: str | None = None
    bool_value: bool | None = None
    data_value: str | None = None
    sum: float | None = None

    def to_reader_json(self) -> dict[str, Any]:
        """The message object of the readers API (SPEC "Readers"); absent kinds are left out."""
        out: dict[str, Any] = {
            "channel": self.channel,
            "subtopic": self.subtopic,
            "publisher": self.publisher,
            "protocol": self.protocol,
            "name": self.name,
            "unit": self.unit,
            "time": self.time,
        }
        if self.value is not None:
            out["value"] = self.value
        if self.string_value is not None:
            out["string_value"] = self.string_value
        if self.bool_value is not None:
            out["bool_value"] = self.bool_value
        if self.data_value is not None:
            out["data_value"] = self.data_value
        out["sum"] = self.sum
        return out


def stored_messages(envelope: Envelope, records: Iterable[Record]) -> list[StoredMessage]:
    """The rows to store for one message: one per record, `seq` = index in the message."""
    return [
        StoredMessage(
            channel=envelope.channel,
            subtopic=envelope.subtopic,
            publisher=envelope.publisher,
            protocol=envelope.protocol,
            message_id=envelope.id,
            seq=seq,
            name=record.name,
            unit=record.unit,
            time=record.time,
            value=record.value,
            string_value=record.string_value,
            bool_value=record.bool_value,
            data_value=record.data_value,
            sum=record.sum,
        )
        for seq, record in enumerate(records)
    ]
