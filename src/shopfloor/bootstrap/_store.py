"""Configurations in the platform database (SQLite or PostgreSQL).

Every method that writes takes an optional `conn`: given, it runs inside the caller's
transaction (a provisioning step that creates a thing and its configuration at once)
and commits nothing; omitted, it runs in a transaction of its own. Every call is
scoped by `org_id`: another organisation's configuration is reported as not found.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from shopfloor.registry import NotFound, Page

from . import _tables as t
from ._errors import ConfigConflict, ConfigNotFound, InvalidConfig
from ._sealed import SealedFields
from ._types import BootstrapConfig, State

Clock = Callable[[], datetime]

EXTERNAL_ID = re.compile(r"[A-Za-z0-9._:@~-]{1,200}")
MIN_EXTERNAL_KEY = 16
MAX_EXTERNAL_KEY = 1024
MAX_TEXT = 256 * 1024


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """SQLite hands timestamps back naive; they were written in UTC."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def check_external_id(external_id: str) -> str:
    if not EXTERNAL_ID.fullmatch(external_id):
        raise InvalidConfig(
            "an external id is 1-200 characters of letters, digits and . _ : @ ~ -",
            code="bootstrap_invalid_external_id",
        )
    return external_id


def _check_key(external_key: str) -> str:
    if not MIN_EXTERNAL_KEY <= len(external_key) <= MAX_EXTERNAL_KEY:
        raise InvalidConfig(
            f"an external key is {MIN_EXTERNAL_KEY}-{MAX_EXTERNAL_KEY} characters "
            "(a random one: it is all that keeps the device's credentials secret)",
            code="bootstrap_weak_external_key",
        )
    return external_key


def _check_text(field: str, value: str) -> str:
    if len(value) > MAX_TEXT:
        raise InvalidConfig(f"{field} is over {MAX_TEXT} characters", code="bootstrap_too_long")
    return value


def _config_from(row: sa.Row[Any]) -> BootstrapConfig:
    return BootstrapConfig(
        thing_id=row.thing_id,
        org_id=row.org_id,
        external_id=row.external_id,
        name=row.name,
        channels=tuple(row.channels),
        content=row.content,
        client_cert=row.client_cert,
        ca_cert=row.ca_cert,
        state=State(row.state),
        failed_attempts=row.failed_attempts,
        created_at=as_utc(row.created_at),
        updated_at=as_utc(row.updated_at),
        external_key_digest=row.external_key_digest,
        external_key_sealed=row.external_key_sealed,
        client_key_sealed=row.client_key_sealed,
    )


