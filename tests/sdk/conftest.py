"""The CA and the fleet of agents the gRPC tests start (torn down in `finally`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path

import pytest

from .agentkit import AgentCa, Fleet, agent_ca


@pytest.fixture
async def ca(tmp_path: Path) -> AsyncIterator[AgentCa]:
    async with agent_ca(tmp_path) as authority:
        yield authority


@pytest.fixture
async def fleet(ca: AgentCa) -> AsyncIterator[Fleet]:
    async with AsyncExitStack() as stack:
        yield Fleet(ca, stack)
