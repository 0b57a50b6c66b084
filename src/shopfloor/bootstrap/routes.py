"""Bootstrap routes: configurations for people (`/api/v1/bootstrap`), fetch for devices.

Management answers never hold the external key (it is only ever set) nor the client
key (a device receives it when it bootstraps); `has_client_key` says whether one is set.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request, status
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from shopfloor.api import PageOut, PagingDep, PlatformDep, PrincipalDep
from shopfloor.auth import Action, Forbidden, Principal, thing_key
from shopfloor.registry import Role

from ._bootstrap import Bootstrap
from ._errors import InvalidConfig
from ._store import MAX_EXTERNAL_KEY, MIN_EXTERNAL_KEY
from ._types import BootstrapConfig, State, UnknownDevice
from ._wire import b64encode
from .capability import BootstrapService

router = APIRouter()

Name = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]+$"
    ),
]
ExternalId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._:@~-]{1,200}$")]
ExternalKey = Annotated[
    str, StringConstraints(min_length=MIN_EXTERNAL_KEY, max_length=MAX_EXTERNAL_KEY)
]
ChannelIds = Annotated[
    list[Annotated[str, StringConstraints(max_length=36)]], Field(max_length=100)
]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ConfigCreate(_Body):
    external_id: ExternalId
    external_key: ExternalKey
    thing_id: str | None = None
    name: Name
    channels: ChannelIds = Field(default_factory=list)
    content: str = ""
    client_cert: str = ""
    client_key: str = ""
    ca_cert: str = ""


class ConfigUpdate(_Body):
    name: Name | None = None
    content: str | None = None


class StateBody(_Body):
    state: State


class ConnectionsBody(_Body):
    channels: ChannelIds


class CertsBody(_Body):
    client_cert: str | None = None
    client_key: str | None = None
    ca_cert: str | None = None


class ConfigOut(BaseModel):
    thing_id: str
    external_id: str
    org_id: str
    name: str
    channels: list[str]
    content: str
    client_cert: str
    ca_cert: str
    has_client_key: bool
    state: int
    failed_attempts: int
    created_at: datetime
    updated_at: datetime


class UnknownOut(BaseModel):
    external_id: str
    first_seen: datetime
    last_seen: datetime
    attempts: int
    last_address: str


class ChallengeOut(BaseModel):
    challenge: str
    expires_in: int


class SecureRequest(_Body):
    challenge: Annotated[str, StringConstraints(max_length=128)]
    proof: Annotated[str, StringConstraints(max_length=128)]


class SealedOut(BaseModel):
    nonce: str
    ciphertext: str


def _bootstrap(platform: PlatformDep) -> Bootstrap:
    return platform.get(BootstrapService).bootstrap


def config_out(config: BootstrapConfig) -> ConfigOut:
    return ConfigOut(
        thing_id=config.thing_id,
        external_id=config.external_id,
        org_id=config.org_id,
        name=config.name,
        channels=list(config.channels),
        content=config.content,
        client_cert=config.client_cert,
        ca_cert=config.ca_cert,
        has_client_key=config.has_client_key,
        state=int(config.state),
        failed_attempts=config.failed_attempts,
        created_at=config.created_at,
        updated_at=config.updated_at,
    )


def _unknown_out(device: UnknownDevice) -> UnknownOut:
    return UnknownOut(
        external_id=device.external_id,
        first_seen=device.first_seen,
        last_seen=device.last_seen,
        attempts=device.attempts,
        last_address=device.last_address,
    )


def _address(request: Request) -> str:
    return request.client.host if request.client else ""


# -- management ----------------------------------------------------------------------------

PREFIX = "/api/v1/bootstrap"


@router.post(
    f"{PREFIX}/configs",
    response_model=ConfigOut,
    status_code=status.HTTP_201_CREATED,
    tags=["bootstrap"],
)
async def create_config(
    body: ConfigCreate, platform: PlatformDep, principal: PrincipalDep
) -> ConfigOut:
    """Configure a thing for bootstrap (a new thing named `name` without `thing_id`)."""
    org_id = principal.require(Action.MANAGE_REGISTRY)
    config = await _bootstrap(platform).create(
        org_id,
        external_id=body.external_id,
        external_key=body.external_key,
        name=body.name,
        thing_id=body.thing_id,
        channels=body.channels,
        content=body.content,
        client_cert=body.client_cert,
        client_key=body.client_key,
        ca_cert=body.ca_cert,
    )
    return config_out(config)


@router.get(f"{PREFIX}/configs", response_model=PageOut[ConfigOut], tags=["bootstrap"])
async def list_configs(
    platform: PlatformDep,
    principal: PrincipalDep,
    paging: PagingDep,
    state: Annotated[State | None, Query(description="0 inactive, 1 active.")] = None,
    name: Annotated[str | None, Query(max_length=200, description="Part of the name.")] = None,
    external_id: Annotated[str | None, Query(max_length=200, description="Exact id.")] = None,
) -> PageOut[Any]:
    page = await _bootstrap(platform).configs.page(
        principal.require_org(),
        offset=paging.offset,
        limit=paging.limit,
        state=state,
        name=name,
        external_id=external_id,
    )
    items = [config_out(c) for c in page.items]
    return PageOut(total=page.total, offset=page.offset, limit=page.limit, items=items)


def may_see_unknown(principal: Principal) -> None:
    """Who sees the unknown devices (of every organisation): platform and org admins."""
    if principal.platform_admin or principal.role is Role.ADMIN:
        return
    raise Forbidden("only platform and organisation admins may do this", code="insufficient_role")


@router.get(f"{PREFIX}/unknown", response_model=PageOut[UnknownOut], tags=["bootstrap"])
async def list_unknown(
    platform: PlatformDep, principal: PrincipalDep, paging: PagingDep
) -> PageOut[Any]:
    """External ids that asked to bootstrap without a configuration, latest first."""
    may_see_unknown(principal)
    page = await _bootstrap(platform).unknown.page(offset=paging.offset, limit=paging.limit)
    items = [_unknown_out(d) for d in page.items]
    return PageOut(total=page.total, offset=page.offset, limit=page.limit, items=items)


@router.get(f"{PREFIX}/configs/{{thing_id}}", response_model=ConfigOut, tags=["bootstrap"])
async def get_config(thing_id: str, platform: PlatformDep, principal: PrincipalDep) -> ConfigOut:
    return config_out(await _bootstrap(platform).configs.get(principal.require_org(), thing_id))


@router.put(f"{PREFIX}/configs/{{thing_id}}", response_model=ConfigOut, tags=["bootstrap"])
async def update_config(
    thing_id: str, body: ConfigUpdate, platform: PlatformDep, principal: PrincipalDep
) -> ConfigOut:
    """Change the name and the content (as Mainflux's update)."""
    org_id = principal.require(Action.MANAGE_REGISTRY)
    config = await _bootstrap(platform).update(
        org_id, thing_id, name=body.name, content=body.content
    )
    return config_out(config)


@router.delete(
    f"{PREFIX}/configs/{{thing_id}}", status_code=status.HTTP_204_NO_CONTENT, tags=["bootstrap"]
)
async def delete_config(thing_id: str, platform: PlatformDep, principal: PrincipalDep) -> None:
    """Remove the configuration; the thing and its connections stay."""
    await _bootstrap(platform).delete(principal.require(Action.MANAGE_REGISTRY), thing_id)


@router.put(f"{PREFIX}/configs/{{thing_id}}/state", response_model=ConfigOut, tags=["bootstrap"])
async def set_state(
    thing_id: str, body: StateBody, platform: PlatformDep, principal: PrincipalDep
) -> ConfigOut:
    """1 connects the thing to the configuration's channels, 0 disconnects it."""
    org_id = principal.require(Action.MANAGE_REGISTRY)
    return config_out(await _bootstrap(platform).set_state(org_id, thing_id, body.state))


@router.put(
    f"{PREFIX}/configs/{{thing_id}}/connections", response_model=ConfigOut, tags=["bootstrap"]
)
async def set_connections(
    thing_id: str, body: ConnectionsBody, platform: PlatformDep, principal: PrincipalDep
) -> ConfigOut:
    """Replace the channel list; an active thing's connections follow."""
    org_id = principal.require(Action.MANAGE_REGISTRY)
    return config_out(await _bootstrap(platform).set_channels(org_id, thing_id, body.channels))


@router.patch(f"{PREFIX}/configs/{{thing_id}}/certs", response_model=ConfigOut, tags=["bootstrap"])
async def set_certs(
    thing_id: str, body: CertsBody, platform: PlatformDep, principal: PrincipalDep
) -> ConfigOut:
    """Set the client certificate, its key and the CA certificate (those given)."""
    org_id = principal.require(Action.MANAGE_REGISTRY)
    config = await _bootstrap(platform).set_certs(
        org_id,
        thing_id,
        client_cert=body.client_cert,
        client_key=body.client_key,
        ca_cert=body.ca_cert,
    )
    return config_out(config)


# -- devices -------------------------------------------------------------------------------

AuthorizationHeader = Annotated[
    str,
    Header(
        alias="Authorization",
        description="`Thing <external_key>`, or the bare external key (as Mainflux).",
    ),
]


async def _fetch(
    external_id: str, request: Request, platform: PlatformDep, authorization: str
) -> dict[str, Any]:
    key = thing_key(authorization)
    if not key:
        raise InvalidConfig(
            "send `Authorization: Thing <external_key>`", code="bootstrap_key_missing"
        )
    return await _bootstrap(platform).fetch(external_id, key, _address(request))


@router.get("/bootstrap/{external_id}", tags=["bootstrap devices"])
@router.get(
    "/things/bootstrap/{external_id}",
    tags=["bootstrap devices"],
    operation_id="fetch_config_mainflux_path",
    summary="Fetch Config (Mainflux's path)",
)
async def fetch_config(
    external_id: str,
    request: Request,
    platform: PlatformDep,
    authorization: AuthorizationHeader = "",
) -> dict[str, Any]:
    """A device's configuration, in Mainflux's fields plus Shopfloor's under `shopfloor`;
    on `/bootstrap/...` and on Mainflux's own `/things/bootstrap/...`."""
    return await _fetch(external_id, request, platform, authorization)


@router.post(
    "/bootstrap/{external_id}/challenge", response_model=ChallengeOut, tags=["bootstrap devices"]
)
async def challenge(external_id: str, request: Request, platform: PlatformDep) -> ChallengeOut:
    """A single-use challenge for the secure exchange (docs/bootstrap.md)."""
    bootstrap = _bootstrap(platform)
    issued = await bootstrap.challenge(external_id, _address(request))
    return ChallengeOut(
        challenge=b64encode(issued), expires_in=int(bootstrap.challenges.ttl_seconds)
    )


@router.post(
    "/bootstrap/{external_id}/secure", response_model=SealedOut, tags=["bootstrap devices"]
)
async def secure(
    external_id: str, body: SecureRequest, request: Request, platform: PlatformDep
) -> SealedOut:
    """The configuration sealed (AES-256-GCM) under keys only the device can derive."""
    sealed = await _bootstrap(platform).secure(
        external_id, body.challenge, body.proof, _address(request)
    )
    return SealedOut(**sealed)
