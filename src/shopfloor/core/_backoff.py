"""Reconnect and retry pacing: capped exponential backoff with jitter, for every loop.

After a broker or database restart every client of a plant would come back in
lockstep with fixed delays; a random delay under a ceiling that doubles with each
failure spreads them out ("full jitter"). Loops that restart a failed part keep a
floor under the delay (`min_fraction`), so a part failing at once cannot spin.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

__all__ = ["Backoff", "backoff_delay"]


def backoff_delay(
    attempt: int, *, base: float, cap: float, rng: random.Random, min_fraction: float = 0.0
) -> float:
    """A random delay in [f·c, c] seconds, where c = min(cap, base · 2**attempt)."""
    ceiling = cap if attempt >= 32 else min(cap, base * (2 ** max(attempt, 0)))
    return rng.uniform(ceiling * min_fraction, ceiling)


@dataclass
class Backoff:
    """`delay(attempt)` for one loop; keeps its own random source."""

    base: float = 0.1
    cap: float = 5.0
    min_fraction: float = 0.0
    seed: int | None = None
    _rng: random.Random = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if not (0 < self.base <= self.cap) or not 0 <= self.min_fraction <= 1:
            raise ValueError("backoff needs 0 < base <= cap and 0 <= min_fraction <= 1")
        self._rng = random.Random(self.seed)  # noqa: S311 - jitter, not security

    def delay(self, attempt: int, *, cap: float | None = None) -> float:
        """The delay before try `attempt + 1`; `cap` lowers the ceiling for this call."""
        ceiling = self.cap if cap is None else min(cap, self.cap)
        return backoff_delay(
            attempt, base=min(self.base, ceiling), cap=ceiling, rng=self._rng,
            min_fraction=self.min_fraction,
        )  # fmt: skip
