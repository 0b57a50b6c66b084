"""Registry changes, announced after they are committed.

Caches of thing credentials and permissions (adapters) and external brokers kept in
sync (Mosquitto dynamic security) listen to these instead of polling the database.
Listeners are plain callables and must not block: they invalidate or enqueue.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable
from dataclasses import dataclass

logger = logging.getLogger(__name__)


class ChangeKind(enum.StrEnum):
    THING_CREATED = "thing_created"
    THING_UPDATED = "thing_updated"
    THING_KEY_ROTATED = "thing_key_rotated"
    THING_DELETED = "thing_deleted"
    CHANNEL_DELETED = "channel_deleted"
    CONNECTED = "connected"
    DISCONNECTED = "disconnected"


@dataclass(frozen=True, slots=True, kw_only=True)
class RegistryChange:
    kind: ChangeKind
    org_id: str
    #: Every thing whose credentials or permissions may have changed.
    thing_ids: tuple[str, ...] = ()
    channel_id: str | None = None


ChangeListener = Callable[[RegistryChange], None]


def announce(listeners: list[ChangeListener], change: RegistryChange) -> None:
    for listener in listeners:
        try:
            listener(change)
        except Exception:  # a faulty listener must not undo a committed change
            logger.exception("registry change listener failed on %s", change.kind)
