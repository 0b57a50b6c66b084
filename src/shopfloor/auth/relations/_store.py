"""Tuples, schemas and changes in the platform database, per organisation.

Every write is one transaction that first bumps the organisation's revision (which
locks its row on PostgreSQL, so writes of one organisation take turns and commit in
revision order), then checks the tuples against the schema read in that transaction,
changes the tuples and records each change under the new revision. A write that
changes nothing is rolled back: the revision stays. Changes are kept for a bounded
time and number of revisions (`prune`); `pruned_through` says how far they are gone.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from shopfloor.core import DatabaseError

from ._errors import InvalidRelationFilter, InvalidRelationTuple, RelationInUse
from ._feed import SchemaChange
from ._model import Change, RelationTuple, parse_object, parse_relation, parse_subject, parse_type
from ._schema import DEFAULT_SCHEMA, RelationSchema, parse_schema
from ._tables import changes, revisions, schemas, tuples

__all__ = [
    "ChangeBatch",
    "RelationFilter",
    "RelationStore",
    "Snapshot",
    "StoredSchema",
    "StoredTuple",
    "TuplePage",
    "Written",
]

logger = logging.getLogger(__name__)

#: Rows read or written per statement (SQLite takes at most 32766 parameters).
_CHUNK = 500


def _utc(value: datetime) -> datetime:
    """SQLite hands timestamps back naive; they were written in UTC."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True, kw_only=True)
class RelationFilter:
    """Tuples to list or delete: every given field must match exactly; `names` matches
    the tuples that name an object anywhere: as their object, as their subject, or in a
    subject set of it (`agent:press-7#controls`)."""

    subject: str | None = None
    relation: str | None = None
    object: str | None = None
    object_type: str | None = None
    names: str | None = None

    @classmethod
    def of(
        cls,
        *,
        subject: str | None = None,
        relation: str | None = None,
        obj: str | None = None,
        object_type: str | None = None,
    ) -> RelationFilter:
        """A filter with every given field checked (`invalid_relation_filter` otherwise)."""
        try:
            return cls(
                subject=None if subject is None else parse_subject(subject),
                relation=None if relation is None else parse_relation(relation),
                object=None if obj is None else parse_object(obj),
                object_type=None if object_type is None else parse_type(object_type),
            )
        except InvalidRelationTuple as exc:
            raise InvalidRelationFilter(str(exc)) from None

    @property
    def empty(self) -> bool:
        fields = (self.subject, self.relation, self.object, self.object_type, self.names)
        return all(v is None for v in fields)

    def where(self, org_id: str) -> list[sa.ColumnElement[bool]]:
        where: list[sa.ColumnElement[bool]] = [tuples.c.org_id == org_id]
        for column, value in (
            (tuples.c.subject, self.subject),
            (tuples.c.relation, self.relation),
            (tuples.c.object, self.object),
            (tuples.c.object_type, self.object_type),
        ):
            if value is not None:
                where.append(column == value)
        if self.names is not None:
            where.append(
                sa.or_(
                    tuples.c.object == self.names,
                    tuples.c.subject == self.names,
                    tuples.c.subject.startswith(f"{self.names}#", autoescape=True),
                )
            )
        return where


@dataclass(frozen=True, slots=True)
class StoredTuple:
    id: int
    tuple: RelationTuple
    created_at: datetime


@dataclass(frozen=True, slots=True)
class TuplePage:
    total: int
    offset: int
    limit: int
    items: list[StoredTuple]
    #: The organisation's revision, read before the page.
    revision: int
    #: Give it as `after` for the next page; None after the last one.
    next: str | None


@dataclass(frozen=True, slots=True)
class Written:
    """What a write did: the revision it made (or the current one if it changed nothing)."""

    revision: int
    changes: list[Change | SchemaChange]
    unchanged: int = 0


@dataclass(frozen=True, slots=True)
class StoredSchema:
    schema: RelationSchema
    custom: bool  # False: the default schema, the organisation has set none
    updated_at: datetime | None
    revision: int


@dataclass(frozen=True, slots=True)
class Snapshot:
    revision: int
    schema: RelationSchema
    tuples: list[RelationTuple]


@dataclass(frozen=True, slots=True)
class ChangeBatch:
    """Changes after a revision, whole revisions only, in order."""

    revision: int  # the organisation's revision when read
    changes: list[Change | SchemaChange]
    #: The changes asked for are no longer kept: load everything again.
    reset: bool = False
    #: More revisions follow the ones in `changes` (asked for too few).
    more: bool = False


