"""Interaction ids that stay unique between both sides and across restarts (pure).

The Manager uses even ids, the Core odd ones, so the two never collide. Within a side
an id is `max(last + 2, now in microseconds)` with the side's parity, and `last` starts
at the highest id of that side found in the topic when it starts: a side started again
never reuses the id of a request it sent before, even one the other side has not read
yet, as long as its clock did not go back by more than the time it was down; and ids
read back from the log cover that case too. Microseconds since 1970 are about 2**51,
so ids also fit a JavaScript number exactly.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from ._messages import Side

__all__ = ["InteractionIds"]


class InteractionIds:
    def __init__(
        self, side: Side, *, highest: int = 0, clock: Callable[[], float] = time.time
    ) -> None:
        self._parity = 0 if side is Side.MANAGER else 1
        self._last = highest
        self._clock = clock

    def saw(self, interaction_id: int) -> None:
        """Take note of an id of this side read from the log."""
        if interaction_id % 2 == self._parity:
            self._last = max(self._last, interaction_id)

    def next(self) -> int:
        candidate = max(self._last + 1, int(self._clock() * 1_000_000))
        if candidate % 2 != self._parity:
            candidate += 1
        self._last = candidate
        return candidate
