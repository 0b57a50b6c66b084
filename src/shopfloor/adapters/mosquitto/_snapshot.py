"""Reading the registry as the reconciler wants it: every thing, its key, its connections."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Protocol, TypeVar

from shopfloor.registry import Channel, Connection, Org, Page, Thing

from ._sync import ThingAccess

__all__ = ["SnapshotRegistry", "registry_snapshot"]

T = TypeVar("T")


class SnapshotRegistry(Protocol):
    """The part of `shopfloor.registry.Registry` a snapshot reads."""

    async def list_orgs(self, *, offset: int = 0, limit: int = 100) -> Page[Org]: ...

    async def list_things(
        self, org_id: str, *, offset: int = 0, limit: int = 100
    ) -> Page[Thing]: ...

    async def thing_channels(
        self, org_id: str, thing_id: str, *, offset: int = 0, limit: int = 100
    ) -> Page[tuple[Channel, Connection]]: ...

    def thing_key(self, thing: Thing) -> str: ...


async def registry_snapshot(
    registry: SnapshotRegistry, org_ids: Iterable[str] | None = None, *, page_size: int = 500
) -> AsyncIterator[ThingAccess]:
    """Every thing of these organisations (all when None) with its key and connections.

    Pages are read one at a time, so a thing created meanwhile may be missed (its own
    `thing_created` call covers it) and one seen twice is yielded once.
    """

    def orgs(offset: int, limit: int) -> Awaitable[Page[Org]]:
        return registry.list_orgs(offset=offset, limit=limit)

    if org_ids is None:
        org_ids = [org.id async for org in _paged(orgs, page_size)]
    seen: set[str] = set()
    for org_id in list(org_ids):

        def things(offset: int, limit: int, org_id: str = org_id) -> Awaitable[Page[Thing]]:
            return registry.list_things(org_id, offset=offset, limit=limit)

        async for thing in _paged(things, page_size):
            if thing.id in seen:
                continue
            seen.add(thing.id)

            def channels(
                offset: int, limit: int, thing: Thing = thing
            ) -> Awaitable[Page[tuple[Channel, Connection]]]:
                return registry.thing_channels(thing.org_id, thing.id, offset=offset, limit=limit)

            connections = [connection async for _, connection in _paged(channels, page_size)]
            yield thing, registry.thing_key(thing), connections


async def _paged(
    read: Callable[[int, int], Awaitable[Page[T]]], page_size: int
) -> AsyncIterator[T]:
    offset = 0
    while True:
        page = await read(offset, page_size)
        for item in page.items:
            yield item
        offset += len(page.items)
        if not page.items or offset >= page.total:
            return
