"""The flows' timestamps: ISO 8601 in UTC, made cheaply.

A run stamps its start, each task's start and end, and the flow's `updated`: several
stamps a run, a thousand runs a second. `datetime.now(UTC).isoformat()` costs about
3 µs; this formats the second once and the microseconds per call (about 0.4 µs), and
always writes the microseconds (`isoformat` leaves them out when they are 0), which
`datetime.fromisoformat` reads the same.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

__all__ = ["iso_at", "now_iso"]

_second = -1
_prefix = ""


def now_iso() -> str:
    """Now, as `2026-12-02T01:02:03.456789+00:00`."""
    return iso_at(time.time())


def iso_at(timestamp: float) -> str:
    """`timestamp` (seconds since the epoch) as `now_iso` writes it."""
    global _second, _prefix  # a one-entry cache of the formatted second
    second = int(timestamp)
    if second != _second:
        _prefix = datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")
        _second = second
    return f"{_prefix}.{int((timestamp - second) * 1_000_000):06d}+00:00"
