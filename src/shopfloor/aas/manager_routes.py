"""Which shells have a Manager (`/api/v1/aas/managers`), and what their Core is told.

    POST   /api/v1/aas/managers {"aas_id": "..."}   201: the Manager, with `core`
    GET    /api/v1/aas/managers                     200: {"items": [...]}
    GET    /api/v1/aas/managers/{aas_identifier}    200 (base64url of the AAS id, as IDTA
    DELETE /api/v1/aas/managers/{aas_identifier}    204  Part 2 writes identifiers)

`core` is the configuration a Core needs (docs/aas-protocol.md, "How a Core finds its
topic"): the transport URL, the topic and the AAS id, also as the environment variables
`SHOPFLOOR_CORE_*` that `CoreConfig.from_env` reads.
"""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, status
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from shopfloor.api import PlatformDep, PrincipalDep
from shopfloor.auth import Action

from ._errors import InvalidAasRequest
from ._managers import ManagerInfo
from .capability import AasService
from .core import CoreConfig
from .protocol import State

router = APIRouter()
PREFIX = "/api/v1/aas/managers"

AasId = Annotated[str, StringConstraints(min_length=1, max_length=2048)]


class ManagerCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    aas_id: AasId


class CoreOut(BaseModel):
    transport_url: str
    topic: str
    aas_id: str
    environment: dict[str, str]


class ManagerOut(BaseModel):
    aas_id: str
    topic: str
    created_at: datetime
    state: State | None
    core_state: State | None
    error: str | None
    core_agent: str | None = Field(
        description="The agent deployed as the shell's Core (labelled "
        "`shopfloor.provision.aas`), if one is."
    )
    core: CoreOut


class ManagersOut(BaseModel):
    items: list[ManagerOut]


def _service(platform: PlatformDep) -> AasService:
    return platform.get(AasService)


def _out(service: AasService, info: ManagerInfo) -> ManagerOut:
    config = CoreConfig(
        transport_url=service.core_transport_url, topic=info.topic, aas_id=info.aas_id
    )
    return ManagerOut(
        aas_id=info.aas_id,
        topic=info.topic,
        created_at=info.created_at,
        state=info.state,
        core_state=info.core_state,
        error=info.error,
        core_agent=info.core_agent,
        core=CoreOut(
            transport_url=config.transport_url,
            topic=config.topic,
            aas_id=config.aas_id,
            environment=config.environment(),
        ),
    )


def _aas_id(aas_identifier: str) -> str:
    try:
        padded = aas_identifier + "=" * (-len(aas_identifier) % 4)
        return base64.b64decode(padded, altchars=b"-_", validate=True).decode()
    except (binascii.Error, ValueError, UnicodeDecodeError) as exc:
        raise InvalidAasRequest(
            f"{aas_identifier!r} is not a base64url-encoded identifier"
        ) from exc


@router.post(PREFIX, response_model=ManagerOut, status_code=status.HTTP_201_CREATED, tags=["aas"])
async def add_manager(
    body: ManagerCreate, platform: PlatformDep, principal: PrincipalDep
) -> ManagerOut:
    """Give a shell a Manager: it starts at once and waits for the shell's Core."""
    org_id = principal.require(Action.MANAGE_REGISTRY)
    service = _service(platform)
    return _out(service, await service.managers.add(org_id, body.aas_id))


@router.get(PREFIX, response_model=ManagersOut, tags=["aas"])
async def list_managers(platform: PlatformDep, principal: PrincipalDep) -> ManagersOut:
    org_id = principal.require(Action.READ)
    service = _service(platform)
    return ManagersOut(items=[_out(service, info) for info in await service.managers.list(org_id)])


@router.get(f"{PREFIX}/{{aas_identifier}}", response_model=ManagerOut, tags=["aas"])
async def get_manager(
    aas_identifier: str, platform: PlatformDep, principal: PrincipalDep
) -> ManagerOut:
    org_id = principal.require(Action.READ)
    service = _service(platform)
    return _out(service, await service.managers.get(org_id, _aas_id(aas_identifier)))


@router.delete(f"{PREFIX}/{{aas_identifier}}", status_code=status.HTTP_204_NO_CONTENT, tags=["aas"])
async def remove_manager(
    aas_identifier: str, platform: PlatformDep, principal: PrincipalDep
) -> None:
    """Stop and forget the shell's Manager (the topic and its log stay on the broker)."""
    org_id = principal.require(Action.MANAGE_REGISTRY)
    await _service(platform).managers.remove(org_id, _aas_id(aas_identifier))
