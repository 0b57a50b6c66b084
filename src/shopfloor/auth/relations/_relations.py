"""The relation graph of the platform: writes to the database, checks from memory.

    relations = platform.get(RelationsService).relations
    await relations.add(org_id, [RelationTuple.parse("agent:cell-1 controls agent:press-01")])
    result = await relations.check(org_id, "agent:cell-1", "reads", "agent:press-01")

Each process keeps, per organisation it was asked about, the whole graph in memory
(`RelationGraph`), loaded from the database on the first check and kept current from
the `relations.<org_id>.changed` events of every process: this process's own writes
are applied before the write returns, other processes' within the bus's latency.
An event that does not follow the graph's revision (one was missed, or was too large
to carry its changes) makes the graph catch up from the `relation_changes` table;
every `refresh` seconds, and when the bus connection comes back, each graph compares
its revision with the database's, so a change is never missed for longer than that.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from shopfloor.core import first_set
from shopfloor.messaging import Event

from ._errors import TooManyRelationTuples
from ._feed import Checkpoint, FeedItem, Reset, SchemaChange, decode_change, encode_change
from ._graph import DEFAULT_MAX_DEPTH, DEFAULT_MAX_EXPAND, CheckResult, ExpandNode, RelationGraph
from ._model import Change, RelationTuple
from ._schema import RelationSchema
from ._store import RelationFilter, RelationStore, StoredSchema, Written

__all__ = ["MAX_WRITE", "RelationOptions", "Relations", "changed_subject"]

logger = logging.getLogger(__name__)

#: Tuples one write takes (a request's batch).
MAX_WRITE = 1000
#: Changes an event carries at most; a larger write's event says only its revision.
EVENT_MAX_CHANGES = 1000
#: Revisions one catch-up or one feed read takes at a time.
READ_REVISIONS = 100
PRUNE_SECONDS = 60.0

Emit = Callable[[str, Mapping[str, Any]], object]


def changed_subject(org_id: str) -> str:
    return f"relations.{org_id}.changed"


@dataclass(frozen=True, slots=True, kw_only=True)
class RelationOptions:
    max_depth: int = DEFAULT_MAX_DEPTH
    expand_max_entries: int = DEFAULT_MAX_EXPAND
    refresh_seconds: float = 5.0
    keep_changes: timedelta = timedelta(days=1)
    keep_revisions: int = 100_000
    keepalive_seconds: float = 15.0


class _Held:
    """One organisation's graph in this process, and who waits for its changes."""

    def __init__(self) -> None:
        self.graph: RelationGraph | None = None
        self.lock = asyncio.Lock()
        self.heard = 0  # the newest revision an event announced
        self.waiters: set[asyncio.Event] = set()


