"""Fixtures of the bus tests: every contract test runs against MemoryBus and NatsBus."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from .bus_testkit import Backend


@pytest.fixture(params=["memory", "nats"])
async def backend(request: pytest.FixtureRequest) -> AsyncIterator[Backend]:
    backend = Backend(kind=request.param)
    try:
        yield backend
    finally:
        await backend.cleanup()


@pytest.fixture
async def nats_backend() -> AsyncIterator[Backend]:
    backend = Backend(kind="nats")
    try:
        yield backend
    finally:
        await backend.cleanup()
