"""Edge flows as a service: the flow documents of every organisation (ConfigManager)
and the configuration server's routes (`/flows` and `/api/v1/flows`).

Each change is announced as `flows.<org_id>.changed` (`org_id`, `flow_id`, `rev`, `op`);
another process sharing the data dir looks at the folder when it hears one (and when
its bus connection comes back), else every `SHOPFLOOR_FLOWS_POLL` seconds.
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING

from pydantic import Field

from shopfloor.core import Section, Service, first_set
from shopfloor.messaging import RECONNECTED, Event
from shopfloor.messaging.capability import BusService

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


class FlowsService(Service, name="flows", needs=("bus", "identity")):
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
        self.events = platform.get(BusService).events
        self.configs = ConfigManager(
            platform.settings.data_dir / "flows", history_limit=self.settings.history
        )
        #: Set when another process announced a change: look at the folder now.
        self._wake = asyncio.Event()

    async def _start(self, stack: AsyncExitStack) -> None:
        await asyncio.to_thread(self.configs.load)
        loop = asyncio.get_running_loop()

        def announce(org_id: str, flow_id: str, rev: int | None, op: str) -> None:
            # Changes are made in worker threads; the hub lives on the loop.
            data = {"org_id": org_id, "flow_id": flow_id, "rev": rev, "op": op}
            loop.call_soon_threadsafe(self.events.emit, f"flows.{org_id}.changed", data)

        self.configs.on_change = announce
        stack.callback(setattr, self.configs, "on_change", None)
        stack.enter_context(self.events.listen("flows.>", self._on_event))
        stack.enter_context(self.events.listen(RECONNECTED, lambda _event: self._wake.set()))
        await self.spawn("flows-rescan", self._rescan)

    def _on_event(self, event: Event) -> None:
        if event.origin != self.events.origin:  # this process's own changes are held
            self._wake.set()

    async def _rescan(self, stopping: asyncio.Event) -> None:
        while not stopping.is_set():
            await first_set(stopping, self._wake, within=self.settings.poll)
            if not stopping.is_set():
                self._wake.clear()
                await asyncio.to_thread(self.configs.rescan)
