"""Request rates of the device routes, per external id and per source address, in memory.

Each key has a token bucket: `burst` requests at once, refilled at `per_minute`. Every
request costs a token whether it succeeds or not: the limit is on trying, so guessing
a key and scanning for external ids are both slowed, and a device that bootstraps in a
loop cannot load the database. Buckets are per process (docs/bootstrap.md); at most
`max_entries` keys are held, the least recently used forgotten first (a forgotten key
starts again with a full bucket, which only errs towards letting a device in).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass

from ._errors import RateLimited


@dataclass(slots=True)
class _Bucket:
    tokens: float
    at: float


class TokenBuckets:
    def __init__(
        self,
        *,
        per_minute: float,
        burst: int,
        max_entries: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._rate = per_minute / 60.0
        self._burst = float(burst)
        self._max_entries = max_entries
        self._clock = clock
        self._buckets: dict[Hashable, _Bucket] = {}

    def __len__(self) -> int:
        return len(self._buckets)

    def take(self, key: Hashable) -> float:
        """0 when a token was taken; otherwise the seconds until the next one."""
        now = self._clock()
        bucket = self._buckets.pop(key, None)  # re-inserted last: dict order is recency
        if bucket is None:
            bucket = _Bucket(self._burst, now)
        bucket.tokens = min(self._burst, bucket.tokens + (now - bucket.at) * self._rate)
        bucket.at = now
        self._buckets[key] = bucket
        if len(self._buckets) > self._max_entries:
            del self._buckets[next(iter(self._buckets))]
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / self._rate if self._rate > 0 else math.inf


class DeviceLimits:
    """The two limits of the device routes; `admit` raises `RateLimited` (429)."""

    def __init__(self, by_external_id: TokenBuckets, by_address: TokenBuckets) -> None:
        self.by_external_id = by_external_id
        self.by_address = by_address

    def admit(self, external_id: str, address: str) -> None:
        wait = self.by_address.take(address)
        what = "this address"
        if not wait:
            wait = self.by_external_id.take(external_id)
            what = "this external id"
        if wait:
            retry = max(1, math.ceil(min(wait, 86_400.0)))
            raise RateLimited(
                f"too many bootstrap requests for {what}; try again later", retry_after=retry
            )