Work = Callable[
    [AsyncConnection, int, RelationSchema], Awaitable[tuple[list[Change | SchemaChange], int]]
]


class RelationStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    @property
    def dialect(self) -> str:
        return self._engine.dialect.name

    @asynccontextmanager
    async def _connect(self) -> AsyncIterator[AsyncConnection]:
        try:
            async with self._engine.connect() as conn:
                yield conn
        except (sa.exc.OperationalError, sa.exc.InterfaceError, OSError) as exc:
            raise DatabaseError(f"the platform database did not answer: {exc}") from exc

    # -- reads ---------------------------------------------------------------------------

    async def revision(self, org_id: str) -> tuple[int, int]:
        """(revision, pruned_through) of an organisation; (0, 0) before its first write."""
        async with self._connect() as conn:
            return await _revision(conn, org_id)

    async def revisions(self, org_ids: Iterable[str]) -> dict[str, int]:
        wanted = list(org_ids)
        found: dict[str, int] = dict.fromkeys(wanted, 0)
        async with self._connect() as conn:
            for start in range(0, len(wanted), _CHUNK):
                rows = await conn.execute(
                    sa.select(revisions.c.org_id, revisions.c.revision).where(
                        revisions.c.org_id.in_(wanted[start : start + _CHUNK])
                    )
                )
                found.update({row.org_id: int(row.revision) for row in rows})
        return found

    async def schema(self, org_id: str) -> StoredSchema:
        async with self._connect() as conn:
            revision, _ = await _revision(conn, org_id)
            row = (await conn.execute(sa.select(schemas).where(schemas.c.org_id == org_id))).first()
        if row is None:
            return StoredSchema(DEFAULT_SCHEMA, False, None, revision)
        return StoredSchema(parse_schema(row.document), True, _utc(row.updated_at), revision)

    async def load(self, org_id: str) -> Snapshot:
        """Every tuple of an organisation and its schema, at `revision` or later (changes
        after `revision` replayed on top give the current graph: they are idempotent)."""
        async with self._connect() as conn:
            revision, _ = await _revision(conn, org_id)
            schema = await _schema(conn, org_id)
            rows = await conn.execute(
                sa.select(tuples.c.subject, tuples.c.relation, tuples.c.object)
                .where(tuples.c.org_id == org_id)
                .order_by(tuples.c.id)
            )
            found = [RelationTuple(row.subject, row.relation, row.object) for row in rows]
        return Snapshot(revision, schema, found)

    async def page(
        self,
        org_id: str,
        where: RelationFilter,
        *,
        offset: int,
        limit: int,
        after: str | None = None,
    ) -> TuplePage:
        """Tuples in the order they were added; `after` (a page's `next`) continues from
        there whatever was added or removed meanwhile."""
        conditions = where.where(org_id)
        total_query = sa.select(sa.func.count()).select_from(tuples).where(*conditions)
        if after is not None:
            if not after.isdigit():
                raise InvalidRelationFilter("after: give the `next` of the previous page")
            conditions.append(tuples.c.id > int(after))
        query = (
            sa.select(tuples).where(*conditions).order_by(tuples.c.id).offset(offset).limit(limit)
        )
        async with self._connect() as conn:
            revision, _ = await _revision(conn, org_id)
            total = await conn.scalar(total_query) or 0
            rows = (await conn.execute(query)).all()
        items = [
            StoredTuple(
                int(row.id), RelationTuple(row.subject, row.relation, row.object),
                _utc(row.created_at),
            )
            for row in rows
        ]  # fmt: skip
        following = str(items[-1].id) if len(items) == limit else None
        return TuplePage(total, offset, limit, items, revision, following)

    async def changes(self, org_id: str, *, after: int, max_revisions: int) -> ChangeBatch:
        """The changes of revisions `after + 1` to `after + max_revisions`."""
        async with self._connect() as conn:
            revision, pruned = await _revision(conn, org_id)
            if after < pruned or after > revision:
                return ChangeBatch(revision, [], reset=True)
            rows = await conn.execute(
                sa.select(changes)
                .where(
                    changes.c.org_id == org_id,
                    changes.c.revision > after,
                    changes.c.revision <= after + max_revisions,
                )
                .order_by(changes.c.revision, changes.c.position)
            )
            found = [_change(row) for row in rows]
        return ChangeBatch(revision, found, more=after + max_revisions < revision)

    # -- writes --------------------------------------------------------------------------

    async def add(self, org_id: str, items: Sequence[RelationTuple]) -> Written:
        """Add tuples (all or none); those there already are counted as unchanged."""
        wanted = list(dict.fromkeys(items))

        async def work(
            conn: AsyncConnection, revision: int, schema: RelationSchema
        ) -> tuple[list[Change | SchemaChange], int]:
            for item in wanted:
                schema.check_tuple(item)
            present = await _existing(conn, org_id, wanted)
            new = [item for item in wanted if item not in present]
            now = datetime.now(UTC)
            for start in range(0, len(new), _CHUNK):
                await conn.execute(
                    tuples.insert(),
                    [
                        {"org_id": org_id, "subject": t.subject, "relation": t.relation,
                         "object": t.object, "object_type": t.object_type, "created_at": now}
                        for t in new[start : start + _CHUNK]
                    ],
                )  # fmt: skip
            made: list[Change | SchemaChange] = [Change(revision, "add", t) for t in new]
            return made, len(wanted) - len(new)

        return await self._write(org_id, work)

    async def remove(self, org_id: str, items: Sequence[RelationTuple]) -> Written:
        """Remove tuples; those that are not there are counted as unchanged."""
        wanted = list(dict.fromkeys(items))

        async def work(
            conn: AsyncConnection, revision: int, _schema: RelationSchema
        ) -> tuple[list[Change | SchemaChange], int]:
            present = await _existing(conn, org_id, wanted)
            gone = [item for item in wanted if item in present]
            ids = [present[item] for item in gone]
            for start in range(0, len(ids), _CHUNK):
                part = ids[start : start + _CHUNK]
                await conn.execute(tuples.delete().where(tuples.c.id.in_(part)))
            made: list[Change | SchemaChange] = [Change(revision, "remove", t) for t in gone]
            return made, len(wanted) - len(gone)

        return await self._write(org_id, work)

    async def remove_matching(self, org_id: str, where: RelationFilter) -> Written:
        """Remove every tuple the filter matches (a filter must name something)."""
        if where.empty:
            raise InvalidRelationFilter(
                "name the tuples to delete: a body, or subject, relation, object or object_type"
            )

        async def work(
            conn: AsyncConnection, revision: int, _schema: RelationSchema
        ) -> tuple[list[Change | SchemaChange], int]:
            conditions = where.where(org_id)
            rows = await conn.execute(
                sa.select(tuples.c.subject, tuples.c.relation, tuples.c.object)
                .where(*conditions)
                .order_by(tuples.c.id)
            )
            gone = [RelationTuple(row.subject, row.relation, row.object) for row in rows]
            await conn.execute(tuples.delete().where(*conditions))
            return [Change(revision, "remove", t) for t in gone], 0

        return await self._write(org_id, work)

    async def set_schema(
        self, org_id: str, schema: RelationSchema, *, updated_by: str | None
    ) -> Written:
        """Replace the organisation's schema; refused while tuples use a relation it drops."""

        async def work(
            conn: AsyncConnection, revision: int, current: RelationSchema
        ) -> tuple[list[Change | SchemaChange], int]:
            if schema == current:
                return [], 1
            used = await _relations_in_use(conn, org_id)
            dropped = schema.used_by(used)
            if dropped:
                raise RelationInUse(
                    f"tuples still use {', '.join(dropped)}: delete them first, or keep "
                    "the relation in the schema"
                )
            values = {"document": schema.to_json(), "updated_at": datetime.now(UTC),
                      "updated_by": updated_by}  # fmt: skip
            done = await conn.execute(
                schemas.update().where(schemas.c.org_id == org_id).values(**values)
            )
            if done.rowcount == 0:
                await conn.execute(schemas.insert().values(org_id=org_id, **values))
            return [SchemaChange(revision, schema)], 0

        return await self._write(org_id, work)

    async def _write(self, org_id: str, work: Work) -> Written:
        async with self._connect() as conn:
            transaction = await conn.begin()
            try:
                revision = await _bump(conn, org_id)
                made, unchanged = await work(conn, revision, await _schema(conn, org_id))
                if not made:
                    await transaction.rollback()
                    return Written(revision - 1, [], unchanged)
                await _record(conn, org_id, made)
                await transaction.commit()
            finally:
                if transaction.is_active:
                    await transaction.rollback()
        return Written(revision, made, unchanged)

    async def prune(self, *, keep: timedelta, keep_revisions: int) -> int:
        """Remove the changes older than `keep` and beyond the newest `keep_revisions` of
        each organisation; returns how many went."""
        threshold = datetime.now(UTC) - keep
        removed = 0
        async with self._connect() as conn:
            orgs = (await conn.execute(sa.select(revisions))).all()
        for row in orgs:
            async with self._connect() as conn, conn.begin():
                old = await conn.scalar(
                    sa.select(sa.func.max(changes.c.revision)).where(
                        changes.c.org_id == row.org_id, changes.c.created_at < threshold
                    )
                )
                through = max(int(old or 0), int(row.revision) - keep_revisions)
                if through <= int(row.pruned_through):
                    continue
                done = await conn.execute(
                    changes.delete().where(
                        changes.c.org_id == row.org_id, changes.c.revision <= through
                    )
                )
                await conn.execute(
                    revisions.update()
                    .where(revisions.c.org_id == row.org_id, revisions.c.pruned_through < through)
                    .values(pruned_through=through)
                )
                removed += int(done.rowcount or 0)
        return removed


