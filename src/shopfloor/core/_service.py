"""The shape of every running part of the platform.

    class WriterService(Service, name="writer", needs=("bus", "timeseries")):
        \"\"\"bus → time-series store.\"\"\"

        health = "writer"                               # a `/health` entry, from `ready`
        routes = ("shopfloor.storage.routes:router",)   # "module:attribute" of APIRouters
        migrations = Path(__file__).parent / "migrations"   # Alembic versions, own chain

        def __init__(self, platform: Platform) -> None:  # needs are running already
            super().__init__(platform)
            self.writer = Writer(platform.get(BusService).bus, ...)

        async def _start(self, stack: AsyncExitStack) -> None:
            await self.spawn("writer", self.writer.run)

A service registers by class keyword (`name=`); a name taken twice is an error.
`needs` names the services that must run before it, in the same process; the
platform starts a needed service even when `--services` does not list it, and
`internal` services (database, bus, identity ...) are only ever started that way.
`before` names services this one starts ahead of when both run here, without needing
them (the aas service comes before agents, whose provisioners it extends).
Everything a service contributes is declared on the class, so the app, the CLI and
the settings can be assembled before anything starts; routes and commands are named
by import path, so a service module never imports the API layer.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from ._backends import Backends, Pluggable
from ._errors import ErrorKind, ShopfloorError
from ._lifecycle import Lifecycle

if TYPE_CHECKING:
    from ._platform import Platform
    from ._settings import CoreSettings

__all__ = ["EDGE_STAGE", "Service", "ServiceError"]

EDGE_STAGE = 100


class ServiceError(ShopfloorError):
    """A service is missing, unknown, or its needs cannot be met."""

    code = "service_error"
    kind = ErrorKind.INVALID


_SERVICES: Backends[Service] = Backends("service", keyword="name", error=ServiceError)


class Service(Lifecycle, Pluggable, registry=_SERVICES):
    """A named part of a process: started in dependency order, stopped in reverse."""

    name: ClassVar[str]
    #: Services that must be running first (by name).
    needs: ClassVar[tuple[str, ...]] = ()
    #: Services this one starts before when they run in the same process too (by name);
    #: unlike `needs`, it starts none of them.
    before: ClassVar[tuple[str, ...]] = ()
    #: Started only as another service's need, never chosen with `--services`.
    internal: ClassVar[bool] = False
    #: Start order among services free to start: lower first, stopped later. Edges that
    #: take messages in use `EDGE_STAGE`, so they stop before consumers drain.
    stage: ClassVar[int] = 0
    #: The `/health` entry this service answers through `ready`, if any.
    health: ClassVar[str | None] = None
    #: "module:attribute" of the FastAPI routers it serves.
    routes: ClassVar[tuple[str, ...]] = ()
    #: Command name → "module:attribute" of a Typer app, added to the `shopfloor` CLI.
    commands: ClassVar[Mapping[str, str]] = {}
    #: Folder of Alembic revisions for this service's tables (its own chain).
    migrations: ClassVar[Path | None] = None
    #: The Alembic version table of that chain (one per capability).
    version_table: ClassVar[str | None] = None

    def __init_subclass__(
        cls,
        *,
        needs: tuple[str, ...] | None = None,
        before: tuple[str, ...] | None = None,
        internal: bool | None = None,
        **kwargs: Any,
    ) -> None:
        if needs is not None:
            cls.needs = tuple(needs)
        if before is not None:
            cls.before = tuple(before)
        if internal is not None:
            cls.internal = internal
        super().__init_subclass__(**kwargs)

    def __init__(self, platform: Platform) -> None:
        super().__init__()
        self.platform = platform

    @classmethod
    def summary(cls) -> str:
        """The first line of the class docstring (for `serve --help` and the docs)."""
        return (cls.__doc__ or cls.name).strip().splitlines()[0]

    @property
    def ready(self) -> bool:
        """Whether the service does its work now."""
        return not self.stopping

    def health_name(self) -> str | None:
        """The `/health` entry of this instance (`health` unless settings decide)."""
        return self.health

    async def check(self) -> bool:
        """The `/health` answer of this service (`ready` unless it probes something)."""
        return self.ready

    def problem(self) -> str | None:
        """Why the service is not ready and what to fix, shown by `/health` while it is not."""
        return None

    @classmethod
    def body_limits(cls, settings: CoreSettings) -> dict[str, int]:
        """Request body limits of its own, by path prefix, where `max_body_bytes` (for
        every other route) is too small: the AAS service's environment uploads."""
        return {}

    @classmethod
    def install(cls, app: Any, platform: Platform) -> None:
        """Called once the app is built, before start (the HTTP adapter puts its fast
        path in front of the app here)."""
