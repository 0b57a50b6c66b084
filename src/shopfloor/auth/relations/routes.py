"""Relations routes (`/api/v1/relations`): tuples in and out, checks, expand, the schema
and the change feed. Everything is the caller's organisation's: a check never sees
another organisation's tuples."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from shopfloor.api import PageOut, PagingDep, PlatformDep, PrincipalDep, event_stream
from shopfloor.auth import Action
from shopfloor.core import ErrorKind

from ._errors import InvalidRelationFilter, InvalidRelationSchema
from ._feed import KEEPALIVE, FeedItem, encode_change, encode_sse
from ._model import MAX_ID_LENGTH, MAX_NAME_LENGTH, RelationTuple
from ._relations import Relations
from ._schema import parse_schema
from ._store import RelationFilter, StoredSchema
from .capability import RelationsService

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/relations", tags=["relations"])

#: Largest schema body taken (a schema is a few dozen lines).
MAX_SCHEMA_BYTES = 64 * 1024
_YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml")
_OBJECT_LENGTH = 2 * MAX_NAME_LENGTH + MAX_ID_LENGTH + 2
Subject = Annotated[
    str, Field(max_length=_OBJECT_LENGTH, description="`type:id`, or a userset `type:id#relation`.")
]
Relation = Annotated[str, Field(max_length=MAX_NAME_LENGTH, description="A relation name.")]
Object = Annotated[str, Field(max_length=_OBJECT_LENGTH, description="`type:id`.")]


class TupleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    subject: Subject
    relation: Relation
    object: Object

    def parsed(self) -> RelationTuple:
        return RelationTuple.of(self.subject, self.relation, self.object)


class TuplesIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tuples: list[TupleIn] = Field(description="At most 1000; all or nothing.")


class TupleOut(BaseModel):
    subject: str
    relation: str
    object: str


class StoredTupleOut(TupleOut):
    created_at: datetime


class RelationPageOut(PageOut[StoredTupleOut]):
    revision: int = Field(description="The organisation's revision, read before the page.")
    next: str | None = Field(description="`after` for the next page; null after the last.")


class AddedOut(BaseModel):
    revision: int
    added: int
    unchanged: int = Field(description="Tuples that were there already.")


class RemovedOut(BaseModel):
    revision: int
    removed: int
    unchanged: int = Field(description="Tuples that were not there.")


class CheckIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    subject: Object
    relation: Relation
    object: Object


class CheckOut(BaseModel):
    allowed: bool
    path: list[TupleOut] = Field(description="The stored tuples that grant it, subject first.")
    reason: str | None = Field(
        default=None, description="When refused: `not_related` or `depth_limit_exceeded`."
    )
    revision: int


class ExpandIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    relation: Relation
    object: Object


class ExpandOut(BaseModel):
    revision: int
    truncated: bool
    tree: dict[str, Any]


class SchemaOut(BaseModel):
    document: dict[str, Any] = Field(serialization_alias="schema")
    custom: bool = Field(description="False: the default schema (the organisation set none).")
    updated_at: datetime | None
    revision: int


class ChangesOut(BaseModel):
    revision: int = Field(description="Resume with `since` set to this.")
    reset: bool = Field(description="`since` is older than the changes kept: load again.")
    more: bool
    changes: list[dict[str, Any]]


def _relations(platform: PlatformDep) -> Relations:
    return platform.get(RelationsService).relations


WriteBody = Annotated[TupleIn | TuplesIn, Body(description='One tuple, or `{"tuples": [...]}`.')]


def _tuples(body: TupleIn | TuplesIn) -> list[RelationTuple]:
    return [body.parsed()] if isinstance(body, TupleIn) else [t.parsed() for t in body.tuples]


@router.post("", response_model=AddedOut)
async def add_relations(
    body: WriteBody, platform: PlatformDep, principal: PrincipalDep
) -> AddedOut:
    """Add one tuple or up to 1000 (all or nothing); a tuple there already is no error."""
    org_id = principal.require(Action.MANAGE_RELATIONS)
    written = await _relations(platform).add(org_id, _tuples(body))
    return AddedOut(
        revision=written.revision, added=len(written.changes), unchanged=written.unchanged
    )


@router.delete("", response_model=RemovedOut)
async def delete_relations(
    platform: PlatformDep,
    principal: PrincipalDep,
    body: Annotated[TupleIn | TuplesIn | None, Body()] = None,
    subject: Annotated[str | None, Query(max_length=_OBJECT_LENGTH)] = None,
    relation: Annotated[str | None, Query(max_length=MAX_NAME_LENGTH)] = None,
    obj: Annotated[str | None, Query(alias="object", max_length=_OBJECT_LENGTH)] = None,
    object_type: Annotated[str | None, Query(max_length=MAX_NAME_LENGTH)] = None,
) -> RemovedOut:
    """Delete the tuples of the body (as `POST` takes them), or every tuple the filters
    match; deleting what is not there is no error."""
    org_id = principal.require(Action.MANAGE_RELATIONS)
    where = RelationFilter.of(subject=subject, relation=relation, obj=obj, object_type=object_type)
    relations = _relations(platform)
    if body is not None:
        if not where.empty:
            raise InvalidRelationFilter("give the tuples to delete or filters, not both")
        written = await relations.remove(org_id, _tuples(body))
    else:
        written = await relations.remove_matching(org_id, where)
    return RemovedOut(
        revision=written.revision, removed=len(written.changes), unchanged=written.unchanged
    )


@router.get("", response_model=RelationPageOut)
async def list_relations(
    platform: PlatformDep,
    principal: PrincipalDep,
    paging: PagingDep,
    subject: Annotated[str | None, Query(max_length=_OBJECT_LENGTH)] = None,
    relation: Annotated[str | None, Query(max_length=MAX_NAME_LENGTH)] = None,
    obj: Annotated[str | None, Query(alias="object", max_length=_OBJECT_LENGTH)] = None,
    object_type: Annotated[str | None, Query(max_length=MAX_NAME_LENGTH)] = None,
    after: Annotated[
        str | None, Query(max_length=20, description="The `next` of the previous page.")
    ] = None,
) -> RelationPageOut:
    """Tuples in the order they were added, filtered by exact values; page with `after`
    (the previous page's `next`) to walk them all while they change."""
    org_id = principal.require_org()
    where = RelationFilter.of(subject=subject, relation=relation, obj=obj, object_type=object_type)
    page = await _relations(platform).store.page(
        org_id, where, offset=paging.offset, limit=paging.limit, after=after
    )
    items = [
        StoredTupleOut(**stored.tuple.to_json(), created_at=stored.created_at)
        for stored in page.items
    ]
    return RelationPageOut(
        total=page.total, offset=page.offset, limit=page.limit, items=items,
        revision=page.revision, next=page.next,
    )  # fmt: skip


@router.post("/check", response_model=CheckOut, response_model_exclude_none=True)
async def check_relation(body: CheckIn, platform: PlatformDep, principal: PrincipalDep) -> CheckOut:
    """Whether `subject` holds `relation` on `object`, with the tuples that grant it."""
    org_id = principal.require_org()
    result = await _relations(platform).check(org_id, body.subject, body.relation, body.object)
    return CheckOut(
        allowed=result.allowed,
        path=[TupleOut(**item.to_json()) for item in result.path],
        reason=result.reason,
        revision=result.revision,
    )


@router.post("/expand", response_model=ExpandOut)
async def expand_relation(
    body: ExpandIn, platform: PlatformDep, principal: PrincipalDep
) -> ExpandOut:
    """The tree of who holds `relation` on `object`: direct subjects, usersets and the
    groups the object is in, bounded (`truncated` says it was cut short)."""
    org_id = principal.require_org()
    tree, cut, revision = await _relations(platform).expand(org_id, body.relation, body.object)
    return ExpandOut(revision=revision, truncated=cut, tree=tree.to_json())


@router.get("/schema", response_model=SchemaOut)
async def get_schema(platform: PlatformDep, principal: PrincipalDep) -> SchemaOut:
    org_id = principal.require_org()
    return _schema_out(await _relations(platform).schema(org_id))


@router.put("/schema", response_model=SchemaOut)
async def put_schema(request: Request, platform: PlatformDep, principal: PrincipalDep) -> SchemaOut:
    """Replace the organisation's schema: JSON or YAML (`application/yaml`)."""
    org_id = principal.require(Action.MANAGE_RELATIONS)
    schema = parse_schema(await _schema_source(request))
    stored = await _relations(platform).set_schema(org_id, schema, updated_by=principal.subject)
    return _schema_out(stored)


@router.get(
    "/changes",
    response_model=ChangesOut,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def relation_changes(
    platform: PlatformDep,
    principal: PrincipalDep,
    since: Annotated[
        int | None, Query(ge=0, description="Changes after this revision; now if absent.")
    ] = None,
    follow: Annotated[bool, Query(description="Then new ones, as server-sent events.")] = False,
    limit: Annotated[int, Query(ge=1, le=1000, description="Revisions, without follow.")] = 100,
) -> Any:
    """Changes of the organisation's tuples and schema by revision: for caches that
    follow the graph from outside the platform (agents)."""
    org_id = principal.require_org()
    relations = _relations(platform)
    if follow:
        return event_stream(platform, _events(relations.follow(org_id, since)))
    if since is None:
        revision, _ = await relations.store.revision(org_id)
        return ChangesOut(revision=revision, reset=False, more=False, changes=[])
    batch = await relations.store.changes(org_id, after=since, max_revisions=limit)
    last = batch.changes[-1].revision if batch.more and batch.changes else batch.revision
    return ChangesOut(
        revision=last, reset=batch.reset, more=batch.more,
        changes=[encode_change(change) for change in batch.changes],
    )  # fmt: skip


async def _events(items: AsyncIterator[FeedItem | None]) -> AsyncIterator[bytes]:
    yield b": following\n\n"
    async for item in items:
        yield KEEPALIVE if item is None else encode_sse(item)


def _schema_out(stored: StoredSchema) -> SchemaOut:
    return SchemaOut(
        document=stored.schema.to_json(), custom=stored.custom,
        updated_at=stored.updated_at, revision=stored.revision,
    )  # fmt: skip


async def _schema_source(request: Request) -> str:
    body = await request.body()
    if len(body) > MAX_SCHEMA_BYTES:
        raise InvalidRelationSchema(
            f"a schema is at most {MAX_SCHEMA_BYTES // 1024} KiB",
            code="relation_schema_too_large",
            kind=ErrorKind.TOO_LARGE,
        )
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media not in (*_YAML_TYPES, "application/json"):
        raise InvalidRelationSchema(
            "send a schema as application/json or application/yaml",
            code="relation_schema_media_type",
            kind=ErrorKind.UNSUPPORTED,
        )
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidRelationSchema("a schema is UTF-8 text") from exc
