"""`until_set`: a followed feed ends when its stop is set, and is closed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from shopfloor.core import until_set


async def test_until_set_ends_a_feed_waiting_for_its_next_item_and_closes_it() -> None:
    stop, closed = asyncio.Event(), asyncio.Event()
    more = asyncio.Event()

    async def feed() -> AsyncIterator[int]:
        try:
            yield 1
            await more.wait()  # a follower waiting for news
            yield 2
        finally:
            closed.set()

    got: list[int] = []

    async def follow() -> None:
        async for item in until_set(stop, feed()):
            got.append(item)
            stop.set()

    await asyncio.wait_for(follow(), 5)
    assert got == [1] and closed.is_set()
    # A feed that ends on its own ends the same way.
    assert [item async for item in until_set(asyncio.Event(), _two())] == [1, 2]


async def _two() -> AsyncIterator[int]:
    yield 1
    yield 2
