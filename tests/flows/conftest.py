"""What the flow tests share: documents, and a platform running the flows service."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from shopfloor.app import create_app
from tests.api.conftest import Api
from tests.serving import lifespan


def flow(flow_id: str = "line-3", **overrides: Any) -> dict[str, Any]:
    """A valid flow document: telemetry of a machine in, a derived value out."""
    doc: dict[str, Any] = {
        "id": flow_id,
        "name": "Line 3 temperature",
        "triggers": [
            {
                "type": "message",
                "parameters": {
                    "channel_id": "telemetry",
                    "condition": "payload.temperature > variables.limit",
                    "only_on_change": True,
                },
            }
        ],
        "tasks": [
            {
                "id": "fahrenheit",
                "type": "transform",
                "parameters": {
                    "set": {"fahrenheit": "double(payload.temperature) * 9.0 / 5.0 + 32.0"}
                },
                "next": ["publish"],
            },
            {
                "id": "publish",
                "type": "publish",
                "parameters": {"channel_id": "derived", "payload": "{'f': variables.fahrenheit}"},
                "retries": {"attempts": 3, "backoff": 0.5},
                "timeout": 5,
                "on_failure": ["complain"],
            },
            {
                "id": "complain",
                "type": "log",
                "parameters": {"message": "'publish failed'", "level": "error"},
            },
        ],
        "variables": {"limit": 80},
    }
    doc.update(overrides)
    return doc


@pytest.fixture
async def api(make_settings: Callable[..., Any]) -> AsyncIterator[Api]:
    app = create_app(make_settings(services="api,flows", flows_poll=3600))
    async with lifespan(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://shopfloor") as http:
            yield Api(http, app.state.platform, manager.app)
