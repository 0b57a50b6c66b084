"""The agents' relation cache (`shopfloor.sdk.RelationCache`) against a served platform:
it loads by pages, follows the feed, answers locally, and catches up after losing the
platform, by changes or by loading again."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest

from shopfloor.auth.relations.capability import RelationsService
from shopfloor.core import Backoff
from shopfloor.sdk import RelationCache, RelationsRefused, RelationsUnreachable

from ..api.conftest import Api
from ..serving import free_port
from .conftest import BASE, Plant, add, served, t, until

PLANT = [
    "agent:cell-1 controls group:line-a",
    *(f"agent:press-{i:02} member group:line-a" for i in range(18)),
    "group:ops#member reads group:line-a",
]


async def test_a_tuple_deleted_through_the_api_stops_the_cache_check_within_a_second(
    api: Api, plant: Plant
) -> None:
    await add(api, plant.engineer, *PLANT)
    async with served(api) as base, RelationCache(base, plant.viewer, page_size=7) as cache:
        assert len(cache.graph) == 20 and cache.revision == 1
        result = cache.check("agent:cell-1", "controls", "agent:press-03")
        assert result.allowed and [str(item) for item in result.path] == [
            "agent:cell-1 controls group:line-a",
            "agent:press-03 member group:line-a",
        ]
        response = await api.http.request(
            "DELETE", BASE, json=t("agent:press-03 member group:line-a"), headers=plant.engineer
        )
        assert response.status_code == 200
        took = await until(
            lambda: not cache.check("agent:cell-1", "controls", "agent:press-03").allowed,
            within=1.0,
        )
        print(f"\nthe cache refused {took * 1000:.1f} ms after the DELETE answered")
        assert cache.check("agent:cell-1", "controls", "agent:press-04").allowed
        assert cache.connected

        written = await add(api, plant.engineer, "user:ann member group:ops")
        assert await cache.wait_for(written["revision"], timeout=1.0)
        assert cache.check("user:ann", "reads", "agent:press-04").allowed

        schema = {"relations": {"member": {}, "controls": {}, "reads": {}, "audits": {}}}
        response = await api.http.put(f"{BASE}/schema", json=schema, headers=plant.engineer)
        assert await cache.wait_for(response.json()["revision"], timeout=1.0)
        assert "audits" in cache.graph.schema and "calls" not in cache.graph.schema


async def test_the_cache_catches_up_after_losing_the_platform(api: Api, plant: Plant) -> None:
    await add(api, plant.engineer, *PLANT)
    relations = api.platform.get(RelationsService).relations
    port = free_port()
    backoff = Backoff(base=0.05, cap=0.2)
    async with served(api, port=port) as base:
        cache = RelationCache(base, plant.viewer, backoff=backoff)
        await cache.__aenter__()
    try:
        await until(lambda: not cache.connected, within=5)
        # changed while the cache cannot hear: it answers from what it had
        await add(api, plant.engineer, "agent:cell-2 controls group:line-a")
        await api.http.request(
            "DELETE", BASE, json=t("agent:cell-1 controls group:line-a"), headers=plant.engineer
        )
        assert cache.check("agent:cell-1", "controls", "agent:press-01").allowed
        async with served(api, port=port):
            await until(lambda: cache.revision == 3, within=5)
            assert not cache.check("agent:cell-1", "controls", "agent:press-01").allowed
            assert cache.check("agent:cell-2", "controls", "agent:press-01").allowed
            assert cache.reconnects >= 1
        await until(lambda: not cache.connected, within=5)

        # so long away that the changes are no longer kept: it loads everything again
        await add(api, plant.engineer, "agent:cell-3 controls group:line-a")
        await relations.store.prune(keep=timedelta(days=1), keep_revisions=0)
        async with served(api, port=port):
            await until(lambda: cache.revision == 4, within=5)
            assert cache.check("agent:cell-3", "controls", "agent:press-01").allowed
            assert len(cache.graph) == 21
    finally:
        await cache.aclose()


async def test_the_cache_reports_what_stops_it(api: Api, plant: Plant) -> None:
    async with served(api) as base:
        with pytest.raises(RelationsRefused) as caught:
            await RelationCache(base, {"Authorization": "Bearer nonsense"}).__aenter__()
        assert caught.value.status == 401 and caught.value.code == "invalid_token"
    with pytest.raises(RelationsUnreachable):
        await RelationCache(f"http://127.0.0.1:{free_port()}", plant.viewer).__aenter__()


async def test_headers_can_be_renewed(api: Api, plant: Plant) -> None:
    asked: list[float] = []

    def headers() -> dict[str, str]:
        asked.append(time.monotonic())
        return plant.viewer

    await add(api, plant.engineer, *PLANT)
    async with served(api) as base, RelationCache(base, headers, page_size=5) as cache:
        assert cache.check("agent:cell-1", "reads", "agent:press-00").allowed
        await until(lambda: cache.connected, within=5)
    assert len(asked) >= 6  # four pages, the schema, the feed