class Relations:
    def __init__(
        self, store: RelationStore, *, emit: Emit, options: RelationOptions | None = None
    ) -> None:
        self.store = store
        self.options = options or RelationOptions()
        self._emit = emit
        self._held: dict[str, _Held] = {}
        self._stale: set[str] = set()
        self._wake = asyncio.Event()
        self._closed = asyncio.Event()

    def _of(self, org_id: str) -> _Held:
        held = self._held.get(org_id)
        if held is None:
            held = self._held[org_id] = _Held()
        return held

    # -- writes ---------------------------------------------------------------------------

    async def add(self, org_id: str, items: Sequence[RelationTuple]) -> Written:
        return self._announce(org_id, await self.store.add(org_id, _bounded(items)))

    async def remove(self, org_id: str, items: Sequence[RelationTuple]) -> Written:
        return self._announce(org_id, await self.store.remove(org_id, _bounded(items)))

    async def remove_matching(self, org_id: str, where: RelationFilter) -> Written:
        return self._announce(org_id, await self.store.remove_matching(org_id, where))

    async def set_schema(
        self, org_id: str, schema: RelationSchema, *, updated_by: str | None = None
    ) -> StoredSchema:
        written = await self.store.set_schema(org_id, schema, updated_by=updated_by)
        self._announce(org_id, written)
        return await self.store.schema(org_id)

    async def schema(self, org_id: str) -> StoredSchema:
        return await self.store.schema(org_id)

    def _announce(self, org_id: str, written: Written) -> Written:
        if written.changes:
            data: dict[str, Any] = {"org_id": org_id, "revision": written.revision}
            if len(written.changes) <= EVENT_MAX_CHANGES:
                data["changes"] = [encode_change(change) for change in written.changes]
            # This process's listener (`on_event`) applies it before emit returns.
            self._emit(changed_subject(org_id), data)
        return written

    # -- reads ----------------------------------------------------------------------------

    async def graph(self, org_id: str) -> RelationGraph:
        """The organisation's graph in memory, loaded on first use."""
        held = self._of(org_id)
        if held.graph is not None:
            return held.graph
        async with held.lock:
            if held.graph is None:
                snapshot = await self.store.load(org_id)
                graph = RelationGraph(snapshot.schema, snapshot.tuples, revision=snapshot.revision)
                await self._catch_up(org_id, graph)
                held.graph = graph
                if held.heard > graph.revision:
                    self._mark_stale(org_id)  # announced while the last read was under way
                logger.info(
                    "loaded the relation graph of %s: %d tuples at revision %d",
                    org_id, len(graph), graph.revision,
                )  # fmt: skip
            return held.graph

    async def check(self, org_id: str, subject: str, relation: str, obj: str) -> CheckResult:
        graph = await self.graph(org_id)
        return graph.check(subject, relation, obj, max_depth=self.options.max_depth)

    async def expand(self, org_id: str, relation: str, obj: str) -> tuple[ExpandNode, bool, int]:
        """The tree, whether it was cut short, and the revision it was read at."""
        graph = await self.graph(org_id)
        tree, cut = graph.expand(
            relation, obj, max_depth=self.options.max_depth,
            max_entries=self.options.expand_max_entries,
        )  # fmt: skip
        return tree, cut, graph.revision

    # -- keeping current ------------------------------------------------------------------

    def on_event(self, event: Event) -> None:
        """A `relations.<org>.changed` event of any process (this one's first)."""
        try:
            org_id = str(event.data["org_id"])
            revision = int(event.data["revision"])
            carried = event.data.get("changes")
            found = None if carried is None else [decode_change(c) for c in carried]
        except Exception:
            logger.warning("ignoring a malformed relations event %s", event.subject)
            return
        held = self._held.get(org_id)
        if held is None:
            return
        held.heard = max(held.heard, revision)
        for waiter in held.waiters:
            waiter.set()
        graph = held.graph
        if graph is None or revision <= graph.revision:
            return  # loading (it catches up when done), or known already
        if found is not None and revision == graph.revision + 1:
            _apply(graph, found, revision)
        else:
            self._mark_stale(org_id)

    def forget_all(self) -> None:
        """The bus connection came back: changes may have been missed; check them all."""
        for org_id in self._held:
            self._mark_stale(org_id)

    def _mark_stale(self, org_id: str) -> None:
        self._stale.add(org_id)
        self._wake.set()

    async def _catch_up(self, org_id: str, graph: RelationGraph) -> None:
        """Apply the changes the database has after the graph's revision."""
        while True:
            batch = await self.store.changes(
                org_id, after=graph.revision, max_revisions=READ_REVISIONS
            )
            if batch.reset:
                snapshot = await self.store.load(org_id)
                graph.clear()
                graph.schema = snapshot.schema
                for item in snapshot.tuples:
                    graph.add(item)
                graph.revision = snapshot.revision
                continue  # the changes made while it loaded
            _apply_batch(graph, batch.changes)
            if not batch.more:
                return

    async def _refresh(self, org_ids: Sequence[str]) -> None:
        for org_id in org_ids:
            held = self._held.get(org_id)
            if held is None or held.graph is None:
                continue
            async with held.lock:
                await self._catch_up(org_id, held.graph)

    async def run(self, stopping: asyncio.Event) -> None:
        """Catch up stale graphs at once, compare all with the database every `refresh`
        seconds, and prune old changes every minute."""
        refreshed = pruned = time.monotonic()
        while not stopping.is_set():
            await first_set(self._wake, stopping, within=0.5)
            self._wake.clear()
            stale, self._stale = list(self._stale), set()
            await self._refresh(stale)
            if time.monotonic() - refreshed >= self.options.refresh_seconds:
                refreshed = time.monotonic()
                loaded = [o for o, h in self._held.items() if h.graph is not None]
                current = await self.store.revisions(loaded)
                behind = [
                    org_id for org_id in loaded
                    if (graph := self._held[org_id].graph) is not None
                    and current.get(org_id, 0) != graph.revision
                ]  # fmt: skip
                await self._refresh(behind)
            if time.monotonic() - pruned >= PRUNE_SECONDS:
                pruned = time.monotonic()
                removed = await self.store.prune(
                    keep=self.options.keep_changes, keep_revisions=self.options.keep_revisions
                )
                if removed:
                    logger.info("pruned %d relation changes", removed)

    def close(self) -> None:
        """Ends the change feeds being followed."""
        self._closed.set()

    # -- the change feed ------------------------------------------------------------------

    async def follow(self, org_id: str, since: int | None) -> AsyncIterator[FeedItem | None]:
        """The changes after `since` (from now if None), then new ones as they are made,
        each revision closed by a `Checkpoint` (one also says when the past is caught up);
        None is a keep-alive. A `since` no longer kept is answered with a `Reset`, and
        the feed ends, as it does when the service stops."""
        held = self._of(org_id)
        wake = asyncio.Event()
        held.waiters.add(wake)
        try:
            last = (await self.store.revision(org_id))[0] if since is None else since
            caught_up = False
            while not self._closed.is_set():
                wake.clear()
                batch = await self.store.changes(org_id, after=last, max_revisions=READ_REVISIONS)
                if batch.reset:
                    yield Reset(batch.revision)
                    return
                for item in _with_checkpoints(batch.changes):
                    yield item
                    last = item.revision
                if batch.more:
                    continue
                if not caught_up and not batch.changes:
                    yield Checkpoint(last)
                caught_up = True
                if not await self._wait(wake):
                    yield None
        finally:
            held.waiters.discard(wake)

    async def _wait(self, wake: asyncio.Event) -> bool:
        """Until a change is announced (True), the feed's keep-alive time or the close."""
        waits = [asyncio.ensure_future(wake.wait()), asyncio.ensure_future(self._closed.wait())]
        try:
            await asyncio.wait(
                waits, timeout=self.options.keepalive_seconds, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            for waiting in waits:
                waiting.cancel()
        return wake.is_set()


def _bounded(items: Sequence[RelationTuple]) -> Sequence[RelationTuple]:
    if len(items) > MAX_WRITE:
        raise TooManyRelationTuples(f"at most {MAX_WRITE} tuples at once (got {len(items)})")
    return items


def _apply(graph: RelationGraph, found: Sequence[Change | SchemaChange], revision: int) -> None:
    for change in found:
        if isinstance(change, SchemaChange):
            graph.schema = change.schema
        else:
            graph.apply(change)
    graph.revision = revision


def _apply_batch(graph: RelationGraph, found: Sequence[Change | SchemaChange]) -> None:
    """Whole revisions in order; those the graph has already (from an event) are skipped."""
    for change in found:
        if change.revision <= graph.revision:
            continue
        if isinstance(change, SchemaChange):
            graph.schema = change.schema
        else:
            graph.apply(change)
    if found:
        graph.revision = max(graph.revision, found[-1].revision)


def _with_checkpoints(found: Sequence[Change | SchemaChange]) -> list[FeedItem]:
    """The changes, each revision followed by its `Checkpoint`."""
    items: list[FeedItem] = []
    for index, change in enumerate(found):
        items.append(change)
        following = found[index + 1] if index + 1 < len(found) else None
        if following is None or following.revision != change.revision:
            items.append(Checkpoint(change.revision))
    return items
