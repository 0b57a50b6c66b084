"""A normalized SenML record (RFC 8428 section 4.6 "resolved" form)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True, kw_only=True)
class Record:
    """One resolved SenML entry.

    Exactly one of `value`, `string_value`, `bool_value`, `data_value` is set, unless
    the entry carries only a `sum`. `time` is absolute, in seconds since the epoch.
    """

    name: str
    unit: str | None = None
    time: float
    value: float | None = None
    string_value: str | None = None
    bool_value: bool | None = None
    data_value: str | None = None
    sum: float | None = None
    update_time: float | None = None
