"""With the time-series store stopped, the readers route answers 503 with a stable code
and `Retry-After`, never 500; once the store is back, it answers again.

The PostgreSQL store is reached through a TCP proxy the test owns: cutting it (closing
its connections and its port) is the database going away, for this test alone.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from ..conftest import fresh_postgres_database
from ..messaging.bus_testkit import TcpProxy
from .conftest import build_plant


@pytest.fixture
async def relay() -> AsyncIterator[TcpProxy]:
    async with TcpProxy("127.0.0.1:5432") as proxy:
        yield proxy


async def test_readers_answer_503_while_the_store_is_down(
    start: Callable[..., Any], relay: TcpProxy
) -> None:
    async with fresh_postgres_database() as url:
        through_relay = url.replace("127.0.0.1:5432", relay.address)
        assert through_relay != url
        async with start(timeseries_url=through_relay) as api:
            plant = await build_plant(api)
            assert (await plant.publish("press", '[{"n": "t", "v": 1}]')).status_code == 202
            await plant.wait_for(1)

            await relay.cut()
            down = await plant.read()
            assert down.status_code == 503, down.text
            assert down.json()["error"]["code"] == "timeseries_unavailable"
            assert int(down.headers["retry-after"]) >= 1
            health = await api.http.get("/health")
            assert health.status_code == 503
            assert health.json()["services"]["timeseries"] is False

            await relay.restore()
            deadline = asyncio.get_running_loop().time() + 20
            while (back := await plant.read()).status_code != 200:
                assert back.status_code == 503, back.text
                assert asyncio.get_running_loop().time() < deadline, back.text
                await asyncio.sleep(0.1)
            assert back.json()["total"] == 1
