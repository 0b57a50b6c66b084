"""The relations store, on SQLite and PostgreSQL: writes by revision, all or nothing,
listing by cursor, the changes kept and pruned, schemas, organisations apart."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from shopfloor.auth.relations import (
    DEFAULT_SCHEMA,
    Change,
    InvalidRelationFilter,
    InvalidRelationTuple,
    RelationFilter,
    RelationInUse,
    RelationStore,
    RelationTuple,
    SchemaChange,
    UnknownRelation,
    parse_schema,
)

ORG, OTHER = "org-north", "org-south"


def tuples(*lines: str) -> list[RelationTuple]:
    return [RelationTuple.parse(line) for line in lines]


async def test_writes_bump_the_revision_and_record_their_changes(store: RelationStore) -> None:
    assert await store.revision(ORG) == (0, 0)
    first = await store.add(ORG, tuples("agent:a controls agent:b", "agent:b member group:g"))
    assert first.revision == 1 and first.unchanged == 0
    assert [c.op for c in first.changes if isinstance(c, Change)] == ["add", "add"]
    again = await store.add(ORG, tuples("agent:a controls agent:b", "agent:c reads agent:b"))
    assert again.revision == 2 and again.unchanged == 1
    assert [str(c.tuple) for c in again.changes if isinstance(c, Change)] == [
        "agent:c reads agent:b"
    ]
    same = await store.add(ORG, tuples("agent:a controls agent:b"))
    assert same.revision == 2 and same.changes == [] and same.unchanged == 1
    gone = await store.remove(ORG, tuples("agent:a controls agent:b", "agent:x reads agent:y"))
    assert gone.revision == 3 and gone.unchanged == 1
    batch = await store.changes(ORG, after=0, max_revisions=100)
    assert not batch.reset and not batch.more and batch.revision == 3
    assert [(c.revision, c.op, str(c.tuple)) for c in batch.changes if isinstance(c, Change)] == [
        (1, "add", "agent:a controls agent:b"),
        (1, "add", "agent:b member group:g"),
        (2, "add", "agent:c reads agent:b"),
        (3, "remove", "agent:a controls agent:b"),
    ]
    snapshot = await store.load(ORG)
    assert snapshot.revision == 3
    assert {str(t) for t in snapshot.tuples} == {"agent:b member group:g", "agent:c reads agent:b"}


async def test_a_batch_is_all_or_nothing(store: RelationStore) -> None:
    await store.add(ORG, tuples("agent:a controls agent:b"))
    with pytest.raises(UnknownRelation):
        await store.add(ORG, tuples("agent:c reads agent:b", "agent:c owns agent:b"))
    with pytest.raises(InvalidRelationTuple):
        await store.add(ORG, tuples("agent:c reads agent:b", "agent:c#reads member group:g"))
    assert await store.revision(ORG) == (1, 0)
    assert [str(t) for t in (await store.load(ORG)).tuples] == ["agent:a controls agent:b"]


async def test_concurrent_writes_get_one_revision_each_in_commit_order(
    store: RelationStore,
) -> None:
    written = await asyncio.gather(
        *(store.add(ORG, tuples(f"agent:a{i} reads agent:b")) for i in range(12))
    )
    assert sorted(w.revision for w in written) == list(range(1, 13))
    batch = await store.changes(ORG, after=0, max_revisions=100)
    assert [c.revision for c in batch.changes] == list(range(1, 13))


async def test_listing_filters_and_walks_by_cursor_while_tuples_go(store: RelationStore) -> None:
    await store.add(ORG, [RelationTuple.parse(f"agent:m{i} member group:line") for i in range(25)])
    await store.add(ORG, tuples("agent:cell controls group:line", "user:ann reads thing:t1"))
    await store.add(OTHER, tuples("agent:m1 member group:line"))
    everything = RelationFilter()
    page = await store.page(ORG, everything, offset=0, limit=10)
    assert page.total == 27 and len(page.items) == 10 and page.revision == 2
    assert page.next is not None
    # tuples before the cursor go: the walk still meets every one after it
    await store.remove(ORG, [item.tuple for item in page.items[:5]])
    seen = [item.tuple for item in page.items]
    after: str | None = page.next
    while after is not None:
        following = await store.page(ORG, everything, offset=0, limit=10, after=after)
        seen.extend(item.tuple for item in following.items)
        after = following.next
    assert len(seen) == 27 and len(set(seen)) == 27

    members = await store.page(ORG, RelationFilter.of(relation="member"), offset=5, limit=100)
    assert members.total == 20 and len(members.items) == 15
    assert all(item.tuple.relation == "member" for item in members.items)
    things = await store.page(ORG, RelationFilter.of(object_type="thing"), offset=0, limit=100)
    assert [str(i.tuple) for i in things.items] == ["user:ann reads thing:t1"]
    subject = await store.page(ORG, RelationFilter.of(subject="agent:cell"), offset=0, limit=10)
    assert [str(i.tuple) for i in subject.items] == ["agent:cell controls group:line"]
    exact = RelationFilter.of(subject="agent:m1", obj="group:line")
    assert (await store.page(OTHER, exact, offset=0, limit=10)).total == 1
    assert (await store.page(ORG, exact, offset=0, limit=10)).total == 0  # removed above
    with pytest.raises(InvalidRelationFilter):
        RelationFilter.of(obj="line")
    with pytest.raises(InvalidRelationFilter):
        await store.page(ORG, everything, offset=0, limit=10, after="x")


async def test_removing_by_filter(store: RelationStore) -> None:
    await store.add(
        ORG, tuples("agent:a reads agent:b", "agent:a reads thing:c", "agent:d reads agent:b")
    )
    written = await store.remove_matching(ORG, RelationFilter.of(subject="agent:a"))
    assert written.revision == 2 and len(written.changes) == 2
    assert [str(t) for t in (await store.load(ORG)).tuples] == ["agent:d reads agent:b"]
    with pytest.raises(InvalidRelationFilter):
        await store.remove_matching(ORG, RelationFilter())
    nothing = await store.remove_matching(ORG, RelationFilter.of(relation="writes"))
    assert nothing.revision == 2 and nothing.changes == []


async def test_organisations_are_apart(store: RelationStore) -> None:
    await store.add(ORG, tuples("agent:a controls agent:b"))
    await store.add(OTHER, tuples("agent:x controls agent:y"))
    assert await store.revision(ORG) == (1, 0) and await store.revision(OTHER) == (1, 0)
    assert [str(t) for t in (await store.load(OTHER)).tuples] == ["agent:x controls agent:y"]
    assert (await store.remove(OTHER, tuples("agent:a controls agent:b"))).changes == []
    assert await store.revisions([ORG, OTHER, "org-none"]) == {ORG: 1, OTHER: 1, "org-none": 0}


async def test_schemas_are_versioned_with_the_tuples(store: RelationStore) -> None:
    stored = await store.schema(ORG)
    assert stored.schema == DEFAULT_SCHEMA and not stored.custom and stored.updated_at is None
    await store.add(ORG, tuples("agent:a controls agent:b", "group:g#follows reads agent:b"))
    smaller = parse_schema({"relations": {"member": {}, "controls": {}, "reads": {}}})
    with pytest.raises(RelationInUse) as caught:
        await store.set_schema(ORG, smaller, updated_by="u1")
    assert "follows" in str(caught.value)
    await store.remove(ORG, tuples("group:g#follows reads agent:b"))
    written = await store.set_schema(ORG, smaller, updated_by="u1")
    assert written.revision == 3 and isinstance(written.changes[0], SchemaChange)
    stored = await store.schema(ORG)
    assert stored.custom and stored.schema == smaller and stored.revision == 3
    assert stored.updated_at is not None and stored.updated_at.tzinfo is not None
    # the same again changes nothing
    assert (await store.set_schema(ORG, smaller, updated_by="u1")).revision == 3
    with pytest.raises(UnknownRelation):
        await store.add(ORG, tuples("agent:a writes agent:b"))
    assert (await store.schema(OTHER)).schema == DEFAULT_SCHEMA
    batch = await store.changes(ORG, after=2, max_revisions=10)
    (change,) = batch.changes
    assert isinstance(change, SchemaChange) and change.schema == smaller
    assert (await store.load(ORG)).schema == smaller


async def test_changes_come_by_whole_revisions_and_end_with_pruning(store: RelationStore) -> None:
    for i in range(5):
        await store.add(ORG, tuples(f"agent:a{i} reads agent:b", f"agent:c{i} reads agent:b"))
    batch = await store.changes(ORG, after=1, max_revisions=2)
    assert [c.revision for c in batch.changes] == [2, 2, 3, 3] and batch.more
    assert not (await store.changes(ORG, after=3, max_revisions=2)).more
    assert (await store.changes(ORG, after=6, max_revisions=2)).reset  # from the future

    assert await store.prune(keep=timedelta(days=1), keep_revisions=3) == 4
    assert await store.revision(ORG) == (5, 2)
    assert (await store.changes(ORG, after=1, max_revisions=10)).reset
    kept = await store.changes(ORG, after=2, max_revisions=10)
    assert not kept.reset and [c.revision for c in kept.changes] == [3, 3, 4, 4, 5, 5]
    # by age: everything older than now
    assert await store.prune(keep=timedelta(seconds=-1), keep_revisions=100) == 6
    assert await store.revision(ORG) == (5, 5)
    assert (await store.changes(ORG, after=5, max_revisions=10)).changes == []
