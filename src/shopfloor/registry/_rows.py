"""Turning database rows into registry value objects."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from ._entities import as_utc
from ._types import Channel, Connection, Org, Permission, Role, Thing, User


async def count_rows(conn: AsyncConnection, table: sa.Table, condition: Any) -> int:
    total = await conn.scalar(sa.select(sa.func.count()).select_from(table).where(condition))
    return int(total or 0)


def fields_of(obj: Org | User) -> dict[str, Any]:
    values = {name: getattr(obj, name) for name in obj.__dataclass_fields__}
    if isinstance(obj, User):
        values["role"] = obj.role.value if obj.role else None
    return values


def org_from(row: sa.Row[Any]) -> Org:
    return Org(id=row.id, name=row.name, created_at=as_utc(row.created_at))


def user_from(row: sa.Row[Any]) -> User:
    return User(
        id=row.id,
        email=row.email,
        org_id=row.org_id,
        role=Role(row.role) if row.role else None,
        platform_admin=bool(row.platform_admin),
        password_hash=row.password_hash,
        created_at=as_utc(row.created_at),
        token_generation=row.token_generation,
    )


def thing_from(row: sa.Row[Any], tags: list[str]) -> Thing:
    return Thing(
        id=row.id,
        org_id=row.org_id,
        name=row.name,
        metadata=dict(row.metadata),
        tags=tuple(tags),
        key_ciphertext=row.key_ciphertext,
        created_at=as_utc(row.created_at),
    )


def channel_from(row: sa.Row[Any], tags: list[str]) -> Channel:
    return Channel(
        id=row.id,
        org_id=row.org_id,
        name=row.name,
        metadata=dict(row.metadata),
        tags=tuple(tags),
        created_at=as_utc(row.created_at),
    )


def connection_from(row: sa.Row[Any], created_at: datetime | None = None) -> Connection:
    granted = set()
    if row.can_publish:
        granted.add(Permission.PUBLISH)
    if row.can_subscribe:
        granted.add(Permission.SUBSCRIBE)
    return Connection(
        channel_id=row.channel_id,
        thing_id=row.thing_id,
        permissions=frozenset(granted),
        created_at=as_utc(created_at or row.created_at),
    )
