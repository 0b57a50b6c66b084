"""InfluxDB 1.x line protocol and InfluxQL text for stored messages: pure functions, no I/O.

Point identity. InfluxDB keeps one point per (measurement, tag set, timestamp): a
second write with the same three replaces the first. Records are kept at microsecond
precision, so the three sub-microsecond digits of the nanosecond timestamp are free;
they and a 16-valued tag `slot` are derived from `(message_id, seq)` only:

    h = blake2b-64(message_id)
    nanoseconds digits = (h + seq) mod 1000
    slot               = (h div 1000 + seq div 1000) mod 16

* A redelivered record (same message_id and seq) gets the same tags and timestamp, so
  it overwrites itself with identical values: it is stored once.
* Records of one message never collide: equal names and times within a message
  differ in `seq`, which moves the digits (and the slot past 1,000), so up to 16,000
  records of one message may share name and microsecond.
* Records of two different messages with the same channel, subtopic, publisher,
  protocol, name and microsecond collide only if their ids hash to the same
  (digits, slot): a chance of 1 in 16,000 per such pair. This is a probability, not a
  certainty; `colliding_records` reports collisions it sees inside one batch.

Tag values are stored with `%`, `\\`, tab, CR and LF percent-encoded: line protocol
cannot carry the last three in tags and treats backslashes inconsistently across
versions. SenML names (RFC 8428 section 4.5.1) never contain them, so the stored names
stay readable in other InfluxDB tools. Empty tags are left out, as InfluxDB does anyway,
and read back as "". Line protocol has no NaN or infinity: such a `value` or `sum` is
left out of its point.
"""

from __future__ import annotations

import functools
import hashlib
import math
import re
from collections.abc import Iterable, Iterator, Sequence
from decimal import Decimal
from typing import Final

from shopfloor.storage._message import StoredMessage, to_micros

__all__ = [
    "MEASUREMENT",
    "TAGS",
    "colliding_records",
    "decode_tag",
    "encode_lines",
    "encode_tag",
    "influxql_number",
    "influxql_string",
    "point_key",
]

MEASUREMENT: Final = "messages"
TAGS: Final = ("channel", "subtopic", "publisher", "name", "protocol")
SLOTS: Final = 16
_DIGITS: Final = 1000

_TAG_UNSAFE: Final = re.compile(r"[%\\\t\r\n]")
_TAG_ENCODED: Final = re.compile(r"%(25|5C|09|0D|0A)")
_LINE_SPECIAL: Final = re.compile(r"([ ,=])")


def encode_tag(value: str) -> str:
    """The stored form of a tag value (what InfluxQL filters must compare against)."""
    return _TAG_UNSAFE.sub(lambda m: f"%{ord(m.group()):02X}", value)


def decode_tag(stored: str) -> str:
    return _TAG_ENCODED.sub(lambda m: chr(int(m.group(1), 16)), stored)


def _tag(value: str) -> str:
    # After encode_tag no backslash is left, so escaping space, comma and equals sign
    # with a backslash is unambiguous for every InfluxDB version.
    return _LINE_SPECIAL.sub(r"\\\1", encode_tag(value))


def _string_field(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


@functools.lru_cache(maxsize=65_536)
def _id_hash(message_id: str) -> int:
    # Cached: the records of one message share their id, and a batch holds many records.
    digest = hashlib.blake2b(message_id.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def point_key(message: StoredMessage) -> tuple[str, int]:
    """The `slot` tag and nanosecond timestamp of a record (see the module docstring)."""
    hashed = _id_hash(message.message_id)
    nanos = (hashed + message.seq) % _DIGITS
    slot = (hashed // _DIGITS + message.seq // _DIGITS) % SLOTS
    return format(slot, "x"), to_micros(message.time) * 1000 + nanos


@functools.lru_cache(maxsize=16_384)
def _series(
    channel: str, subtopic: str, publisher: str, name: str, protocol: str
) -> tuple[str, str]:
    """Measurement and tags around the slot tag, in key order; series repeat in a batch."""
    tags = (("channel", channel), ("name", name), ("protocol", protocol), ("publisher", publisher))
    head = [MEASUREMENT, *(f"{key}={_tag(value)}" for key, value in tags if value)]
    return ",".join(head), f",subtopic={_tag(subtopic)}" if subtopic else ""


def _line(message: StoredMessage) -> str:
    slot, timestamp = point_key(message)
    head, tail = _series(
        message.channel, message.subtopic, message.publisher, message.name, message.protocol
    )
    fields = [f"message_id={_string_field(message.message_id)}", f"seq={message.seq}i"]
    if message.unit is not None:
        fields.append(f"unit={_string_field(message.unit)}")
    if message.value is not None and math.isfinite(message.value):
        fields.append(f"value={float(message.value)!r}")
    if message.sum is not None and math.isfinite(message.sum):
        fields.append(f"sum={float(message.sum)!r}")
    if message.string_value is not None:
        fields.append(f"string_value={_string_field(message.string_value)}")
    if message.bool_value is not None:
        fields.append(f"bool_value={'true' if message.bool_value else 'false'}")
    if message.data_value is not None:
        fields.append(f"data_value={_string_field(message.data_value)}")
    return f"{head},slot={slot}{tail} {','.join(fields)} {timestamp}"


def encode_lines(batch: Sequence[StoredMessage], *, chunk: int) -> Iterator[bytes]:
    """Line-protocol bodies of at most `chunk` points each."""
    for start in range(0, len(batch), chunk):
        yield "\n".join(_line(message) for message in batch[start : start + chunk]).encode()


def colliding_records(batch: Iterable[StoredMessage]) -> list[tuple[StoredMessage, StoredMessage]]:
    """Pairs of different records in `batch` that InfluxDB would store as one point."""
    seen: dict[tuple[object, ...], StoredMessage] = {}
    collisions = []
    for message in batch:
        slot, timestamp = point_key(message)
        key = (*(getattr(message, tag) for tag in TAGS), slot, timestamp)
        first = seen.setdefault(key, message)
        if (first.message_id, first.seq) != (message.message_id, message.seq):
            collisions.append((first, message))
    return collisions


def influxql_string(value: str) -> str:
    """A single-quoted InfluxQL string literal."""
    escaped = value.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n")
    return f"'{escaped}'"


def influxql_number(value: float) -> str:
    # InfluxQL number literals have no exponent form; Decimal writes the exact value out.
    return format(Decimal(repr(float(value))), "f")
