"""The registry service: organisations, users, things, channels and their connections.

Every thing/channel call is scoped by `org_id`: an object of another organisation is
reported as not found, so ids from other tenants leak nothing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, Protocol, TypeVar

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from shopfloor.core import create_engine, migrate

from . import _tables as t
from ._database import MIGRATIONS
from ._entities import EntityTable, is_unique_violation, new_id, utcnow
from ._errors import Conflict, NotFound
from ._events import ChangeKind, ChangeListener, RegistryChange, announce
from ._people import PeopleMixin
from ._rows import (
    channel_from,
    connection_from,
    count_rows,
    thing_from,
)
from ._types import SORT_KEYS, Channel, Connection, Page, Permission, SortKey, Thing

E = TypeVar("E", Thing, Channel)

_THINGS = EntityTable("thing", t.things, t.thing_tags, t.thing_tags.c.thing_id)
_CHANNELS = EntityTable("channel", t.channels, t.channel_tags, t.channel_tags.c.channel_id)


class KeyCipher(Protocol):
    """What the registry needs to store thing keys (implemented by `auth.ThingKeys`)."""

    def generate(self) -> str: ...
    def digest(self, key: str) -> str: ...
    def encrypt(self, key: str) -> str: ...
    def decrypt(self, ciphertext: str) -> str: ...


class Registry(PeopleMixin):
    """Async registry over SQLite or PostgreSQL."""

    def __init__(self, engine: AsyncEngine, keys: KeyCipher, *, owns_engine: bool = False) -> None:
        self._engine = engine
        self._owns_engine = owns_engine
        self._keys = keys
        self._listeners: list[ChangeListener] = []

    def add_listener(self, listener: ChangeListener) -> Callable[[], None]:
        """Call `listener` after each committed change to things, channels or connections.

        Returns the function that removes it again.
        """
        self._listeners.append(listener)

        def remove() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return remove

    def _announce(
        self,
        kind: ChangeKind,
        org_id: str,
        thing_ids: tuple[str, ...] = (),
        channel_id: str | None = None,
        user_id: str | None = None,
    ) -> None:
        self._publish(
            RegistryChange(
                kind=kind, org_id=org_id, thing_ids=thing_ids, channel_id=channel_id,
                user_id=user_id,
            )
        )  # fmt: skip

    def _publish(self, change: RegistryChange) -> None:
        announce(self._listeners, change)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[RegistryTransaction]:
        """Several registry changes, with other tables of the same database, as one.

            async with registry.transaction() as tx:
                thing, key = await tx.create_thing(org_id, name="press-1")
                await tx.connect(org_id, channel.id, thing.id)
                await other_store.create(..., conn=tx.conn)

        Everything commits together or nothing does; listeners hear of the changes
        only after the commit.
        """
        async with self._engine.begin() as conn:
            tx = RegistryTransaction(self, conn)
            yield tx
        tx.announce_all()

    @classmethod
    async def open(cls, url: str, keys: KeyCipher) -> Registry:
        """Connect, apply the registry's pending migrations and return a ready registry
        that owns its engine (tools and tests; the platform shares its database's)."""
        engine = create_engine(url)
        try:
            await migrate(engine, [MIGRATIONS])
        except BaseException:
            await engine.dispose()
            raise
        return cls(engine, keys, owns_engine=True)

    async def close(self) -> None:
        if self._owns_engine:
            await self._engine.dispose()

    async def ping(self) -> bool:
        try:
            async with self._read() as conn:
                await conn.execute(sa.text("SELECT 1"))
        except (sa.exc.SQLAlchemyError, OSError):
            return False
        return True

    # -- things --------------------------------------------------------------------------

    async def create_thing(
        self,
        org_id: str,
        *,
        name: str,
        metadata: Mapping[str, Any] | None = None,
        tags: Iterable[str] = (),
    ) -> tuple[Thing, str]:
        """Create a thing; returns it with its new key (the only time the key is made)."""
        key = self._keys.generate()
        thing_id = new_id()
        async with self._begin() as conn:
            await self._require_org(conn, org_id)
            await _THINGS.insert(
                conn,
                {
                    "id": thing_id,
                    "org_id": org_id,
                    "name": name,
                    "key_hash": self._keys.digest(key),
                    "key_ciphertext": self._keys.encrypt(key),
                    "metadata": dict(metadata or {}),
                    "created_at": utcnow(),
                },
            )
            await _THINGS.set_tags(conn, thing_id, tags)
            created = await self._thing(conn, org_id, thing_id)
        self._announce(ChangeKind.THING_CREATED, org_id, (thing_id,))
        return created, key

    async def get_thing(self, org_id: str, thing_id: str) -> Thing:
        async with self._read() as conn:
            return await self._thing(conn, org_id, thing_id)

    async def list_things(
        self,
        org_id: str,
        *,
        offset: int = 0,
        limit: int = 100,
        name: str | None = None,
        tag: str | None = None,
        sort: SortKey = "name",
    ) -> Page[Thing]:
        """A page in `sort` order (`name`, `created_at`; `-` first: descending)."""
        async with self._read() as conn:
            return await self._page(
                conn, _THINGS, thing_from, org_id, offset, limit, name, tag, sort
            )

    async def update_thing(
        self,
        org_id: str,
        thing_id: str,
        *,
        name: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        tags: Iterable[str] | None = None,
    ) -> Thing:
        async with self._begin() as conn:
            await self._update(conn, _THINGS, org_id, thing_id, name, metadata, tags)
            updated = await self._thing(conn, org_id, thing_id)
        self._announce(ChangeKind.THING_UPDATED, org_id, (thing_id,))
        return updated

    async def delete_thing(self, org_id: str, thing_id: str) -> None:
        async with self._begin() as conn:
            await _THINGS.fetch(conn, org_id, thing_id)
            await conn.execute(sa.delete(t.things).where(t.things.c.id == thing_id))
        self._announce(ChangeKind.THING_DELETED, org_id, (thing_id,))

    async def rotate_thing_key(self, org_id: str, thing_id: str) -> tuple[Thing, str]:
        """Replace a thing's key; the old key stops working at once."""
        key = self._keys.generate()
        async with self._begin() as conn:
            await _THINGS.fetch(conn, org_id, thing_id)
            await conn.execute(
                sa.update(t.things)
                .where(t.things.c.id == thing_id)
                .values(key_hash=self._keys.digest(key), key_ciphertext=self._keys.encrypt(key))
            )
            rotated = await self._thing(conn, org_id, thing_id)
        self._announce(ChangeKind.THING_KEY_ROTATED, org_id, (thing_id,))
        return rotated, key

    def thing_key(self, thing: Thing) -> str:
        """The plain key of a thing, for users allowed to see it."""
        return self._keys.decrypt(thing.key_ciphertext)

    async def thing_by_key(self, key: str) -> Thing | None:
        """The thing a key belongs to, or None. The key is never compared in clear text."""
        digest = self._keys.digest(key)
        async with self._read() as conn:
            row = (
                await conn.execute(sa.select(t.things).where(t.things.c.key_hash == digest))
            ).first()
            if row is None:
                return None
            tags = await _THINGS.tags_of(conn, [row.id])
        return thing_from(row, tags[row.id])

    async def find_thing(self, thing_id: str) -> Thing | None:
        """A thing by id whatever its organisation (for adapters admitting certificates)."""
        async with self._engine.connect() as conn:
            row = (await conn.execute(sa.select(t.things).where(t.things.c.id == thing_id))).first()
            if row is None:
                return None
            tags = await _THINGS.tags_of(conn, [row.id])
        return thing_from(row, tags[row.id])

    # -- channels ------------------------------------------------------------------------

    async def create_channel(
        self,
        org_id: str,
        *,
        name: str,
        metadata: Mapping[str, Any] | None = None,
        tags: Iterable[str] = (),
    ) -> Channel:
        channel_id = new_id()
        async with self._begin() as conn:
            await self._require_org(conn, org_id)
            await _CHANNELS.insert(
                conn,
                {
                    "id": channel_id,
                    "org_id": org_id,
                    "name": name,
                    "metadata": dict(metadata or {}),
                    "created_at": utcnow(),
                },
            )
            await _CHANNELS.set_tags(conn, channel_id, tags)
            return await self._channel(conn, org_id, channel_id)

    async def get_channel(self, org_id: str, channel_id: str) -> Channel:
        async with self._read() as conn:
            return await self._channel(conn, org_id, channel_id)

    async def find_channel(self, channel_id: str) -> Channel | None:
        """A channel by id whatever its organisation (for adapters authorising things)."""
        async with self._read() as conn:
            row = (
                await conn.execute(sa.select(t.channels).where(t.channels.c.id == channel_id))
            ).first()
            if row is None:
                return None
            tags = await _CHANNELS.tags_of(conn, [row.id])
        return channel_from(row, tags[row.id])

    async def thing_named(self, org_id: str, name: str) -> Thing | None:
        """The organisation's thing of exactly that name, if any (names are unique)."""
        async with self._read() as conn:
            found = await conn.scalar(
                sa.select(t.things.c.id).where(
                    (t.things.c.org_id == org_id) & (t.things.c.name == name)
                )
            )
            return None if found is None else await self._thing(conn, org_id, found)

    async def channel_named(self, org_id: str, name: str) -> Channel | None:
        """The organisation's channel of exactly that name, if any (names are unique)."""
        async with self._read() as conn:
            found = await conn.scalar(
                sa.select(t.channels.c.id).where(
                    (t.channels.c.org_id == org_id) & (t.channels.c.name == name)
                )
            )
            return None if found is None else await self._channel(conn, org_id, found)

    async def list_channels(
        self,
        org_id: str,
        *,
        offset: int = 0,
        limit: int = 100,
        name: str | None = None,
        tag: str | None = None,
        sort: SortKey = "name",
    ) -> Page[Channel]:
        """A page in `sort` order (`name`, `created_at`; `-` first: descending)."""
        async with self._read() as conn:
            return await self._page(
                conn, _CHANNELS, channel_from, org_id, offset, limit, name, tag, sort
            )

    async def update_channel(
        self,
        org_id: str,
        channel_id: str,
        *,
        name: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        tags: Iterable[str] | None = None,
    ) -> Channel:
        async with self._begin() as conn:
            await self._update(conn, _CHANNELS, org_id, channel_id, name, metadata, tags)
            return await self._channel(conn, org_id, channel_id)

    async def delete_channel(self, org_id: str, channel_id: str) -> None:
        async with self._begin() as conn:
            await _CHANNELS.fetch(conn, org_id, channel_id)
            connected = await conn.scalars(
                sa.select(t.connections.c.thing_id).where(t.connections.c.channel_id == channel_id)
            )
            thing_ids = tuple(connected)
            await conn.execute(sa.delete(t.channels).where(t.channels.c.id == channel_id))
        self._announce(ChangeKind.CHANNEL_DELETED, org_id, thing_ids, channel_id)

    # -- connections ---------------------------------------------------------------------

    async def connect(
        self,
        org_id: str,
        channel_id: str,
        thing_id: str,
        permissions: Iterable[Permission] = (Permission.PUBLISH, Permission.SUBSCRIBE),
    ) -> Connection:
        """Connect a thing to a channel of the same organisation (replaces permissions)."""
        granted = frozenset(permissions)
        if not granted:
            raise ValueError("a connection needs at least one permission")
        values = {
            "can_publish": Permission.PUBLISH in granted,
            "can_subscribe": Permission.SUBSCRIBE in granted,
        }
        async with self._begin() as conn:
            await _CHANNELS.fetch(conn, org_id, channel_id)
            await _THINGS.fetch(conn, org_id, thing_id)
            where = (t.connections.c.channel_id == channel_id) & (
                t.connections.c.thing_id == thing_id
            )
            result = await conn.execute(sa.update(t.connections).where(where).values(**values))
            if result.rowcount == 0:
                try:
                    await conn.execute(
                        sa.insert(t.connections).values(
                            channel_id=channel_id,
                            thing_id=thing_id,
                            created_at=utcnow(),
                            **values,
                        )
                    )
                except sa.exc.IntegrityError as exc:
                    if not is_unique_violation(exc):
                        raise
                    raise Conflict(
                        "connection changed concurrently; retry", code="conflict"
                    ) from exc
            row = (await conn.execute(sa.select(t.connections).where(where))).one()
        self._announce(ChangeKind.CONNECTED, org_id, (thing_id,), channel_id)
        return connection_from(row)

    async def disconnect(self, org_id: str, channel_id: str, thing_id: str) -> None:
        async with self._begin() as conn:
            await _CHANNELS.fetch(conn, org_id, channel_id)
            await _THINGS.fetch(conn, org_id, thing_id)
            result = await conn.execute(
                sa.delete(t.connections).where(
                    (t.connections.c.channel_id == channel_id)
                    & (t.connections.c.thing_id == thing_id)
                )
            )
        if result.rowcount == 0:
            raise NotFound("the thing is not connected to the channel", code="not_connected")
        self._announce(ChangeKind.DISCONNECTED, org_id, (thing_id,), channel_id)

    async def connection(self, channel_id: str, thing_id: str) -> Connection | None:
        """The connection between a channel and a thing, if any (adapters' hot path)."""
        async with self._read() as conn:
            row = (
                await conn.execute(
                    sa.select(t.connections).where(
                        (t.connections.c.channel_id == channel_id)
                        & (t.connections.c.thing_id == thing_id)
                    )
                )
            ).first()
        return None if row is None else connection_from(row)

    async def channel_things(
        self, org_id: str, channel_id: str, *, offset: int = 0, limit: int = 100
    ) -> Page[tuple[Thing, Connection]]:
        async with self._read() as conn:
            await _CHANNELS.fetch(conn, org_id, channel_id)
            return await self._connected(
                conn, _THINGS, thing_from, t.connections.c.thing_id, t.connections.c.channel_id,
                channel_id, offset, limit,
            )  # fmt: skip

    async def thing_channels(
        self, org_id: str, thing_id: str, *, offset: int = 0, limit: int = 100
    ) -> Page[tuple[Channel, Connection]]:
        async with self._read() as conn:
            await _THINGS.fetch(conn, org_id, thing_id)
            return await self._connected(
                conn, _CHANNELS, channel_from, t.connections.c.channel_id, t.connections.c.thing_id,
                thing_id, offset, limit,
            )  # fmt: skip

    # -- helpers -------------------------------------------------------------------------

    async def _thing(self, conn: AsyncConnection, org_id: str, thing_id: str) -> Thing:
        row = await _THINGS.fetch(conn, org_id, thing_id)
        return thing_from(row, (await _THINGS.tags_of(conn, [thing_id]))[thing_id])

    async def _channel(self, conn: AsyncConnection, org_id: str, channel_id: str) -> Channel:
        row = await _CHANNELS.fetch(conn, org_id, channel_id)
        return channel_from(row, (await _CHANNELS.tags_of(conn, [channel_id]))[channel_id])

    async def _page(
        self,
        conn: AsyncConnection,
        entities: EntityTable,
        build: Callable[[sa.Row[Any], list[str]], E],
        org_id: str,
        offset: int,
        limit: int,
        name: str | None,
        tag: str | None,
        sort: SortKey = "name",
    ) -> Page[E]:
        if sort not in SORT_KEYS:
            raise ValueError(f"sort must be one of {', '.join(SORT_KEYS)}")
        condition = entities.filtered(org_id, name=name, tag=tag)
        total = await count_rows(conn, entities.table, condition)
        column = entities.table.c[sort.removeprefix("-")]
        rows = list(
            await conn.execute(
                sa.select(entities.table)
                .where(condition)
                .order_by(column.desc() if sort.startswith("-") else column, entities.table.c.id)
                .offset(offset)
                .limit(limit)
            )
        )
        tags = await entities.tags_of(conn, [r.id for r in rows])
        items = [build(r, tags[r.id]) for r in rows]
        return Page(total=total, offset=offset, limit=limit, items=items)

    async def _update(
        self,
        conn: AsyncConnection,
        entities: EntityTable,
        org_id: str,
        entity_id: str,
        name: str | None,
        metadata: Mapping[str, Any] | None,
        tags: Iterable[str] | None,
    ) -> None:
        await entities.fetch(conn, org_id, entity_id)
        values: dict[str, Any] = {}
        if name is not None:
            values["name"] = name
        if metadata is not None:
            values["metadata"] = dict(metadata)
        if values:
            try:
                await conn.execute(
                    sa.update(entities.table)
                    .where(entities.table.c.id == entity_id)
                    .values(**values)
                )
            except sa.exc.IntegrityError as exc:
                raise entities.name_conflict(str(name)) from exc
        if tags is not None:
            await entities.set_tags(conn, entity_id, tags)

    async def _connected(
        self,
        conn: AsyncConnection,
        entities: EntityTable,
        build: Callable[[sa.Row[Any], list[str]], E],
        join_column: sa.Column[Any],
        filter_column: sa.Column[Any],
        filter_id: str,
        offset: int,
        limit: int,
    ) -> Page[tuple[E, Connection]]:
        condition = filter_column == filter_id
        total = await count_rows(conn, t.connections, condition)
        rows = list(
            await conn.execute(
                sa.select(
                    entities.table,
                    t.connections.c.channel_id,
                    t.connections.c.thing_id,
                    t.connections.c.can_publish,
                    t.connections.c.can_subscribe,
                    t.connections.c.created_at.label("connected_at"),
                )
                .join(t.connections, join_column == entities.table.c.id)
                .where(condition)
                .order_by(entities.table.c.name, entities.table.c.id)
                .offset(offset)
                .limit(limit)
            )
        )
        tags = await entities.tags_of(conn, [r.id for r in rows])
        items = [(build(r, tags[r.id]), connection_from(r, r.connected_at)) for r in rows]
        return Page(total=total, offset=offset, limit=limit, items=items)


class _Shared(AbstractAsyncContextManager[AsyncConnection]):
    """The transaction's one connection, handed to each operation without a new begin."""

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def __aenter__(self) -> AsyncConnection:
        return self._conn

    async def __aexit__(self, *exc_info: object) -> None:
        return None


class RegistryTransaction(Registry):
    """The registry's operations on one connection (from `Registry.transaction`).

    Its changes are held back until the transaction has committed. On PostgreSQL a
    failed statement ends the whole transaction: an error raised by an operation here
    is for the caller to let through, not to retry within the same transaction.
    """

    def __init__(self, registry: Registry, conn: AsyncConnection) -> None:
        super().__init__(conn.engine, registry._keys)
        self._registry = registry
        self.conn = conn
        self._pending: list[RegistryChange] = []

    def _begin(self) -> AbstractAsyncContextManager[AsyncConnection]:
        return _Shared(self.conn)

    def _read(self) -> AbstractAsyncContextManager[AsyncConnection]:
        return _Shared(self.conn)

    def _publish(self, change: RegistryChange) -> None:
        self._pending.append(change)

    def announce_all(self) -> None:
        """Tell the registry's listeners what this transaction changed (after commit)."""
        pending, self._pending = self._pending, []
        for change in pending:
            announce(self._registry._listeners, change)

    def add_listener(self, listener: ChangeListener) -> Callable[[], None]:
        return self._registry.add_listener(listener)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[RegistryTransaction]:
        yield self  # already one: a nested block joins it

    async def close(self) -> None:
        return None
