"""The simulator starts from bootstrap credentials alone and publishes with what it got."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import uvicorn

from shopfloor.app import create_app
from shopfloor.simulate import simulate_bootstrapped
from tests.serving import lifespan

from ..api.conftest import Api
from ..serving import served_app
from .conftest import configure, make_plant, new_key


async def test_simulator_bootstraps_then_publishes(make_settings: Callable[..., Any]) -> None:
    app = create_app(make_settings(services=("api", "bootstrap", "http")))
    async with lifespan(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://shopfloor") as http:
            api = Api(http, app.state.platform, manager.app)
            plant = await make_plant(api, channels=1)
            key = new_key()
            config = await configure(api, plant, "sim-01", key)
            activated = await http.put(
                f"/api/v1/bootstrap/configs/{config['thing_id']}/state",
                json={"state": 1},
                headers=plant.engineer,
            )
            assert activated.status_code == 200
            served = uvicorn.Config(manager.app, lifespan="off", log_level="warning")
            async with served_app(served) as port:
                stats = await simulate_bootstrapped(
                    f"http://127.0.0.1:{port}", "sim-01", key, interval=0, count=2
                )
    assert stats.sent == 2 and stats.refused == 0 and not stats.errors
