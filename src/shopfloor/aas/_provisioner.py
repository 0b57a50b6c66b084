"""`AasProvisioner`: a Core deployed as an agent.

An agent labelled `shopfloor.provision.aas=<AAS id>` is that shell's Core: the shell
gets a Manager (the one it has, or one made for the agent and removed with it), and the
agent is handed what a Core needs (docs/aas-protocol.md, "How a Core finds its topic")
as the `SHOPFLOOR_CORE_*` variables `CoreConfig.from_env` reads, with the shell's
definition (the shell, its submodels and the concept descriptions they reference) as
the JSON file `aas.json` in its files folder. One agent per shell.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from shopfloor.agents import AgentRef, Grant, InvalidAgentSpec, Provisioner

from ._core_config import CoreConfig
from ._errors import AasConflict, AasNotFound
from ._formats import Format, write_environment

if TYPE_CHECKING:
    from shopfloor.core import Platform

    from .capability import AasService

__all__ = ["AAS_FILE", "AasProvisioner"]

#: The shell's definition in the agent's files folder.
AAS_FILE = "aas.json"


class AasProvisioner(Provisioner, name="aas"):
    """The agent is the Core of the shell its label names."""

    def __init__(self, service: AasService) -> None:
        self._service = service

    @classmethod
    def from_platform(cls, platform: Platform) -> AasProvisioner | None:
        from .capability import AasService

        return cls(platform.get(AasService)) if platform.running(AasService) else None

    def validate(self, value: str) -> None:
        aas_id = value.strip()
        if not aas_id:  # a label value is at most 256 characters: so is the id here
            raise InvalidAgentSpec(
                "shopfloor.provision.aas names the shell's AAS id",
                code="invalid_provisioning_label",
            )
        url = self._service.core_transport_url
        if url.startswith("memory://"):
            raise InvalidAgentSpec(
                f"a Core deployed as an agent runs in its own process, and the AAS "
                f"transport {url} is this process's only: set SHOPFLOOR_AAS_TRANSPORT_URL "
                "to kafka:// or nats://", code="aas_transport_in_process",
            )  # fmt: skip

    async def provision(self, agent: AgentRef, value: str) -> Grant:
        self.validate(value)
        aas_id = value.strip()
        service = self._service
        try:
            info = await service.managers.claim(agent.org_id, aas_id, agent.name)
            objects = await service.store.environment(agent.org_id, [aas_id])
        except AasNotFound as exc:
            raise InvalidAgentSpec(
                f"shopfloor.provision.aas: the organisation has no shell {aas_id!r}",
                code="aas_not_found",
            ) from exc
        except AasConflict as exc:
            raise InvalidAgentSpec(f"shopfloor.provision.aas: {exc}", code=exc.code) from exc
        definition = await asyncio.to_thread(write_environment, objects, Format.JSON)
        config = CoreConfig(
            transport_url=service.core_transport_url,
            topic=info.topic,
            aas_id=aas_id,
            aas_file=AAS_FILE,
        )
        return Grant(env=config.environment(), files={AAS_FILE: definition})

    async def deprovision(self, agent: AgentRef) -> None:
        await self._service.managers.release(agent.org_id, agent.name)
