"""Two platforms sharing a database and a NATS bus, as two processes of a deployment:
a change made through one reaches the other's graph in memory over the bus within a
second; what the events cannot carry, or a process never heard, is caught up from
the changes table."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import nats
import pytest

from shopfloor.auth.relations import RelationFilter, RelationStore, RelationTuple, parse_schema
from shopfloor.auth.relations.capability import RelationsService
from shopfloor.core import Platform
from shopfloor.core.capability import DatabaseService

from .conftest import until

ORG = "0d7c6a52-5b8e-4a36-9b1e-6f2f7c1d2e3a"


@pytest.fixture
async def bus_url() -> AsyncIterator[str]:
    name = f"T{uuid.uuid4().hex[:10]}"
    yield f"nats://127.0.0.1:4222?stream={name}&prefix={name.lower()}"
    client = await nats.connect("nats://127.0.0.1:4222")
    try:
        await client.jetstream().delete_stream(name)
    finally:
        await client.close()


def tuples(*lines: str) -> list[RelationTuple]:
    return [RelationTuple.parse(line) for line in lines]


async def test_a_change_reaches_the_other_process_within_a_second(
    make_settings: Callable[..., Any], bus_url: str, tmp_path: Path
) -> None:
    settings = make_settings(
        services="relations", bus_url=bus_url, relations_refresh_seconds=3600,
        database_url=f"sqlite:///{tmp_path / 'shared.db'}",
    )  # fmt: skip
    async with Platform(settings) as first, Platform(settings) as second:
        writer = first.get(RelationsService).relations
        reader = second.get(RelationsService).relations
        await writer.add(
            ORG, tuples("agent:cell-1 controls group:line-a", "agent:p member group:line-a")
        )
        graph = await reader.graph(ORG)
        assert graph.check("agent:cell-1", "controls", "agent:p").allowed
        assert (await writer.check(ORG, "agent:cell-1", "controls", "agent:p")).allowed

        await writer.remove(ORG, tuples("agent:p member group:line-a"))
        # the writer's own graph knew before `remove` returned; the other's follows
        assert not (await writer.check(ORG, "agent:cell-1", "controls", "agent:p")).allowed
        took = await until(
            lambda: not graph.check("agent:cell-1", "controls", "agent:p").allowed, within=2
        )
        print(f"\nanother process's graph followed in {took * 1000:.1f} ms")
        assert took < 1.0

        # a write too large for its event to carry the changes: read from the table
        many = [RelationTuple.parse(f"agent:m{i} member group:line-b") for i in range(1000)]
        await writer.add(ORG, many)
        await writer.add(
            ORG, [RelationTuple.parse(f"agent:n{i} member group:line-b") for i in range(600)]
        )
        gone = await writer.remove_matching(ORG, RelationFilter.of(obj="group:line-b"))
        assert len(gone.changes) == 1600
        await until(lambda: graph.revision == gone.revision, within=2)
        assert len(graph) == 1

        # the schema too
        await writer.set_schema(ORG, parse_schema({"relations": {"member": {}, "controls": {}}}))
        await until(lambda: "follows" not in graph.schema, within=2)


async def test_changes_no_event_told_are_caught_up(
    make_settings: Callable[..., Any], bus_url: str, tmp_path: Path
) -> None:
    settings = make_settings(
        services="relations", bus_url=bus_url, relations_refresh_seconds=0.3,
        database_url=f"sqlite:///{tmp_path / 'shared.db'}",
    )  # fmt: skip
    async with Platform(settings) as first, Platform(settings) as second:
        writer = first.get(RelationsService).relations
        graph = await second.get(RelationsService).relations.graph(ORG)
        # written to the table alone, as a tool without the bus would: the next event's
        # revision shows the gap, and the reader reads what it missed
        silent = RelationStore(first.get(DatabaseService).engine)
        await silent.add(ORG, tuples("agent:a reads agent:b"))
        await writer.add(ORG, tuples("agent:c reads agent:b"))
        await until(lambda: graph.revision == 2, within=2)
        assert graph.check("agent:a", "reads", "agent:b").allowed
        # no event at all: the periodic comparison with the database
        await silent.remove(ORG, tuples("agent:a reads agent:b"))
        await until(lambda: not graph.check("agent:a", "reads", "agent:b").allowed, within=3)
