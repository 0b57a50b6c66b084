"""Asset Administration Shells as a service: the model store, its routes, and (per shell
with a Core) the Manager talking to the Core over the configured transport."""

from __future__ import annotations

from contextlib import AsyncExitStack
from typing import TYPE_CHECKING

from pydantic import Field

from shopfloor.core import Section, Service
from shopfloor.core.capability import DatabaseService
from shopfloor.messaging.capability import BusService

from ._invoke import Invoker, Unmanaged
from ._store import AasStore
from ._tables import MIGRATIONS

if TYPE_CHECKING:
    from shopfloor.core import Platform

__all__ = ["AasService", "AasSettings"]


class AasSettings(Section, section="aas", env_prefix="SHOPFLOOR_AAS_"):
    max_file_bytes: int = Field(
        default=64 * 1024 * 1024, ge=1024,
        description="Largest environment file (XML, JSON, AASX) or attachment accepted.",
    )  # fmt: skip


class AasService(Service, name="aas", needs=("database", "bus", "identity")):
    """Asset Administration Shells: model store, AAS HTTP API (IDTA Part 2), Managers."""

    health = "aas"
    routes = ("shopfloor.aas.part2.routes:router",)
    migrations = MIGRATIONS.versions
    version_table = MIGRATIONS.version_table

    def __init__(self, platform: Platform) -> None:
        super().__init__(platform)
        self.settings = platform.settings.section(AasSettings)
        self.store = AasStore(
            platform.get(DatabaseService).engine, announce=platform.get(BusService).events.emit
        )
        #: Who runs Operations (`/invoke`): the Managers, once they run.
        self.invoker: Invoker = Unmanaged()

    async def _start(self, stack: AsyncExitStack) -> None:
        return None

    @property
    def ready(self) -> bool:
        return not self.stopping
