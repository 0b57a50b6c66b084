"""A normalized SenML record (RFC 8428 section 4.6 "resolved" form)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

# The times every store can hold, in seconds since the epoch: InfluxDB's signed 64-bit
# nanoseconds end at 1677-09-21T00:12:43.145Z and 2262-04-11T23:47:16.854Z; SQLite and
# PostgreSQL keep 64-bit microseconds (about 292,000 years either way). Whole seconds
# inside InfluxDB's range leave room for the sub-microsecond digits its store adds.
# The normalizer refuses records outside, so a message is refused at the door instead
# of being acknowledged and dropped by the writer; the stores check the same bounds.
EARLIEST_TIME: Final = -9_223_372_036.0  # 1677-09-21T00:12:44Z
LATEST_TIME: Final = 9_223_372_036.0  # 2262-04-11T23:47:16Z
TIME_RANGE_TEXT: Final = "1677-09-21T00:12:44Z to 2262-04-11T23:47:16Z"
# Names are stored with every record and are InfluxDB tags; longer ones are refused.
MAX_NAME_BYTES: Final = 1024


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
