"""`AasStore`: every organisation's shells, submodels and concept descriptions, and the
supplementary files their File elements name, in the platform database.

Objects travel as basyx-python-sdk model objects (`basyx.aas.model`); a row holds one
identifiable in the metamodel's JSON serialisation, read back with basyx's strict
decoder. Every row has a `version` (1, 2, ...): `put(..., version=n)` writes only over
version n, and `update(org, kind, id, change)` reads, changes and writes again until
no other writer came in between, so two writers of one submodel never lose each
other's change. An environment is stored whole in one transaction (`put_environment`).
Each change is announced as `aas.<org_id>.changed` (`kind`, `ids`, `op`).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import enum
import json
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import sqlalchemy as sa
from basyx.aas import model
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from shopfloor.core import Backoff

from ._errors import AasConflict, AasNotFound, InvalidAasRequest
from ._tables import aas_files, aas_objects, aas_submodel_refs

__all__ = [
    "AasStore",
    "Announce",
    "Kind",
    "Page",
    "StoredFile",
    "StoredObject",
    "changed_subject",
    "kind_of",
]

MAX_LIMIT = 1000
#: How often `update` reads again after another writer came in between, and how long
#: it waits before (randomised, growing: writers that collided spread out).
UPDATE_ATTEMPTS = 50
UPDATE_BACKOFF = Backoff(base=0.002, cap=0.1)

Identifiable = TypeVar("Identifiable", bound=model.Identifiable)
#: `announce(subject, data)`: the bus's `EventHub.emit`.
Announce = Callable[[str, dict[str, Any]], object]


class Kind(enum.StrEnum):
    SHELL = "shell"
    SUBMODEL = "submodel"
    CONCEPT_DESCRIPTION = "concept_description"


_CLASSES: dict[Kind, type[model.Identifiable]] = {
    Kind.SHELL: model.AssetAdministrationShell,
    Kind.SUBMODEL: model.Submodel,
    Kind.CONCEPT_DESCRIPTION: model.concept.ConceptDescription,
}


def kind_of(obj: model.Identifiable) -> Kind:
    for kind, cls in _CLASSES.items():
        if isinstance(obj, cls):
            return kind
    raise InvalidAasRequest(f"a {type(obj).__name__} is not stored on its own")


def changed_subject(org_id: str) -> str:
    return f"aas.{org_id}.changed"


@dataclass(frozen=True, slots=True)
class StoredObject:
    kind: Kind
    id: str
    obj: model.Identifiable
    version: int
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class StoredFile:
    path: str
    content_type: str
    data: bytes
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class Page:
    items: list[StoredObject]
    #: Where the next page starts (opaque), None after the last.
    cursor: str | None


def encode(obj: model.Identifiable) -> str:
    # basyx's adapters import lxml (0.3 s at every command's start): imported when used
    from basyx.aas.adapter.json import AASToJsonEncoder

    return json.dumps(obj, cls=AASToJsonEncoder, separators=(",", ":"))


def decode(body: str) -> model.Identifiable:
    from basyx.aas.adapter.json import StrictAASFromJsonDecoder

    obj = json.loads(body, cls=StrictAASFromJsonDecoder)
    if not isinstance(obj, model.Identifiable):
        raise InvalidAasRequest("a stored body is not an identifiable")
    return obj


def _cursor(last_id: str) -> str:
    return base64.urlsafe_b64encode(last_id.encode()).decode().rstrip("=")


def _after(cursor: str | None) -> str | None:
    if cursor is None:
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        return base64.b64decode(padded, altchars=b"-_", validate=True).decode()
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidAasRequest("not a cursor of this listing", code="invalid_cursor") from exc


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _global_asset_id(obj: model.Identifiable) -> str | None:
    if isinstance(obj, model.AssetAdministrationShell):
        return obj.asset_information.global_asset_id
    return None


def _key_values(obj: model.Identifiable) -> Iterator[str]:
    """Every key value of every reference in the object (semantic ids, isCaseOf, value
    ids, ...), read from its JSON serialisation, where each reference has `keys`."""

    def walk(node: Any) -> Iterator[str]:
        if isinstance(node, dict):
            for name, value in node.items():
                if name == "keys" and isinstance(value, list):
                    yield from (k["value"] for k in value if isinstance(k, dict) and "value" in k)
                else:
                    yield from walk(value)
        elif isinstance(node, list):
            for item in node:
                yield from walk(item)

    return walk(json.loads(encode(obj)))


class AasStore:
    def __init__(self, engine: AsyncEngine, *, announce: Announce | None = None) -> None:
        self._engine = engine
        self._announce = announce

    # -- reading ---------------------------------------------------------------------

    async def get(self, org_id: str, kind: Kind, obj_id: str) -> StoredObject:
        """One identifiable, or `AasNotFound`."""
        async with self._engine.connect() as conn:
            row = (await conn.execute(self._select(org_id, kind, obj_id))).first()
        if row is None:
            raise AasNotFound(f"no {kind.value.replace('_', ' ')} {obj_id!r}")
        return self._stored(row)

    async def page(
        self,
        org_id: str,
        kind: Kind,
        *,
        id_short: str | None = None,
        global_asset_id: str | None = None,
        ids: Sequence[str] | None = None,
        cursor: str | None = None,
        limit: int = 100,
    ) -> Page:
        """A page of the organisation's identifiables of `kind`, by id."""
        if not 1 <= limit <= MAX_LIMIT:
            raise InvalidAasRequest(f"limit is 1 to {MAX_LIMIT}", code="invalid_limit")
        t = aas_objects
        query = sa.select(t).where(t.c.org_id == org_id, t.c.kind == kind.value)
        if id_short is not None:
            query = query.where(t.c.id_short == id_short)
        if global_asset_id is not None:
            query = query.where(t.c.global_asset_id == global_asset_id)
        if ids is not None:
            query = query.where(t.c.id.in_(list(ids)))
        after = _after(cursor)
        if after is not None:
            query = query.where(t.c.id > after)
        query = query.order_by(t.c.id).limit(limit + 1)
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        items = [self._stored(row) for row in rows[:limit]]
        more = len(rows) > limit
        return Page(items, _cursor(items[-1].id) if more and items else None)

    async def shells_referring(self, org_id: str, submodel_id: str) -> list[str]:
        """The ids of the organisation's shells that refer to the submodel (by an index
        kept with the shells, not by reading them)."""
        t = aas_submodel_refs
        query = (
            sa.select(t.c.aas_id)
            .where(t.c.org_id == org_id, t.c.submodel_id == submodel_id)
            .distinct()
            .order_by(t.c.aas_id)
        )
        async with self._engine.connect() as conn:
            return [row.aas_id for row in await conn.execute(query)]

    async def all(self, org_id: str, kind: Kind) -> list[StoredObject]:
        """Every identifiable of `kind` (an export)."""
        found: list[StoredObject] = []
        cursor: str | None = None
        while True:
            page = await self.page(org_id, kind, cursor=cursor, limit=MAX_LIMIT)
            found.extend(page.items)
            if page.cursor is None:
                return found
            cursor = page.cursor

    async def environment(
        self, org_id: str, aas_ids: Iterable[str] | None = None
    ) -> list[model.Identifiable]:
        """Everything of the organisation, or the shells asked for (`AasNotFound` for
        one it does not hold), their submodels and the concept descriptions those
        reference: what an export or a Core's definition holds."""
        wanted = list(dict.fromkeys(aas_ids or ()))
        if not wanted:
            return [held.obj for kind in Kind for held in await self.all(org_id, kind)]
        shells = [(await self.get(org_id, Kind.SHELL, aas_id)).obj for aas_id in wanted]
        submodel_ids = {
            key.value
            for shell in shells
            if isinstance(shell, model.AssetAdministrationShell)
            for reference in shell.submodel
            for key in reference.key
            if key.type is model.KeyTypes.SUBMODEL
        }
        submodels = await self._every(org_id, Kind.SUBMODEL, submodel_ids)
        referenced = {value for obj in (*shells, *submodels) for value in _key_values(obj)}
        concepts = await self._every(org_id, Kind.CONCEPT_DESCRIPTION, referenced)
        return [*shells, *submodels, *concepts]

    async def _every(self, org_id: str, kind: Kind, ids: Iterable[str]) -> list[model.Identifiable]:
        wanted = sorted(set(ids))
        found: list[model.Identifiable] = []
        for start in range(0, len(wanted), MAX_LIMIT):
            page = await self.page(org_id, kind, ids=wanted[start : start + MAX_LIMIT],
                                   limit=MAX_LIMIT)  # fmt: skip
            found.extend(held.obj for held in page.items)
        return found

    # -- writing ---------------------------------------------------------------------

    async def put(
        self,
        org_id: str,
        obj: model.Identifiable,
        *,
        version: int | None = None,
        create: bool = False,
    ) -> StoredObject:
        """Store `obj`: new (`create`: `AasConflict` if its id is taken), over `version`
        (`AasConflict` if another writer came first), or over whatever is there."""
        kind = kind_of(obj)
        async with self._writing() as conn:
            stored = await self._put(conn, org_id, kind, obj, version=version, create=create)
        self._tell(org_id, kind, [stored.id], "put")
        return stored

    async def update(
        self,
        org_id: str,
        kind: Kind,
        obj_id: str,
        change: Callable[[model.Identifiable], None],
    ) -> StoredObject:
        """Read the object, let `change` change it in place, write it over the version
        read; again from the read when another writer came in between."""
        for attempt in range(UPDATE_ATTEMPTS):
            if attempt:
                await asyncio.sleep(UPDATE_BACKOFF.delay(attempt))
            held = await self.get(org_id, kind, obj_id)
            change(held.obj)
            if held.obj.id != obj_id:
                raise InvalidAasRequest("a change may not change the identifier")
            try:
                return await self.put(org_id, held.obj, version=held.version)
            except AasConflict:
                continue
        raise AasConflict(f"{obj_id!r} kept changing under this change; try again")

    async def delete(self, org_id: str, kind: Kind, obj_id: str) -> None:
        t = aas_objects
        async with self._engine.begin() as conn:
            deleted = await conn.execute(
                t.delete().where(t.c.org_id == org_id, t.c.kind == kind.value, t.c.id == obj_id)
            )
            if kind is Kind.SHELL:
                await self._refer(conn, org_id, obj_id, [])
        if not deleted.rowcount:
            raise AasNotFound(f"no {kind.value.replace('_', ' ')} {obj_id!r}")
        self._tell(org_id, kind, [obj_id], "delete")

    async def put_environment(
        self,
        org_id: str,
        objects: Iterable[model.Identifiable],
        files: Mapping[str, tuple[str, bytes]] = {},
        *,
        replace: bool = True,
    ) -> dict[Kind, list[str]]:
        """Store every object and file in one transaction; all or nothing. Without
        `replace`, an id already taken is an `AasConflict` and nothing is stored."""
        written: dict[Kind, list[str]] = {kind: [] for kind in Kind}
        async with self._writing() as conn:
            for obj in objects:
                kind = kind_of(obj)
                stored = await self._put(conn, org_id, kind, obj, version=None, create=not replace)
                written[kind].append(stored.id)
            for path, (content_type, data) in files.items():
                await self._put_file(conn, org_id, path, content_type, data)
        for kind, ids in written.items():
            if ids:
                self._tell(org_id, kind, ids, "put")
        return written

    # -- files -----------------------------------------------------------------------

    async def file(self, org_id: str, path: str) -> StoredFile:
        t = aas_files
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(sa.select(t).where(t.c.org_id == org_id, t.c.path == path))
            ).first()
        if row is None:
            raise AasNotFound(f"no file {path!r}", code="aas_file_not_found")
        return StoredFile(row.path, row.content_type, bytes(row.data), _utc(row.updated_at))

    async def files(self, org_id: str, paths: Iterable[str]) -> dict[str, StoredFile]:
        """The files of `paths` that are stored (an export)."""
        wanted = list(dict.fromkeys(paths))
        if not wanted:
            return {}
        t = aas_files
        async with self._engine.connect() as conn:
            rows = (
                await conn.execute(sa.select(t).where(t.c.org_id == org_id, t.c.path.in_(wanted)))
            ).all()
        return {
            row.path: StoredFile(row.path, row.content_type, bytes(row.data), _utc(row.updated_at))
            for row in rows
        }

    async def put_file(self, org_id: str, path: str, content_type: str, data: bytes) -> None:
        async with self._engine.begin() as conn:
            await self._put_file(conn, org_id, path, content_type, data)

    async def delete_file(self, org_id: str, path: str) -> None:
        t = aas_files
        async with self._engine.begin() as conn:
            deleted = await conn.execute(t.delete().where(t.c.org_id == org_id, t.c.path == path))
        if not deleted.rowcount:
            raise AasNotFound(f"no file {path!r}", code="aas_file_not_found")

    # -- inside ----------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _writing(self) -> AsyncIterator[AsyncConnection]:
        """A write transaction; an insert that lost a race to another is AasConflict."""
        try:
            async with self._engine.begin() as conn:
                yield conn
        except IntegrityError as exc:
            raise AasConflict("an object was created meanwhile", code="aas_changed") from exc

    @staticmethod
    def _select(org_id: str, kind: Kind, obj_id: str) -> sa.Select[Any]:
        t = aas_objects
        return sa.select(t).where(t.c.org_id == org_id, t.c.kind == kind.value, t.c.id == obj_id)

    @staticmethod
    def _stored(row: Any) -> StoredObject:
        return StoredObject(
            Kind(row.kind), row.id, decode(row.body), int(row.version), _utc(row.updated_at)
        )

    async def _put(
        self,
        conn: AsyncConnection,
        org_id: str,
        kind: Kind,
        obj: model.Identifiable,
        *,
        version: int | None,
        create: bool,
    ) -> StoredObject:
        t = aas_objects
        now = datetime.now(UTC)
        values = {
            "id_short": obj.id_short, "global_asset_id": _global_asset_id(obj),
            "body": encode(obj), "updated_at": now,
        }  # fmt: skip
        held = (await conn.execute(self._select(org_id, kind, obj.id))).first()
        if isinstance(obj, model.AssetAdministrationShell):
            referred = sorted({ref.key[0].value for ref in obj.submodel if ref.key})
            await self._refer(conn, org_id, obj.id, referred)
        if held is None:
            if version is not None:
                raise AasConflict(f"{obj.id!r} was deleted meanwhile", code="aas_changed")
            # A racing insert fails the transaction: `_writing` says AasConflict.
            await conn.execute(
                t.insert().values(org_id=org_id, kind=kind.value, id=obj.id, version=1, **values)
            )
            return StoredObject(kind, obj.id, obj, 1, now)
        if create:
            raise AasConflict(
                f"a {kind.value.replace('_', ' ')} {obj.id!r} exists already", code="aas_exists"
            )
        current = int(held.version)
        if version is not None and version != current:
            raise AasConflict(f"{obj.id!r} changed meanwhile", code="aas_changed")
        updated = await conn.execute(
            t.update()
            .where(t.c.org_id == org_id, t.c.kind == kind.value, t.c.id == obj.id)
            .where(t.c.version == current)
            .values(version=current + 1, **values)
        )
        if not updated.rowcount:
            raise AasConflict(f"{obj.id!r} changed meanwhile", code="aas_changed")
        return StoredObject(kind, obj.id, obj, current + 1, now)

    @staticmethod
    async def _refer(
        conn: AsyncConnection, org_id: str, aas_id: str, submodel_ids: Sequence[str]
    ) -> None:
        """The shell's rows of the submodel index, in the transaction of its own row."""
        t = aas_submodel_refs
        await conn.execute(t.delete().where(t.c.org_id == org_id, t.c.aas_id == aas_id))
        if submodel_ids:
            await conn.execute(
                t.insert(),
                [{"org_id": org_id, "aas_id": aas_id, "submodel_id": s} for s in submodel_ids],
            )

    @staticmethod
    async def _put_file(
        conn: AsyncConnection, org_id: str, path: str, content_type: str, data: bytes
    ) -> None:
        t = aas_files
        now = datetime.now(UTC)
        where = sa.and_(t.c.org_id == org_id, t.c.path == path)
        updated = await conn.execute(
            t.update().where(where).values(content_type=content_type, data=data, updated_at=now)
        )
        if not updated.rowcount:
            await conn.execute(
                t.insert().values(
                    org_id=org_id, path=path, content_type=content_type, data=data, updated_at=now
                )
            )

    def _tell(self, org_id: str, kind: Kind, ids: list[str], op: str) -> None:
        if self._announce is not None:
            self._announce(
                changed_subject(org_id),
                {"org_id": org_id, "kind": kind.value, "ids": ids[:1000], "op": op},
            )
