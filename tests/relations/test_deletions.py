"""The tuples naming a thing, a channel, a user or an agent go when it is deleted: as
the object, as the subject, and in subject sets of it; nothing else goes."""

from __future__ import annotations

from typing import Any

from shopfloor.agents import state_subject
from shopfloor.auth.relations import RelationFilter, RelationStore, RelationTuple
from shopfloor.messaging.capability import BusService
from tests.api.conftest import Api

from ..agents.agentkit import eventually
from .conftest import BASE, Plant, add

ORG = "org-1"


async def test_a_filter_by_name_finds_the_object_the_subject_and_its_subject_sets(
    store: RelationStore,
) -> None:
    await store.add(ORG, [
        RelationTuple("agent:press_7", "reads", "thing:t1"),
        RelationTuple("agent:cell", "controls", "agent:press_7"),
        RelationTuple("agent:press_7#controls", "reads", "channel:c1"),
        # `_` is a wildcard of SQL LIKE: these name other agents and must stay.
        RelationTuple("agent:pressX7#controls", "reads", "channel:c1"),
        RelationTuple("agent:press_77", "reads", "thing:t1"),
    ])  # fmt: skip
    written = await store.remove_matching(ORG, RelationFilter(names="agent:press_7"))
    assert len(written.changes) == 3
    left = {(t.subject, t.relation, t.object) for t in (await store.load(ORG)).tuples}
    assert left == {
        ("agent:pressX7#controls", "reads", "channel:c1"),
        ("agent:press_77", "reads", "thing:t1"),
    }


async def _tuples(api: Api, plant: Plant) -> set[str]:
    listed = await api.http.get(BASE, params={"limit": 100}, headers=plant.viewer)
    assert listed.status_code == 200, listed.text
    return {f"{t['subject']} {t['relation']} {t['object']}" for t in listed.json()["items"]}


async def test_deleting_a_thing_a_user_or_an_agent_removes_its_tuples(
    api: Api, plant: Plant
) -> None:
    root = await api.root()
    thing = await api.http.post("/api/v1/things", json={"name": "oil sensor"},
                                headers=plant.engineer)  # fmt: skip
    thing_id = thing.json()["id"]
    user = await api.http.post(
        "/api/v1/users",
        json={"email": "ann@plant.example", "password": "password-123",
              "org_id": plant.org_id, "role": "operator"},
        headers=root,
    )  # fmt: skip
    user_id = user.json()["id"]
    await add(
        api, plant.engineer,
        f"agent:press-7 reads thing:{thing_id}",
        f"user:{user_id} member group:ops",
        "agent:cell reads agent:press-7",
        "agent:cell reads agent:oven",
    )  # fmt: skip

    async def gone(*lines: str) -> Any:
        held = await _tuples(api, plant)
        return held if not held & set(lines) else None

    deleted = await api.http.delete(f"/api/v1/things/{thing_id}", headers=plant.engineer)
    assert deleted.status_code == 204, deleted.text
    await eventually(lambda: gone(f"agent:press-7 reads thing:{thing_id}"), seconds=10)
    deleted = await api.http.delete(f"/api/v1/users/{user_id}", headers=root)
    assert deleted.status_code == 204, deleted.text
    await eventually(lambda: gone(f"user:{user_id} member group:ops"), seconds=10)
    # The agents service announces a deleted agent so (it is not running in this app).
    api.platform.get(BusService).events.emit(
        state_subject(plant.org_id, "press-7"),
        {"org_id": plant.org_id, "name": "press-7", "state": "deleted"},
    )
    left = await eventually(lambda: gone("agent:cell reads agent:press-7"), seconds=10)
    assert left == {"agent:cell reads agent:oven"}
