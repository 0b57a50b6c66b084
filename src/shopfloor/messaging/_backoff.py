"""Reconnect pacing: capped exponential backoff with full jitter.

nats-py waits a fixed time between reconnect attempts; after a broker restart every
client of a plant would then come back in lockstep. Its reconnect hook lets us pick
the server and the delay instead.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from shopfloor.core import Backoff

if TYPE_CHECKING:
    from nats.aio.client import Server

__all__ = ["ReconnectPolicy"]


class ReconnectPolicy:
    """The `reconnect_to_server_handler` of a NATS connection.

    Picks the server that failed least recently in a row (the pool is shuffled by the
    client, so ties spread clients over the cluster) and waits a jittered delay that
    grows with that server's consecutive failures.
    """

    def __init__(self, *, base: float = 0.1, cap: float = 5.0, seed: int | None = None) -> None:
        self.base = base
        self.cap = cap
        self._backoff = Backoff(base=base, cap=cap, seed=seed)

    def __call__(self, servers: list[Server], info: dict[str, Any]) -> tuple[Server | None, float]:
        if not servers:
            return None, self.cap
        chosen = min(servers, key=lambda server: server.reconnects)
        return chosen, self._backoff.delay(chosen.reconnects)
