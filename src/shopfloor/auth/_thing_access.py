"""Thing authentication and channel authorisation for the protocol adapters.

Every published message needs "whose key is this?" and "may it publish here?"; asking
the database each time would cap throughput, so answers are cached briefly. Registry
changes (`on_change`) drop the affected entries at once: in the platform they come
from the event hub, so a change made in any process of a split deployment reaches
every process's cache within milliseconds; were an event missed (the bus down),
an entry still expires after `ttl` seconds.

Answers are cached by the key itself: the keyed hash the registry looks keys up by
(HMAC-SHA256 through OpenSSL) cost about a tenth of a publish, and a process that can
decrypt every key for broker sync gains nothing from not holding the ones in use.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from shopfloor.registry import Permission, Registry, RegistryChange

_MISSING: frozenset[Permission] = frozenset()


@dataclass(frozen=True, slots=True)
class AuthenticatedThing:
    id: str
    org_id: str


@dataclass
class _Cache:
    ttl: float
    max_entries: int
    by_key: dict[str, tuple[AuthenticatedThing | None, float]] = field(default_factory=dict)
    by_id: dict[str, tuple[AuthenticatedThing | None, float]] = field(default_factory=dict)
    permissions: dict[tuple[str, str], tuple[frozenset[Permission], float]] = field(
        default_factory=dict
    )

    def trim(self) -> None:
        # Crude but bounded: when full, start afresh (entries are cheap to rebuild).
        if len(self.by_key) > self.max_entries:
            self.by_key.clear()
        if len(self.by_id) > self.max_entries:
            self.by_id.clear()
        if len(self.permissions) > self.max_entries:
            self.permissions.clear()


class ThingAccess:
    def __init__(
        self,
        registry: Registry,
        *,
        ttl: float = 5.0,
        negative_ttl: float = 1.0,
        max_entries: int = 100_000,
        follow_registry: bool = True,
    ) -> None:
        """`follow_registry` listens to `registry` itself; the platform feeds `on_change`
        from its event hub instead."""
        self._registry = registry
        self._negative_ttl = negative_ttl
        self._cache = _Cache(ttl=ttl, max_entries=max_entries)
        # One registry look-up per key (and per connection) at a time: when an entry
        # expires under load, every request of that thing missed at once, and 32
        # concurrent look-ups stalled the loop for 100+ ms every `ttl` seconds.
        self._loading: dict[object, asyncio.Future[Any]] = {}
        # Bumped by every change announcement: a look-up that began before a change
        # answers its callers but does not fill the cache with what may be stale.
        self._generation = 0
        self._unfollow = registry.add_listener(self.on_change) if follow_registry else None

    def close(self) -> None:
        """Stop following the registry (when `follow_registry` was set)."""
        if self._unfollow is not None:
            self._unfollow()
            self._unfollow = None

    async def authenticate(self, key: str) -> AuthenticatedThing | None:
        """The thing a key belongs to, or None for an unknown key."""
        if not key:
            return None
        cached = self._cache.by_key.get(key)
        if cached is not None and cached[1] > time.monotonic():
            return cached[0]
        found: AuthenticatedThing | None = await self._load(("key", key), self._lookup_key, key)
        return found

    async def _lookup_key(self, key: str) -> AuthenticatedThing | None:
        generation = self._generation
        thing = await self._registry.thing_by_key(key)
        found = AuthenticatedThing(thing.id, thing.org_id) if thing else None
        if generation == self._generation:
            ttl = self._cache.ttl if found else self._negative_ttl
            self._cache.trim()
            self._cache.by_key[key] = (found, time.monotonic() + ttl)
        return found

    async def _load(self, token: object, lookup: Callable[..., Awaitable[Any]], *args: Any) -> Any:
        """Run `lookup(*args)` once for every caller asking for `token` meanwhile."""
        loading = self._loading.get(token)
        if loading is None:
            loading = asyncio.ensure_future(lookup(*args))
            self._loading[token] = loading
            loading.add_done_callback(lambda _done: self._loading.pop(token, None))
        # Shielded: one caller giving up must not cancel the look-up the others await.
        return await asyncio.shield(loading)

    async def authenticate_as(self, thing_id: str, key: str) -> AuthenticatedThing | None:
        """MQTT style: the username claims a thing id, the password must be its key."""
        thing = await self.authenticate(key)
        return thing if thing is not None and thing.id == thing_id else None

    async def thing(self, thing_id: str) -> AuthenticatedThing | None:
        """The thing of an id, or None when there is none (a certificate names only the id).

        Cached like keys, and dropped by the same registry changes: a deleted thing stops
        being admitted by its certificate at once.
        """
        cached = self._cache.by_id.get(thing_id)
        if cached is not None and cached[1] > time.monotonic():
            return cached[0]
        found: AuthenticatedThing | None = await self._load(
            ("id", thing_id), self._lookup_id, thing_id
        )
        return found

    async def _lookup_id(self, thing_id: str) -> AuthenticatedThing | None:
        generation = self._generation
        thing = await self._registry.find_thing(thing_id)
        found = AuthenticatedThing(thing.id, thing.org_id) if thing else None
        if generation == self._generation:
            ttl = self._cache.ttl if found else self._negative_ttl
            self._cache.trim()
            self._cache.by_id[thing_id] = (found, time.monotonic() + ttl)
        return found

    async def permissions(self, thing_id: str, channel_id: str) -> frozenset[Permission]:
        cached = self._cache.permissions.get((thing_id, channel_id))
        if cached is not None and cached[1] > time.monotonic():
            return cached[0]
        granted: frozenset[Permission] = await self._load(
            ("connection", thing_id, channel_id), self._lookup_permissions, thing_id, channel_id
        )
        return granted

    async def _lookup_permissions(self, thing_id: str, channel_id: str) -> frozenset[Permission]:
        generation = self._generation
        connection = await self._registry.connection(channel_id, thing_id)
        granted = connection.permissions if connection else _MISSING
        if generation == self._generation:
            ttl = self._cache.ttl if granted else self._negative_ttl
            self._cache.trim()
            self._cache.permissions[(thing_id, channel_id)] = (granted, time.monotonic() + ttl)
        return granted

    async def allowed(self, thing_id: str, channel_id: str, permission: Permission) -> bool:
        return permission in await self.permissions(thing_id, channel_id)

    def forget_all(self) -> None:
        """Drop every cached answer (after the change feed may have missed changes)."""
        self._generation += 1
        self._cache.by_key.clear()
        self._cache.by_id.clear()
        self._cache.permissions.clear()

    def on_change(self, change: RegistryChange) -> None:
        self._generation += 1
        affected = set(change.thing_ids)
        if not affected:
            return
        self._cache.by_key = {
            k: entry
            for k, entry in self._cache.by_key.items()
            if entry[0] is None or entry[0].id not in affected
        }
        for thing_id in affected:
            self._cache.by_id.pop(thing_id, None)
        self._cache.permissions = {
            k: v for k, v in self._cache.permissions.items() if k[0] not in affected
        }
        if change.kind in ("thing_created", "thing_key_rotated"):
            # a negative entry may now be wrong
            self._cache.by_key = {k: e for k, e in self._cache.by_key.items() if e[0] is not None}