async def _revision(conn: AsyncConnection, org_id: str) -> tuple[int, int]:
    row = (
        await conn.execute(
            sa.select(revisions.c.revision, revisions.c.pruned_through).where(
                revisions.c.org_id == org_id
            )
        )
    ).first()
    return (0, 0) if row is None else (int(row.revision), int(row.pruned_through))


async def _bump(conn: AsyncConnection, org_id: str) -> int:
    """The next revision of the organisation; holds its row until the transaction ends."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    await conn.execute(
        dialect.insert(revisions)
        .values(org_id=org_id, revision=0, pruned_through=0)
        .on_conflict_do_nothing(index_elements=["org_id"])
    )
    await conn.execute(
        revisions.update()
        .where(revisions.c.org_id == org_id)
        .values(revision=revisions.c.revision + 1)
    )
    revision = await conn.scalar(
        sa.select(revisions.c.revision).where(revisions.c.org_id == org_id)
    )
    return int(revision or 0)


async def _schema(conn: AsyncConnection, org_id: str) -> RelationSchema:
    document = await conn.scalar(sa.select(schemas.c.document).where(schemas.c.org_id == org_id))
    return DEFAULT_SCHEMA if document is None else parse_schema(document)


async def _existing(
    conn: AsyncConnection, org_id: str, wanted: Sequence[RelationTuple]
) -> dict[RelationTuple, int]:
    """Which of `wanted` are stored, with their ids."""
    found: dict[RelationTuple, int] = {}
    targets = set(wanted)
    for start in range(0, len(wanted), _CHUNK):
        part = wanted[start : start + _CHUNK]
        rows = await conn.execute(
            sa.select(tuples.c.id, tuples.c.subject, tuples.c.relation, tuples.c.object).where(
                tuples.c.org_id == org_id,
                tuples.c.object.in_({t.object for t in part}),
                tuples.c.subject.in_({t.subject for t in part}),
            )
        )
        for row in rows:
            item = RelationTuple(row.subject, row.relation, row.object)
            if item in targets:
                found[item] = int(row.id)
    return found


async def _relations_in_use(conn: AsyncConnection, org_id: str) -> set[str]:
    """Relations the organisation's tuples name, as relation or in a `#relation` userset."""
    used = set(
        await conn.scalars(sa.select(tuples.c.relation).where(tuples.c.org_id == org_id).distinct())
    )
    usersets = await conn.scalars(
        sa.select(tuples.c.subject)
        .where(tuples.c.org_id == org_id, tuples.c.subject.contains("#"))
        .distinct()
    )
    used.update(subject.partition("#")[2] for subject in usersets)
    return used


async def _record(
    conn: AsyncConnection, org_id: str, made: Sequence[Change | SchemaChange]
) -> None:
    now = datetime.now(UTC)
    rows: list[dict[str, Any]] = []
    for position, change in enumerate(made):
        row: dict[str, Any] = {"org_id": org_id, "revision": change.revision,
                               "position": position, "created_at": now}  # fmt: skip
        if isinstance(change, SchemaChange):
            row |= {"op": "schema", "subject": None, "relation": None, "object": None,
                    "schema": change.schema.to_json()}  # fmt: skip
        else:
            row |= {"op": change.op, "subject": change.tuple.subject,
                    "relation": change.tuple.relation, "object": change.tuple.object,
                    "schema": None}  # fmt: skip
        rows.append(row)
    for start in range(0, len(rows), _CHUNK):
        await conn.execute(changes.insert(), rows[start : start + _CHUNK])


def _change(row: Any) -> Change | SchemaChange:
    if row.op == "schema":
        return SchemaChange(int(row.revision), parse_schema(row.schema))
    return Change(int(row.revision), row.op, RelationTuple(row.subject, row.relation, row.object))
