"""Edge flows as a service: the flow documents of every organisation (ConfigManager)
and the configuration server's routes (`/flows` and `/api/v1/flows`)."""

from __future__ import annotations

import asyncio
import logging
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING

from pydantic import Field

from shopfloor.core import Section, Service, first_set

from ._config import ConfigManager

if TYPE_CHECKING:
    from shopfloor.core import CoreSettings, Platform

__all__ = ["FlowsService", "FlowsSettings"]

logger = logging.getLogger(__name__)


class FlowsSettings(Section, section="flows", env_prefix="SHOPFLOOR_FLOWS_"):
    poll: float = Field(
        default=5.0, gt=0,
        description="Seconds between looks at the flows folder for files changed by hand "
        "or by another process.",
    )  # fmt: skip
    history: int = Field(
        default=50, ge=1, le=10_000,
        description="Revisions of each flow kept in its history (the newest).",
    )  # fmt: skip
    max_document_bytes: int = Field(
        default=1024 * 1024, ge=1024,
        description="Largest flow document accepted (JSON or YAML).",
    )  # fmt: skip


class FlowsService(Service, name="flows", needs=("identity",)):
    """Edge flows: flow documents per organisation, their history, the configuration
    server (docs/flows.md)."""

    health = "flows"
    routes = ("shopfloor.flows.routes:router", "shopfloor.flows.routes:seed_router")
    commands = {"flows": "shopfloor.flows.commands:flows_app"}

    @classmethod
    def body_limits(cls, settings: CoreSettings) -> dict[str, int]:
        """Room for a document of the largest size and a little over, so that the routes
        themselves say a document is too large (`flow_too_large`)."""
        room = settings.section(FlowsSettings).max_document_bytes + 1024
        return {"/flows": room, "/api/v1/flows": room}

    def __init__(self, platform: Platform) -> None:
        super().__init__(platform)
        self.settings = platform.settings.section(FlowsSettings)
        self.configs = ConfigManager(
            platform.settings.data_dir / "flows", history_limit=self.settings.history
        )

    async def _start(self, stack: AsyncExitStack) -> None:
        await asyncio.to_thread(self.configs.load)
        await self.spawn("flows-rescan", self._rescan)

    async def _rescan(self, stopping: asyncio.Event) -> None:
        while not stopping.is_set():
            await first_set(stopping, within=self.settings.poll)
            if not stopping.is_set():
                await asyncio.to_thread(self.configs.rescan)
