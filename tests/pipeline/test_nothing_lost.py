"""An acknowledged message is stored: on shutdown, and when storage is down for a while."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Callable
from typing import Any

from .conftest import build_plant


def _pack(i: int) -> str:
    return json.dumps([{"n": "seq", "v": i}])


async def test_shutdown_stores_everything_acknowledged(start: Callable[..., Any]) -> None:
    accepted = 0
    async with start() as api:
        plant = await build_plant(api)

        async def publish(i: int) -> int:
            response = await plant.publish("press", _pack(i))
            return 1 if response.status_code == 202 else 0

        results = await asyncio.gather(*(publish(i) for i in range(500)))
        accepted = sum(results)
        channel, user = plant.channel, plant.user
        # leaving the block stops the platform at once, the writer still holding a backlog
    assert accepted == 500
    async with start() as api:
        page = await api.http.get(
            f"/api/v1/channels/{channel}/messages", params={"limit": 1}, headers=user
        )
        assert page.json()["total"] == 500


async def test_storage_down_answers_503_and_loses_nothing(start: Callable[..., Any]) -> None:
    async with start(bus_url="memory://?max_pending=100") as api:
        plant = await build_plant(api)
        await plant.publish("press", _pack(-1))
        await plant.wait_for(1)
        store_path = api.platform.settings.data_dir / "timeseries.db"
        blocker = sqlite3.connect(store_path, timeout=1, check_same_thread=False)
        blocker.execute("BEGIN EXCLUSIVE")  # the store is now unusable, as if down
        accepted, refused = 1, []
        try:
            for i in range(400):
                response = await plant.publish("press", _pack(i))
                if response.status_code == 202:
                    accepted += 1
                else:
                    refused.append(response)
                if len(refused) >= 5:
                    break
        finally:
            blocker.rollback()
            blocker.close()
        assert refused, "backpressure reached the publisher"
        assert {r.status_code for r in refused} == {503}
        assert all(int(r.headers["retry-after"]) >= 1 for r in refused)
        assert refused[0].json()["error"]["code"] == "unavailable"
        assert accepted <= 100 + 1 + 10, "memory stayed bounded by the bus backlog"
        await plant.wait_for(accepted)
        after = await plant.publish("press", _pack(10_000))
        assert after.status_code == 202
        await plant.wait_for(accepted + 1)
