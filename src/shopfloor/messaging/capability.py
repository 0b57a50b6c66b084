"""The bus as a service: telemetry and platform events for every process."""

from __future__ import annotations

from contextlib import AsyncExitStack
from typing import TYPE_CHECKING

from pydantic import Field

from shopfloor.core import Section, Service

from ._bus import Bus, create_bus
from ._hub import EventHub

if TYPE_CHECKING:
    from shopfloor.core import Platform

__all__ = ["BusService", "MessagingSettings"]


class MessagingSettings(Section, section="messaging"):
    bus_url: str = Field(
        default="memory://",
        description="Message bus: memory:// (one process) or nats://host:4222?stream=...",
    )


class BusService(Service, name="bus", internal=True):
    """The message bus and the platform's event hub on it."""

    health = "bus"

    def __init__(self, platform: Platform) -> None:
        super().__init__(platform)
        self.bus: Bus = create_bus(platform.settings.section(MessagingSettings).bus_url)
        self.events = EventHub(self.bus)

    async def _start(self, stack: AsyncExitStack) -> None:
        await stack.enter_async_context(self.bus)
        await stack.enter_async_context(self.events)

    @property
    def ready(self) -> bool:
        return self.bus.ready
