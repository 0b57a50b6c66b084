"""Tunables of Mosquitto mode, with the reasons for their defaults."""

from __future__ import annotations

from dataclasses import dataclass

from shopfloor.core import Backoff

__all__ = ["MosquittoOptions"]


@dataclass(frozen=True, slots=True, kw_only=True)
class MosquittoOptions:
    """How `MosquittoService` talks to the broker; the defaults suit one platform process.

    `client_id` names the bridge's persistent session: it must stay the same across
    restarts of a process (or the messages the broker kept for the old session wait
    until `session_expiry` and are then dropped), and differ between processes that
    run at the same time (or they keep taking the session from each other).
    """

    #: MQTT client id of the bridge connection; see above.
    client_id: str = "shopfloor-bridge"
    #: Processes with the same group share the messages of `$share/<group>/channels/#`.
    share_group: str = "shopfloor"
    #: Seconds the broker keeps the bridge's session (and its messages) while it is away.
    session_expiry: int = 7 * 24 * 3600
    #: Messages taken from the broker and not yet acknowledged (MQTT Receive Maximum).
    inbound_window: int = 1000
    #: Messages published to the broker and not yet acknowledged by it.
    outbound_window: int = 1000
    #: Durable bus consumer that feeds the broker (shared by every bridge process).
    outbound_durable: str = "mosquitto-out"
    #: Seconds after which a message of another protocol is no longer sent to MQTT
    #: subscribers (while the broker is unreachable): they get live data, not a backlog.
    outbound_max_age: float = 60.0
    #: Message ids remembered to recognise messages the broker delivers again.
    dedupe_ids: int = 100_000
    #: Seconds to wait for the broker (connecting, a PUBACK, a dynsec answer).
    timeout: float = 10.0
    #: Seconds between two full reconciliations of the broker with the registry; they
    #: also carry changes made by other processes, whose announcements this one misses.
    resync_interval: float = 300.0
    #: Attempts at one registry change before leaving it to a full reconciliation.
    change_attempts: int = 5
    #: Reconnect and retry pacing: full jitter up to min(cap, base * 2**attempt).
    backoff_base: float = 0.1
    backoff_cap: float = 5.0
    #: Seconds the bridge may take on stop to settle the messages it took.
    stop_timeout: float = 10.0

    def __post_init__(self) -> None:
        if self.inbound_window < 1 or self.outbound_window < 1 or self.dedupe_ids < 1:
            raise ValueError("the windows and dedupe_ids must be at least 1")
        if not 0 < self.session_expiry <= 0xFFFFFFFF:
            raise ValueError("session_expiry must be between 1 s and 2**32-1 s")
        if self.inbound_window > 0xFFFF:
            raise ValueError("inbound_window is an MQTT Receive Maximum: at most 65535")

    def backoff(self) -> Backoff:
        """A fresh reconnect and retry pacing of these options."""
        return Backoff(base=self.backoff_base, cap=self.backoff_cap)
