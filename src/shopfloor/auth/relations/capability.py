"""The relation graph as a service: its tables, its routes, its graphs kept current from
the bus in every process that runs it."""

from __future__ import annotations

from contextlib import AsyncExitStack
from datetime import timedelta
from typing import TYPE_CHECKING

from pydantic import Field

from shopfloor.core import Section, Service
from shopfloor.core.capability import DatabaseService
from shopfloor.messaging import RECONNECTED
from shopfloor.messaging.capability import BusService

from ._graph import DEFAULT_MAX_DEPTH, DEFAULT_MAX_EXPAND
from ._relations import RelationOptions, Relations
from ._store import RelationStore
from ._tables import MIGRATIONS

if TYPE_CHECKING:
    from shopfloor.core import Platform

__all__ = ["RelationsService", "RelationsSettings"]


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
