"""Fixtures of the Mosquitto tests: the built plugin, a broker, an admin connection."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from mosquitto_testkit import BRIDGE_PASSWORD, RunningBroker, run_mosquitto

from shopfloor.adapters.mosquitto import DynsecClient, DynsecSync, build_plugin


@pytest.fixture(scope="session")
def publisher_plugin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_plugin(tmp_path_factory.mktemp("plugin"))


@pytest.fixture
async def broker(tmp_path: Path, publisher_plugin: Path) -> AsyncIterator[RunningBroker]:
    async with run_mosquitto(tmp_path / "broker", publisher_plugin) as running:
        yield running


@pytest.fixture
async def dynsec(broker: RunningBroker) -> AsyncIterator[DynsecClient]:
    async with DynsecClient.from_url(broker.admin_url, timeout=5.0) as client:
        yield client


@pytest.fixture
def sync(dynsec: DynsecClient) -> DynsecSync:
    return DynsecSync(dynsec, bridge_password=BRIDGE_PASSWORD)
