"""Registry changes, announced after they are committed.

Caches of thing credentials and permissions (adapters) and external brokers kept in
sync (Mosquitto dynamic security) listen to these instead of polling the database.
Listeners are plain callables and must not block: they invalidate or enqueue. The
platform forwards every change as the event `registry.<kind>` (`subject`, `to_data`),
so the other processes of a split deployment hear it too.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

logger = logging.getLogger(__name__)


class ChangeKind(enum.StrEnum):
    THING_CREATED = "thing_created"
    THING_UPDATED = "thing_updated"
    THING_KEY_ROTATED = "thing_key_rotated"
    THING_DELETED = "thing_deleted"
    CHANNEL_DELETED = "channel_deleted"
    USER_DELETED = "user_deleted"
    CONNECTED = "connected"
    DISCONNECTED = "disconnected"


@dataclass(frozen=True, slots=True, kw_only=True)
class RegistryChange:
    kind: ChangeKind
    org_id: str
    #: Every thing whose credentials or permissions may have changed.
    thing_ids: tuple[str, ...] = ()
    channel_id: str | None = None
    #: The user of a `user_deleted` (a member of `org_id`).
    user_id: str | None = None

    @property
    def subject(self) -> str:
        """The platform event subject of this change."""
        return f"registry.{self.kind.value}"

    def to_data(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value,
            "org_id": self.org_id,
            "thing_ids": list(self.thing_ids),
            "channel_id": self.channel_id,
            "user_id": self.user_id,
        }

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> RegistryChange:
        """The change an event carries; raises ValueError (or KeyError) if malformed."""
        channel_id, user_id = data.get("channel_id"), data.get("user_id")
        return cls(
            kind=ChangeKind(data["kind"]),
            org_id=str(data["org_id"]),
            thing_ids=tuple(str(t) for t in data.get("thing_ids", ())),
            channel_id=None if channel_id is None else str(channel_id),
            user_id=None if user_id is None else str(user_id),
        )


ChangeListener = Callable[[RegistryChange], None]


def announce(listeners: list[ChangeListener], change: RegistryChange) -> None:
    for listener in listeners:
        try:
            listener(change)
        except Exception:  # a faulty listener must not undo a committed change
            logger.exception("registry change listener failed on %s", change.kind)
