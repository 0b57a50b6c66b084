"""The running platform: the services of one process, ordered by their needs.

    platform = Platform(settings)                 # plans: --services plus their needs
    async with platform:                          # starts them in order, stops in reverse
        registry = platform.get(IdentityService).registry

Services are entered on one exit stack in dependency order (ties in the order the
services were registered), so each stops before what it needs: adapters stop taking
messages, then the writer drains what the bus holds, then the store, the bus, the
registry and the database close. Nothing here knows any service by name.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import TypeVar

from prometheus_client import CollectorRegistry

from ._service import Service, ServiceError
from ._settings import CoreSettings

__all__ = ["Health", "HealthCheck", "Platform", "plan"]

logger = logging.getLogger(__name__)

HealthCheck = Callable[[], Awaitable[bool]]
S = TypeVar("S", bound=Service)


@dataclass
class Health:
    """Readiness of every started service; `/health` is ok only when all are ready."""

    checks: dict[str, HealthCheck] = field(default_factory=dict)
    #: Why a service is not ready, in words an operator can act on (`Service.problem`).
    explanations: dict[str, Callable[[], str | None]] = field(default_factory=dict)

    def add(
        self, name: str, check: HealthCheck, explain: Callable[[], str | None] | None = None
    ) -> None:
        if name in self.checks:
            raise ValueError(f"health check {name!r} registered twice")
        self.checks[name] = check
        if explain is not None:
            self.explanations[name] = explain

    def remove(self, name: str) -> None:
        self.checks.pop(name, None)
        self.explanations.pop(name, None)

    def problems(self, report: dict[str, bool]) -> dict[str, str]:
        """The explanations of the entries of `report` that are not ready."""
        found = {name: self.explanations[name]() for name, ok in report.items()
                 if not ok and name in self.explanations}  # fmt: skip
        return {name: text for name, text in found.items() if text}

    async def report(self) -> dict[str, bool]:
        names = list(self.checks)
        results = await asyncio.gather(*(self.checks[n]() for n in names), return_exceptions=True)
        return {n: r is True for n, r in zip(names, results, strict=True)}


def plan(names: Iterable[str]) -> tuple[type[Service], ...]:
    """The services to start for `names` and their needs, each after what it needs
    and after the services that asked to come `before` it.

    Among services free to start, lower `stage` first, then registration order; edges
    that take messages in have the highest stage, so they stop first and nothing is
    accepted while the consumers drain. Raises `ServiceError` for an unknown name or
    a cycle of needs.
    """
    registry = Service.backends
    wanted: dict[type[Service], None] = {}
    pending = [registry.get(name) for name in names]
    while pending:
        cls = pending.pop()
        if cls not in wanted:
            wanted[cls] = None
            pending.extend(registry.get(need) for need in cls.needs)
    index = {cls: i for i, cls in enumerate(registry)}
    # c → the wanted services that asked to start before it.
    ahead = {c: [o for o in wanted if c.name in o.before and o is not c] for c in wanted}
    planned: list[type[Service]] = []
    left = set(wanted)
    while left:
        free = [
            c
            for c in left
            if all(registry.get(n) in planned for n in c.needs)
            and all(o in planned for o in ahead[c])
        ]
        if not free:
            cycle = ", ".join(sorted(c.name for c in left))
            raise ServiceError(f"services need each other in a cycle: {cycle}")
        chosen = min(free, key=lambda c: (c.stage, index[c]))
        planned.append(chosen)
        left.remove(chosen)
    return tuple(planned)


def selectable_services() -> tuple[str, ...]:
    """Names `--services` accepts."""
    return tuple(sorted(cls.name for cls in Service.backends if not cls.internal))


class Platform:
    """Owns the services of one process; `async with Platform(settings)` runs them."""

    def __init__(self, settings: CoreSettings) -> None:
        self.settings = settings
        self.health = Health()
        self.metrics = CollectorRegistry()
        self.plan = plan(settings.services)
        #: Awaited once every service has started (the CLI prints the demo plant here).
        self.on_started: list[Callable[[], Awaitable[None]]] = []
        self.started = False
        #: Set when the server in front begins to stop: followed feeds end, so that
        #: it does not wait its graceful timeout out for them.
        self.draining = asyncio.Event()
        self._running: dict[type[Service], Service] = {}
        self._stack = AsyncExitStack()

    def get(self, cls: type[S]) -> S:
        """The running instance of a service class; an error if it is not running here."""
        service = self._running.get(cls)
        if not isinstance(service, cls):
            planned = ", ".join(c.name for c in self.plan)
            raise ServiceError(
                f"service {cls.name!r} is not running in this process (running: {planned})"
            )
        return service

    def running(self, cls: type[Service]) -> bool:
        return cls in self._running

    async def __aenter__(self) -> Platform:
        await self.start()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        try:
            for cls in self.plan:
                service = cls(self)
                await self._stack.enter_async_context(service)
                self._running[cls] = service
                health = service.health_name()
                if health:
                    self.health.add(health, service.check, service.problem)
                    self._stack.callback(self.health.remove, health)
        except BaseException:
            await self._stack.aclose()
            self._running.clear()
            raise
        for callback in self.on_started:
            await callback()
        self.started = True
        logger.info("platform started with services %s", ",".join(c.name for c in self.plan))

    async def stop(self) -> None:
        self.started = False
        await self._stack.aclose()
        self._running.clear()
        logger.info("platform stopped")
