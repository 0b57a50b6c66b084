"""Thing authentication and channel authorisation for the protocol adapters.

Every published message needs "whose key is this?" and "may it publish here?"; asking
the database each time would cap throughput, so answers are cached briefly. The
registry's change announcements drop affected entries at once in this process; other
processes (split deployments) see a change within `ttl` seconds.

Answers are cached by the key itself: the keyed hash the registry looks keys up by
(HMAC-SHA256 through OpenSSL) cost about a tenth of a publish, and a process that can
decrypt every key for broker sync gains nothing from not holding the ones in use.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

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
    permissions: dict[tuple[str, str], tuple[frozenset[Permission], float]] = field(
        default_factory=dict
    )

    def trim(self) -> None:
        # Crude but bounded: when full, start afresh (entries are cheap to rebuild).
        if len(self.by_key) > self.max_entries:
            self.by_key.clear()
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
    ) -> None:
        self._registry = registry
        self._negative_ttl = negative_ttl
        self._cache = _Cache(ttl=ttl, max_entries=max_entries)
        registry.add_listener(self._on_change)

    async def authenticate(self, key: str) -> AuthenticatedThing | None:
        """The thing a key belongs to, or None for an unknown key."""
        if not key:
            return None
        now = time.monotonic()
        cached = self._cache.by_key.get(key)
        if cached is not None and cached[1] > now:
            return cached[0]
        thing = await self._registry.thing_by_key(key)
        found = AuthenticatedThing(thing.id, thing.org_id) if thing else None
        ttl = self._cache.ttl if found else self._negative_ttl
        self._cache.trim()
        self._cache.by_key[key] = (found, now + ttl)
        return found

    async def authenticate_as(self, thing_id: str, key: str) -> AuthenticatedThing | None:
        """MQTT style: the username claims a thing id, the password must be its key."""
        thing = await self.authenticate(key)
        return thing if thing is not None and thing.id == thing_id else None

    async def permissions(self, thing_id: str, channel_id: str) -> frozenset[Permission]:
        now = time.monotonic()
        cached = self._cache.permissions.get((thing_id, channel_id))
        if cached is not None and cached[1] > now:
            return cached[0]
        connection = await self._registry.connection(channel_id, thing_id)
        granted = connection.permissions if connection else _MISSING
        ttl = self._cache.ttl if granted else self._negative_ttl
        self._cache.trim()
        self._cache.permissions[(thing_id, channel_id)] = (granted, now + ttl)
        return granted

    async def allowed(self, thing_id: str, channel_id: str, permission: Permission) -> bool:
        return permission in await self.permissions(thing_id, channel_id)

    def _on_change(self, change: RegistryChange) -> None:
        affected = set(change.thing_ids)
        if not affected:
            return
        self._cache.by_key = {
            k: entry
            for k, entry in self._cache.by_key.items()
            if entry[0] is None or entry[0].id not in affected
        }
        self._cache.permissions = {
            k: v for k, v in self._cache.permissions.items() if k[0] not in affected
        }
        if change.kind in ("thing_created", "thing_key_rotated"):
            # a negative entry may now be wrong
            self._cache.by_key = {k: e for k, e in self._cache.by_key.items() if e[0] is not None}
