"""Things and channels share one shape: name, metadata and tags inside an organisation."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from ._errors import Conflict, NotFound


def new_id() -> str:
    return str(uuid.uuid4())


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """SQLite hands timestamps back naive; they were written in UTC."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def is_unique_violation(exc: sa.exc.IntegrityError) -> bool:
    text = str(exc.orig).lower()
    return "unique" in text or "duplicate key" in text


@dataclass(frozen=True, slots=True)
class EntityTable:
    """The tables behind one kind of entity, and the helpers that query them."""

    kind: str
    table: sa.Table
    tags: sa.Table
    tag_fk: sa.Column[Any]

    async def tags_of(self, conn: AsyncConnection, ids: Sequence[str]) -> dict[str, list[str]]:
        found: dict[str, list[str]] = {entity_id: [] for entity_id in ids}
        if not ids:
            return found
        rows = await conn.execute(
            sa.select(self.tag_fk, self.tags.c.tag)
            .where(self.tag_fk.in_(ids))
            .order_by(self.tags.c.tag)
        )
        for entity_id, tag in rows:
            found[entity_id].append(tag)
        return found

    async def set_tags(self, conn: AsyncConnection, entity_id: str, tags: Iterable[str]) -> None:
        await conn.execute(sa.delete(self.tags).where(self.tag_fk == entity_id))
        unique = sorted(set(tags))
        if unique:
            await conn.execute(
                sa.insert(self.tags), [{self.tag_fk.name: entity_id, "tag": t} for t in unique]
            )

    async def fetch(self, conn: AsyncConnection, org_id: str, entity_id: str) -> sa.Row[Any]:
        row = (
            await conn.execute(
                sa.select(self.table).where(
                    self.table.c.id == entity_id, self.table.c.org_id == org_id
                )
            )
        ).first()
        if row is None:
            raise NotFound(f"{self.kind} {entity_id} not found", code=f"{self.kind}_not_found")
        return row

    def filtered(self, org_id: str, *, name: str | None, tag: str | None) -> sa.ColumnElement[bool]:
        condition = self.table.c.org_id == org_id
        if name:
            pattern = "%" + name.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            condition = condition & self.table.c.name.ilike(pattern, escape="\\")
        if tag:
            condition = condition & sa.exists().where(
                self.tag_fk == self.table.c.id, self.tags.c.tag == tag
            )
        return condition

    async def insert(self, conn: AsyncConnection, values: Mapping[str, Any]) -> None:
        try:
            await conn.execute(sa.insert(self.table).values(**values))
        except sa.exc.IntegrityError as exc:
            raise self.name_conflict(str(values["name"])) from exc

    def name_conflict(self, name: str) -> Conflict:
        return Conflict(f"a {self.kind} named {name!r} already exists", code="name_taken")