class ConfigStore:
    def __init__(self, engine: AsyncEngine, sealed: SealedFields, *, clock: Clock = utcnow) -> None:
        self._engine = engine
        self.sealed = sealed
        self.clock = clock

    @asynccontextmanager
    async def _writing(self, conn: AsyncConnection | None) -> AsyncIterator[AsyncConnection]:
        if conn is not None:
            yield conn
            return
        async with self._engine.begin() as own:
            yield own

    @asynccontextmanager
    async def _reading(self, conn: AsyncConnection | None) -> AsyncIterator[AsyncConnection]:
        if conn is not None:
            yield conn
            return
        async with self._engine.connect() as own:
            yield own

    # -- writing ----------------------------------------------------------------------

    async def create(
        self,
        org_id: str,
        *,
        thing_id: str,
        external_id: str,
        external_key: str,
        name: str = "",
        channels: Iterable[str] = (),
        content: str = "",
        client_cert: str = "",
        client_key: str = "",
        ca_cert: str = "",
        state: State = State.INACTIVE,
        conn: AsyncConnection | None = None,
    ) -> BootstrapConfig:
        """Configure an existing thing of `org_id` (channels of `org_id` only), inactive.

        Raises registry `NotFound` (`thing_not_found`, `channel_not_found`),
        `ConfigConflict` when the external id or the thing is configured already,
        `InvalidConfig` for an external id, key or text it cannot hold.
        """
        check_external_id(external_id)
        _check_key(external_key)
        for field, value in (("content", content), ("client_cert", client_cert),
                             ("client_key", client_key), ("ca_cert", ca_cert)):  # fmt: skip
            _check_text(field, value)
        channel_ids = list(dict.fromkeys(channels))
        now = self.clock()
        async with self._writing(conn) as c:
            thing = (
                await c.execute(
                    sa.select(t.things.c.name).where(
                        t.things.c.id == thing_id, t.things.c.org_id == org_id
                    )
                )
            ).first()
            if thing is None:
                raise NotFound(f"thing {thing_id} not found", code="thing_not_found")
            await self._require_channels(c, org_id, channel_ids)
            taken = (
                await c.execute(
                    sa.select(t.configs.c.thing_id, t.configs.c.external_id).where(
                        (t.configs.c.thing_id == thing_id)
                        | (t.configs.c.external_id == external_id)
                    )
                )
            ).first()
            if taken is not None:
                raise _conflict(taken.thing_id == thing_id)
            values = {
                "thing_id": thing_id,
                "org_id": org_id,
                "external_id": external_id,
                "external_key_digest": self.sealed.digest(external_key),
                "external_key_sealed": self.sealed.seal("external_key", thing_id, external_key),
                "name": name or thing.name,
                "channels": channel_ids,
                "content": content,
                "client_cert": client_cert,
                "client_key_sealed": self.sealed.seal("client_key", thing_id, client_key),
                "ca_cert": ca_cert,
                "state": int(state),
                "failed_attempts": 0,
                "created_at": now,
                "updated_at": now,
            }
            try:
                await c.execute(sa.insert(t.configs).values(**values))
            except sa.exc.IntegrityError as exc:  # configured concurrently
                raise _conflict(False) from exc
            # It is known now: off the list of devices waiting for a configuration.
            await c.execute(sa.delete(t.unknown).where(t.unknown.c.external_id == external_id))
            return await self._fetch(c, org_id, thing_id)

    async def update(
        self,
        org_id: str,
        thing_id: str,
        *,
        name: str | None = None,
        content: str | None = None,
        conn: AsyncConnection | None = None,
    ) -> BootstrapConfig:
        values: dict[str, Any] = {}
        if name is not None:
            values["name"] = name
        if content is not None:
            values["content"] = _check_text("content", content)
        return await self._set(org_id, thing_id, values, conn)

    async def set_channels(
        self,
        org_id: str,
        thing_id: str,
        channels: Iterable[str],
        *,
        conn: AsyncConnection | None = None,
    ) -> BootstrapConfig:
        channel_ids = list(dict.fromkeys(channels))
        async with self._writing(conn) as c:
            await self._require_channels(c, org_id, channel_ids)
            return await self._set(org_id, thing_id, {"channels": channel_ids}, c)

    async def set_certs(
        self,
        org_id: str,
        thing_id: str,
        *,
        client_cert: str | None = None,
        client_key: str | None = None,
        ca_cert: str | None = None,
        conn: AsyncConnection | None = None,
    ) -> BootstrapConfig:
        values: dict[str, Any] = {}
        if client_cert is not None:
            values["client_cert"] = _check_text("client_cert", client_cert)
        if client_key is not None:
            sealed = self.sealed.seal("client_key", thing_id, _check_text("client_key", client_key))
            values["client_key_sealed"] = sealed
        if ca_cert is not None:
            values["ca_cert"] = _check_text("ca_cert", ca_cert)
        return await self._set(org_id, thing_id, values, conn)

    async def set_state(
        self, org_id: str, thing_id: str, state: State, *, conn: AsyncConnection | None = None
    ) -> BootstrapConfig:
        return await self._set(org_id, thing_id, {"state": int(state)}, conn)

    async def delete(
        self, org_id: str, thing_id: str, *, conn: AsyncConnection | None = None
    ) -> BootstrapConfig:
        """Remove the configuration (the thing and its connections stay); returns it."""
        async with self._writing(conn) as c:
            config = await self._fetch(c, org_id, thing_id)
            await c.execute(sa.delete(t.configs).where(t.configs.c.thing_id == thing_id))
            return config

    async def count_failure(self, thing_id: str) -> None:
        """A known external id presented with a wrong key or proof."""
        async with self._engine.begin() as c:
            await c.execute(
                sa.update(t.configs)
                .where(t.configs.c.thing_id == thing_id)
                .values(failed_attempts=t.configs.c.failed_attempts + 1)
            )

    # -- reading ----------------------------------------------------------------------

    async def get(
        self, org_id: str, thing_id: str, *, conn: AsyncConnection | None = None
    ) -> BootstrapConfig:
        async with self._reading(conn) as c:
            return await self._fetch(c, org_id, thing_id)

    async def by_external_id(
        self, external_id: str, *, conn: AsyncConnection | None = None
    ) -> BootstrapConfig | None:
        async with self._reading(conn) as c:
            row = (
                await c.execute(sa.select(t.configs).where(t.configs.c.external_id == external_id))
            ).first()
        return None if row is None else _config_from(row)

    async def page(
        self,
        org_id: str,
        *,
        offset: int = 0,
        limit: int = 100,
        state: State | None = None,
        name: str | None = None,
        external_id: str | None = None,
        conn: AsyncConnection | None = None,
    ) -> Page[BootstrapConfig]:
        condition = t.configs.c.org_id == org_id
        if state is not None:
            condition = condition & (t.configs.c.state == int(state))
        if name:
            condition = condition & t.configs.c.name.ilike(_contains(name), escape="\\")
        if external_id:
            condition = condition & (t.configs.c.external_id == external_id)
        async with self._reading(conn) as c:
            total = await c.scalar(
                sa.select(sa.func.count()).select_from(t.configs).where(condition)
            )
            rows = await c.execute(
                sa.select(t.configs)
                .where(condition)
                .order_by(t.configs.c.name, t.configs.c.thing_id)
                .offset(offset)
                .limit(limit)
            )
            items = [_config_from(r) for r in rows]
        return Page(total=int(total or 0), offset=offset, limit=limit, items=items)

    async def channel_details(
        self, config: BootstrapConfig, *, conn: AsyncConnection | None = None
    ) -> list[dict[str, Any]]:
        """`{"id", "name", "metadata"}` of the configuration's channels that still exist."""
        if not config.channels:
            return []
        async with self._reading(conn) as c:
            rows = await c.execute(
                sa.select(t.channels.c.id, t.channels.c.name, t.channels.c.metadata).where(
                    t.channels.c.id.in_(config.channels), t.channels.c.org_id == config.org_id
                )
            )
            found = {r.id: {"id": r.id, "name": r.name, "metadata": r.metadata} for r in rows}
        return [found[c] for c in config.channels if c in found]

    def external_key(self, config: BootstrapConfig) -> str:
        return self.sealed.open("external_key", config.thing_id, config.external_key_sealed)

    def client_key(self, config: BootstrapConfig) -> str:
        return self.sealed.open("client_key", config.thing_id, config.client_key_sealed)

    # -- helpers ----------------------------------------------------------------------

    async def _set(
        self, org_id: str, thing_id: str, values: dict[str, Any], conn: AsyncConnection | None
    ) -> BootstrapConfig:
        async with self._writing(conn) as c:
            await self._fetch(c, org_id, thing_id)
            if values:
                await c.execute(
                    sa.update(t.configs)
                    .where(t.configs.c.thing_id == thing_id)
                    .values(**values, updated_at=self.clock())
                )
            return await self._fetch(c, org_id, thing_id)

    async def _fetch(self, c: AsyncConnection, org_id: str, thing_id: str) -> BootstrapConfig:
        row = (
            await c.execute(
                sa.select(t.configs).where(
                    t.configs.c.thing_id == thing_id, t.configs.c.org_id == org_id
                )
            )
        ).first()
        if row is None:
            raise ConfigNotFound(f"thing {thing_id} has no bootstrap configuration")
        return _config_from(row)

    async def _require_channels(
        self, c: AsyncConnection, org_id: str, channel_ids: Sequence[str]
    ) -> None:
        if not channel_ids:
            return
        found = set(
            await c.scalars(
                sa.select(t.channels.c.id).where(
                    t.channels.c.id.in_(channel_ids), t.channels.c.org_id == org_id
                )
            )
        )
        missing = [c for c in channel_ids if c not in found]
        if missing:
            raise NotFound(f"channel {missing[0]} not found", code="channel_not_found")


def _contains(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _conflict(thing: bool) -> ConfigConflict:
    if thing:
        return ConfigConflict("this thing has a bootstrap configuration already")
    return ConfigConflict(
        "another configuration has this external id", code="bootstrap_external_id_taken"
    )
