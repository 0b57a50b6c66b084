"""Asset Administration Shells as a service: the model store, its routes, and (per shell
with a Core) the Manager talking to the Core over the configured transport."""

from __future__ import annotations

from contextlib import AsyncExitStack
from typing import TYPE_CHECKING

from pydantic import Field

from shopfloor.core import Section, Service
from shopfloor.core.capability import DatabaseService
from shopfloor.messaging.capability import BusService

from ._invoke import Invoker
from ._managers import Managers
from ._provisioner import AasProvisioner  # noqa: F401  registers the agents' `aas` label
from ._store import AasStore
from ._tables import MIGRATIONS

if TYPE_CHECKING:
    from shopfloor.core import CoreSettings, Platform

__all__ = ["AasService", "AasSettings"]


#: What a multipart upload may add to the file it carries (boundaries, part headers).
MULTIPART_ROOM = 64 * 1024


class AasSettings(Section, section="aas", env_prefix="SHOPFLOOR_AAS_"):
    max_file_bytes: int = Field(
        default=64 * 1024 * 1024, ge=1024,
        description="Largest environment file (XML, JSON, AASX) or attachment accepted.",
    )  # fmt: skip
    transport_url: str = Field(
        default="memory://aas",
        description="Where Managers and Cores talk: memory://name (this process), "
        "kafka://host:9092 or nats://host:4222 (docs/aas-protocol.md).",
    )
    core_transport_url: str | None = Field(
        default=None,
        description="The transport URL Cores are told to use (when they reach the broker "
        "by another address); the transport URL when unset.",
    )
    manager_poll: float = Field(
        default=10.0, gt=0,
        description="Seconds between looks at the list of Managers for changes made "
        "through another process.",
    )  # fmt: skip


class AasService(
    Service, name="aas", needs=("database", "bus", "identity"), before=("agents", "flows")
):
    """Asset Administration Shells: model store, AAS HTTP API (IDTA Part 2), Managers."""

    health = "aas"
    routes = (
        "shopfloor.aas.routes:router",
        "shopfloor.aas.manager_routes:router",
        "shopfloor.aas.part2.routes:router",
    )
    migrations = MIGRATIONS.versions
    version_table = MIGRATIONS.version_table

    @classmethod
    def body_limits(cls, settings: CoreSettings) -> dict[str, int]:
        """Environment files and attachments may be larger than other bodies: up to the
        file limit and a multipart envelope's room, so that the routes themselves say a
        file is too large (`aas_file_too_large`)."""
        max_bytes = settings.section(AasSettings).max_file_bytes + MULTIPART_ROOM
        return {"/api/v1/aas/": max_bytes, "/aas/api/": max_bytes}

    def __init__(self, platform: Platform) -> None:
        super().__init__(platform)
        self.settings = platform.settings.section(AasSettings)
        self.store = AasStore(
            platform.get(DatabaseService).engine, announce=platform.get(BusService).events.emit
        )
        engine = platform.get(DatabaseService).engine
        self.managers = Managers(
            engine, self.store, self.settings.transport_url, poll=self.settings.manager_poll
        )
        #: Who runs Operations (`/invoke`): the Manager of the shell, if it has one.
        self.invoker: Invoker = self.managers

    async def _start(self, stack: AsyncExitStack) -> None:
        await stack.enter_async_context(self.managers)

    @property
    def core_transport_url(self) -> str:
        """The transport URL a Core of this platform uses."""
        return self.settings.core_transport_url or self.settings.transport_url

    @property
    def ready(self) -> bool:
        return not self.stopping
