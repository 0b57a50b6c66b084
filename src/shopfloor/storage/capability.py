"""Time-series storage as services: the store, and the writer from the bus into it."""

from __future__ import annotations

from contextlib import AsyncExitStack
from typing import TYPE_CHECKING

from pydantic import Field

from shopfloor.core import Section, Service
from shopfloor.messaging.capability import BusService

from ._store import TimeseriesStore, create_store
from ._writer import Writer, WriterMetrics

if TYPE_CHECKING:
    from shopfloor.core import Platform

__all__ = ["StorageSettings", "TimeseriesService", "WriterService"]


class StorageSettings(Section, section="storage"):
    timeseries_url: str = Field(
        default="sqlite://",
        description="Time-series store: sqlite://, postgresql://..., influxdb://host:8086/db",
    )


class TimeseriesService(Service, name="timeseries", internal=True):
    """The time-series store readers and the writer share."""

    health = "timeseries"

    def __init__(self, platform: Platform) -> None:
        super().__init__(platform)
        url = platform.settings.section(StorageSettings).timeseries_url
        self.store: TimeseriesStore = create_store(url, data_dir=platform.settings.data_dir)

    async def _start(self, stack: AsyncExitStack) -> None:
        await stack.enter_async_context(self.store)

    @property
    def ready(self) -> bool:
        return self.store.ready


class WriterService(Service, name="writer", needs=("bus", "timeseries")):
    """Stores what the bus carries (bus → time-series store)."""

    health = "writer"

    def __init__(self, platform: Platform) -> None:
        super().__init__(platform)
        self.writer = Writer(
            platform.get(BusService).bus,
            platform.get(TimeseriesService).store,
            WriterMetrics.create(platform.metrics),
        )

    async def _start(self, stack: AsyncExitStack) -> None:
        await self.writer.declare()
        # On stop the writer drains what the bus holds, then returns.
        await self.spawn("writer", self.writer.run)

    @property
    def ready(self) -> bool:
        return self.writer.running
