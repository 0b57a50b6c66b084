"""The change feed followed over HTTP: changes by revision as server-sent events,
catching up with `since`, a reset when that is no longer kept, keep-alives."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest

from shopfloor.auth.relations import (
    Change,
    Checkpoint,
    FeedItem,
    Reset,
    SchemaChange,
    SseDecoder,
)
from shopfloor.auth.relations.capability import RelationsService

from ..api.conftest import Api
from .conftest import BASE, Plant, add, served, t


@pytest.fixture
def relations_settings() -> dict[str, Any]:
    return {"relations_feed_keepalive_seconds": 0.2}


class Feed:
    """Items of one followed feed, each awaited with a deadline."""

    def __init__(self, lines: AsyncIterator[str]) -> None:
        self.lines = lines
        self.decoder = SseDecoder()

    async def next(self) -> FeedItem:
        async with asyncio.timeout(5):
            async for line in self.lines:
                item = self.decoder.line(line)
                if item is not None:
                    return item
        raise AssertionError("the feed ended")

    async def until_checkpoint(self) -> list[FeedItem]:
        found = [await self.next()]
        while not isinstance(found[-1], Checkpoint | Reset):
            found.append(await self.next())
        return found


def text(items: list[FeedItem]) -> list[str]:
    shown = []
    for item in items:
        if isinstance(item, Change):
            shown.append(f"{item.revision} {item.op} {item.tuple}")
        elif isinstance(item, SchemaChange):
            shown.append(f"{item.revision} schema {','.join(item.schema.names)}")
        else:
            shown.append(f"{type(item).__name__.lower()} {item.revision}")
    return shown


async def test_the_feed_follows_catches_up_and_resets(api: Api, plant: Plant) -> None:
    await add(api, plant.engineer, "agent:a reads agent:b")
    async with (
        served(api) as base,
        httpx.AsyncClient(base_url=base, timeout=10) as http,
        http.stream(
            "GET", f"{BASE}/changes", params={"follow": "true"}, headers=plant.viewer
        ) as stream,
    ):
        assert stream.headers["content-type"].startswith("text/event-stream")
        feed = Feed(stream.aiter_lines())
        assert text(await feed.until_checkpoint()) == ["checkpoint 1"]  # from now on
        await add(api, plant.engineer, "agent:c reads agent:b", "agent:d member group:g")
        assert text(await feed.until_checkpoint()) == [
            "2 add agent:c reads agent:b", "2 add agent:d member group:g", "checkpoint 2",
        ]  # fmt: skip
        await api.http.request(
            "DELETE", BASE, json=t("agent:a reads agent:b"), headers=plant.engineer
        )
        assert text(await feed.until_checkpoint()) == [
            "3 remove agent:a reads agent:b",
            "checkpoint 3",
        ]
        schema = {"relations": {"member": {}, "reads": {}}}
        response = await api.http.put(f"{BASE}/schema", json=schema, headers=plant.engineer)
        assert response.status_code == 200, response.text
        assert text(await feed.until_checkpoint()) == ["4 schema member,reads", "checkpoint 4"]
        # while nothing changes, keep-alives (every 0.2 s here)
        async with asyncio.timeout(3):
            async for line in feed.lines:
                if line.startswith(": keep-alive"):
                    break

        # catching up from a revision
        async with http.stream(
            "GET", f"{BASE}/changes", params={"follow": "true", "since": 2}, headers=plant.viewer
        ) as again:
            feed = Feed(again.aiter_lines())
            assert text(await feed.until_checkpoint()) == [
                "3 remove agent:a reads agent:b",
                "checkpoint 3",
            ]
            assert text(await feed.until_checkpoint()) == ["4 schema member,reads", "checkpoint 4"]

        # from a revision no longer kept: a reset, and the feed ends
        store = api.platform.get(RelationsService).relations.store
        await store.prune(keep=timedelta(days=1), keep_revisions=1)
        async with http.stream(
            "GET", f"{BASE}/changes", params={"follow": "true", "since": 2}, headers=plant.viewer
        ) as old:
            feed = Feed(old.aiter_lines())
            assert text(await feed.until_checkpoint()) == ["reset 4"]
            with pytest.raises(AssertionError, match="ended"):
                await feed.next()


async def test_the_feed_is_the_organisations_own(api: Api, plant: Plant) -> None:
    other = await api.org("Plant South")
    stranger = await api.member(other, "engineer")
    async with (
        served(api) as base,
        httpx.AsyncClient(base_url=base, timeout=10) as http,
        http.stream(
            "GET", f"{BASE}/changes", params={"follow": "true"}, headers=stranger
        ) as stream,
    ):
        feed = Feed(stream.aiter_lines())
        assert text(await feed.until_checkpoint()) == ["checkpoint 0"]
        await add(api, plant.engineer, "agent:a reads agent:b")
        await add(api, stranger, "agent:x reads agent:y")
        assert text(await feed.until_checkpoint()) == [
            "1 add agent:x reads agent:y",
            "checkpoint 1",
        ]
    response = await api.http.get(f"{BASE}/changes", params={"follow": "true"})
    assert response.status_code == 401
