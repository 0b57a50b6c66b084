"""The agents service on the Swarm runtime, against the fake Engine API
(`fake_docker.py`; never run against a real engine here): what the image's own labels
ask for is provisioned, as IAMS read them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest

from shopfloor.app import create_app
from tests.api.conftest import Api
from tests.serving import lifespan

from .agentkit import remove_all_agents
from .fake_docker import FakeDockerEngine
from .test_service import SETTINGS, in_state


@pytest.fixture
def engine() -> Iterator[FakeDockerEngine]:
    fake = FakeDockerEngine().start()
    try:
        yield fake
    finally:
        fake.stop()


@pytest.fixture
async def api(make_settings: Callable[..., Any], engine: FakeDockerEngine) -> AsyncIterator[Api]:
    settings = make_settings(**SETTINGS, agent_runtime="swarm", agent_docker_url=engine.url)
    app = create_app(settings)
    async with lifespan(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        try:
            async with httpx.AsyncClient(transport=transport, base_url="http://shopfloor") as http:
                yield Api(http, app.state.platform, manager.app)
        finally:
            await remove_all_agents(app.state.platform)


async def test_the_labels_of_an_image_provision_its_agent(
    api: Api, engine: FakeDockerEngine
) -> None:
    engine.engine.images["registry.example/press:1.4"] = {
        "iams.services.agent": "true",
        "iams.plugins.mqtt": "press telemetry",  # IAMS's name for the label
    }
    org = await api.org("North")
    engineer = await api.member(org, "engineer")
    refused = await api.http.post(
        "/api/v1/agents", json={"name": "p", "command": ["true"]}, headers=engineer
    )
    assert refused.json()["error"]["code"] == "agent_runtime_mismatch"
    spec = {"name": "press", "image": "registry.example/press:1.4", "version": "1.4"}
    created = await api.http.post("/api/v1/agents", json=spec, headers=engineer)
    assert created.status_code == 201, created.text
    body = await in_state(api, "press", engineer, "running")
    assert body["provisioned"] == ["mqtt"]
    service = next(iter(engine.engine.services.values()))
    env = service.spec["TaskTemplate"]["ContainerSpec"]["Env"]
    assert any(item.startswith("SHOPFLOOR_THING_KEY=") for item in env)
    things = (await api.http.get("/api/v1/things", headers=engineer)).json()["items"]
    assert [t["name"] for t in things] == ["agent press"]
    channels = (await api.http.get("/api/v1/channels", headers=engineer)).json()["items"]
    assert [c["name"] for c in channels] == ["press telemetry"]
