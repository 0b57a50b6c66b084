"""Request body limits: `SHOPFLOOR_MAX_BODY_BYTES` for every route, and the larger ones a
service sets for paths of its own (the AAS service's environment uploads)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from shopfloor.app import create_app
from tests.serving import lifespan


async def test_the_aas_routes_take_larger_bodies_than_the_rest(
    make_settings: Callable[..., Any],
) -> None:
    app = create_app(make_settings(max_body_bytes=4096, aas_max_file_bytes=200_000))
    async with lifespan(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://shopfloor") as http:
            body = b"x" * 100_000
            other = await http.post("/api/v1/things", content=body)
            assert other.status_code == 413 and other.json()["error"]["code"] == (
                "payload_too_large"
            )
            # Past the platform's limit, the AAS route reads it (and asks who sends it).
            aas = await http.post("/api/v1/aas/environments", content=body)
            assert aas.status_code == 401, aas.text
            huge = await http.post("/api/v1/aas/environments", content=b"x" * 300_000)
            assert huge.status_code == 413
