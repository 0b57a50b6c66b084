"""The relation graph as a service: its tables, its routes, its graphs kept current from
the bus in every process that runs it.

Tuples that name a thing, a channel, a user or an agent are removed when it is deleted
(its deletion event: `registry.thing_deleted`, `registry.channel_deleted`,
`registry.user_deleted`, an agent's `agents.<org>.<name>.state` saying `deleted`), so a
new agent or thing given a deleted one's name or id inherits none of its relations.
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import AsyncExitStack
from datetime import timedelta
from typing import TYPE_CHECKING

from pydantic import Field

from shopfloor.core import Section, Service
from shopfloor.core.capability import DatabaseService
from shopfloor.messaging import RECONNECTED, Event
from shopfloor.messaging.capability import BusService
from shopfloor.registry import ChangeKind, RegistryChange

from ._graph import DEFAULT_MAX_DEPTH, DEFAULT_MAX_EXPAND
from ._relations import RelationOptions, Relations
from ._store import RelationFilter, RelationStore
from ._tables import MIGRATIONS

if TYPE_CHECKING:
    from shopfloor.core import Platform

__all__ = ["RelationsService", "RelationsSettings"]

logger = logging.getLogger(__name__)

#: Deletions whose object's tuples go with it, and the object type they name.
_DELETED = {
    ChangeKind.THING_DELETED: "thing",
    ChangeKind.CHANNEL_DELETED: "channel",
    ChangeKind.USER_DELETED: "user",
}


class RelationsSettings(Section, section="relations", env_prefix="SHOPFLOOR_RELATIONS_"):
    max_depth: int = Field(
        default=DEFAULT_MAX_DEPTH, ge=1, le=100,
        description="Most tuples on the path a check follows; beyond it, refused.",
    )  # fmt: skip
    expand_max_entries: int = Field(
        default=DEFAULT_MAX_EXPAND, ge=10, le=100_000,
        description="Most subjects and nodes one expand answers (then `truncated`).",
    )  # fmt: skip
    refresh_seconds: float = Field(
        default=5.0, gt=0, le=3600,
        description="Seconds between comparisons of the graphs in memory with the database.",
    )  # fmt: skip
    changes_keep_seconds: float = Field(
        default=86_400.0, ge=60,
        description="How long the change feed keeps a change for caches to catch up.",
    )  # fmt: skip
    changes_keep_revisions: int = Field(
        default=100_000, ge=100,
        description="Most revisions of an organisation the change feed keeps.",
    )  # fmt: skip
    feed_keepalive_seconds: float = Field(
        default=15.0, gt=0, le=300,
        description="A followed change feed sends a keep-alive after this long without news.",
    )  # fmt: skip

    def options(self) -> RelationOptions:
        return RelationOptions(
            max_depth=self.max_depth,
            expand_max_entries=self.expand_max_entries,
            refresh_seconds=self.refresh_seconds,
            keep_changes=timedelta(seconds=self.changes_keep_seconds),
            keep_revisions=self.changes_keep_revisions,
            keepalive_seconds=self.feed_keepalive_seconds,
        )


class RelationsService(Service, name="relations", needs=("database", "bus", "identity")):
    """Relationship graph (Zanzibar-style ACLs): tuples, schema, checks, change feed."""

    health = "relations"
    routes = ("shopfloor.auth.relations.routes:router",)
    migrations = MIGRATIONS.versions
    version_table = MIGRATIONS.version_table

    def __init__(self, platform: Platform) -> None:
        super().__init__(platform)
        self._events = platform.get(BusService).events
        self.relations = Relations(
            RelationStore(platform.get(DatabaseService).engine),
            emit=self._events.emit,
            options=platform.settings.section(RelationsSettings).options(),
        )

    async def _start(self, stack: AsyncExitStack) -> None:
        relations = self.relations
        stack.enter_context(self._events.listen("relations.>", relations.on_event))
        stack.enter_context(self._events.listen(RECONNECTED, lambda _e: relations.forget_all()))
        stack.callback(relations.close)
        await self.spawn("relations-refresh", relations.run)
        self._deleted: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
        for kind in _DELETED:
            stack.enter_context(self._events.listen(f"registry.{kind.value}", self._on_deleted))
        stack.enter_context(self._events.listen("agents.*.*.state", self._on_agent_state))
        await self.spawn("relations-forget-deleted", self._forget_deleted, cancel_on_stop=True)

    def _on_deleted(self, event: Event) -> None:
        try:
            change = RegistryChange.from_data(event.data)
        except (KeyError, ValueError):
            logger.warning("ignoring a malformed registry event %s", event.subject)
            return
        kind = _DELETED.get(change.kind)
        ids = {
            "thing": change.thing_ids,
            "channel": (change.channel_id,) if change.channel_id else (),
            "user": (change.user_id,) if change.user_id else (),
        }.get(kind or "", ())
        for each in ids:
            self._deleted.put_nowait((change.org_id, f"{kind}:{each}"))

    def _on_agent_state(self, event: Event) -> None:
        data = event.data
        if data.get("state") == "deleted" and data.get("org_id") and data.get("name"):
            self._deleted.put_nowait((str(data["org_id"]), f"agent:{data['name']}"))

    async def _forget_deleted(self, stopping: asyncio.Event) -> None:
        """Remove the tuples of what was deleted, one deletion after the other. Every
        process running this service hears each deletion; the first removes them, the
        others find none (a deletion while no such process ran leaves them)."""
        while True:
            org_id, name = await self._deleted.get()
            try:
                written = await self.relations.remove_matching(org_id, RelationFilter(names=name))
            except Exception:
                logger.exception("the relation tuples of deleted %s were not removed", name)
                continue
            if written.changes:
                logger.info("removed %d relation tuples of deleted %s", len(written.changes),
                            name)  # fmt: skip
