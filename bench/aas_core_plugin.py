"""A plug-in capability of the `aas_invoke` scenario: the shell's Core inside the
platform's process, for the memory transport.

A `memory://` transport exists only in the process that created it, so the Core of a
shell whose Managers talk in memory has to run in the platform's process. `shopfloor
serve` loads this module as it loads any plug-in, named in `SHOPFLOOR_CAPABILITIES`, and
runs its service when `--services` lists `bench_core` (the scenario runs `api,aas,
bench_core` for every transport, so the platform is the same process for all three):

    POST /bench/core {"topic": "aas...."}   201: a Core of that topic on the aas
                                            service's transport, in this process
    GET  /bench/core                        200: {"handled": N}, calls the Cores handled

The Cores stop with the service, before the aas service (and its Managers) stop. This
module is never imported by the runner: a service registers itself on import.
"""

from __future__ import annotations

from contextlib import AsyncExitStack
from typing import TYPE_CHECKING

from fastapi import APIRouter, status
from pydantic import BaseModel

from bench.aas_press import PressCore, press_core
from shopfloor.aas.capability import AasService
from shopfloor.api import PlatformDep, PrincipalDep
from shopfloor.auth import Action
from shopfloor.core import Service

if TYPE_CHECKING:
    from shopfloor.core import Platform

__all__ = ["BenchCoreService", "router"]


class BenchCoreService(Service, name="bench_core", needs=("aas",)):
    """Cores of shells inside this process (the aas_invoke benchmark's memory transport)."""

    routes = ("bench.aas_core_plugin:router",)

    def __init__(self, platform: Platform) -> None:
        super().__init__(platform)
        self._cores = AsyncExitStack()
        self._made: list[PressCore] = []

    async def _start(self, stack: AsyncExitStack) -> None:
        stack.push_async_callback(self._cores.aclose)

    async def add(self, topic: str) -> None:
        made = press_core(topic, self.platform.get(AasService).core_transport_url)
        await self._cores.enter_async_context(made.core)
        self._made.append(made)

    @property
    def handled(self) -> int:
        return sum(made.handled for made in self._made)


class CoreIn(BaseModel):
    topic: str


class HandledOut(BaseModel):
    handled: int


router = APIRouter(prefix="/bench/core", tags=["bench"])


@router.post("", status_code=status.HTTP_201_CREATED)
async def add_core(body: CoreIn, platform: PlatformDep, principal: PrincipalDep) -> None:
    principal.require(Action.MANAGE_REGISTRY)
    await platform.get(BenchCoreService).add(body.topic)


@router.get("")
async def handled(platform: PlatformDep, principal: PrincipalDep) -> HandledOut:
    principal.require(Action.READ)
    return HandledOut(handled=platform.get(BenchCoreService).handled)
