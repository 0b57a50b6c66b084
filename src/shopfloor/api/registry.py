"""Registry routes: things, channels and the connections between them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, status
from pydantic import BaseModel

from shopfloor.auth import Action, Principal
from shopfloor.registry import Connection, Entity, Page, Registry, Thing

from ._deps import Paging, PagingDep, PrincipalDep, ServicesDep
from ._schemas import (
    ChannelOut,
    ConnectedChannelOut,
    ConnectedThingOut,
    ConnectionBody,
    ConnectionOut,
    EntityCreate,
    EntityUpdate,
    PageOut,
    ThingOut,
)

router = APIRouter(prefix="/api/v1")

NameFilter = Annotated[str | None, Query(max_length=200, description="Part of the name.")]
TagFilter = Annotated[str | None, Query(max_length=100, description="Exact tag.")]


def _channel_out(channel: Entity) -> ChannelOut:
    return ChannelOut(
        id=channel.id,
        name=channel.name,
        metadata=channel.metadata,
        tags=list(channel.tags),
        org_id=channel.org_id,
        created_at=channel.created_at,
    )


def _thing_out(
    registry: Registry, principal: Principal, thing: Thing, key: str | None = None
) -> ThingOut:
    if key is None and principal.can(Action.MANAGE_THING_KEYS):
        key = registry.thing_key(thing)
    return ThingOut(**_channel_out(thing).model_dump(), key=key)


def _connection_out(connection: Connection) -> ConnectionOut:
    return ConnectionOut(
        channel_id=connection.channel_id,
        thing_id=connection.thing_id,
        permissions=sorted(connection.permissions),
        created_at=connection.created_at,
    )


def _page(page: Page[Any], items: Sequence[BaseModel]) -> PageOut[Any]:
    return PageOut(total=page.total, offset=page.offset, limit=page.limit, items=list(items))


# -- things ------------------------------------------------------------------------------


@router.post(
    "/things", response_model=ThingOut, status_code=status.HTTP_201_CREATED, tags=["things"]
)
async def create_thing(
    body: EntityCreate, platform: ServicesDep, principal: PrincipalDep
) -> ThingOut:
    """Create a thing; the answer holds its key."""
    org_id = principal.require(Action.MANAGE_REGISTRY)
    thing, key = await platform.registry.create_thing(
        org_id, name=body.name, metadata=body.metadata, tags=body.tags
    )
    return _thing_out(platform.registry, principal, thing, key)


@router.get("/things", response_model=PageOut[ThingOut], tags=["things"])
async def list_things(
    platform: ServicesDep,
    principal: PrincipalDep,
    paging: PagingDep,
    name: NameFilter = None,
    tag: TagFilter = None,
) -> PageOut[Any]:
    org_id = principal.require_org()
    page = await platform.registry.list_things(
        org_id, offset=paging.offset, limit=paging.limit, name=name, tag=tag
    )
    return _page(page, [_thing_out(platform.registry, principal, t) for t in page.items])


@router.get("/things/{thing_id}", response_model=ThingOut, tags=["things"])
async def get_thing(thing_id: str, platform: ServicesDep, principal: PrincipalDep) -> ThingOut:
    thing = await platform.registry.get_thing(principal.require_org(), thing_id)
    return _thing_out(platform.registry, principal, thing)


@router.patch("/things/{thing_id}", response_model=ThingOut, tags=["things"])
async def update_thing(
    thing_id: str, body: EntityUpdate, platform: ServicesDep, principal: PrincipalDep
) -> ThingOut:
    org_id = principal.require(Action.MANAGE_REGISTRY)
    thing = await platform.registry.update_thing(
        org_id, thing_id, name=body.name, metadata=body.metadata, tags=body.tags
    )
    return _thing_out(platform.registry, principal, thing)


@router.delete("/things/{thing_id}", status_code=status.HTTP_204_NO_CONTENT, tags=["things"])
async def delete_thing(thing_id: str, platform: ServicesDep, principal: PrincipalDep) -> None:
    await platform.registry.delete_thing(principal.require(Action.MANAGE_REGISTRY), thing_id)


@router.post("/things/{thing_id}/key", response_model=ThingOut, tags=["things"])
async def rotate_thing_key(
    thing_id: str, platform: ServicesDep, principal: PrincipalDep
) -> ThingOut:
    """Give the thing a new key; the old one stops working at once."""
    org_id = principal.require(Action.MANAGE_THING_KEYS)
    thing, key = await platform.registry.rotate_thing_key(org_id, thing_id)
    return _thing_out(platform.registry, principal, thing, key)


@router.get(
    "/things/{thing_id}/channels", response_model=PageOut[ConnectedChannelOut], tags=["things"]
)
async def thing_channels(
    thing_id: str, platform: ServicesDep, principal: PrincipalDep, paging: PagingDep
) -> PageOut[Any]:
    page = await platform.registry.thing_channels(
        principal.require_org(), thing_id, offset=paging.offset, limit=paging.limit
    )
    items = [
        ConnectedChannelOut(**_channel_out(c).model_dump(), permissions=sorted(conn.permissions))
        for c, conn in page.items
    ]
    return _page(page, items)


# -- channels ----------------------------------------------------------------------------


@router.post(
    "/channels", response_model=ChannelOut, status_code=status.HTTP_201_CREATED, tags=["channels"]
)
async def create_channel(
    body: EntityCreate, platform: ServicesDep, principal: PrincipalDep
) -> ChannelOut:
    org_id = principal.require(Action.MANAGE_REGISTRY)
    channel = await platform.registry.create_channel(
        org_id, name=body.name, metadata=body.metadata, tags=body.tags
    )
    return _channel_out(channel)


@router.get("/channels", response_model=PageOut[ChannelOut], tags=["channels"])
async def list_channels(
    platform: ServicesDep,
    principal: PrincipalDep,
    paging: PagingDep,
    name: NameFilter = None,
    tag: TagFilter = None,
) -> PageOut[Any]:
    page = await platform.registry.list_channels(
        principal.require_org(), offset=paging.offset, limit=paging.limit, name=name, tag=tag
    )
    return _page(page, [_channel_out(c) for c in page.items])


@router.get("/channels/{channel_id}", response_model=ChannelOut, tags=["channels"])
async def get_channel(
    channel_id: str, platform: ServicesDep, principal: PrincipalDep
) -> ChannelOut:
    return _channel_out(await platform.registry.get_channel(principal.require_org(), channel_id))


@router.patch("/channels/{channel_id}", response_model=ChannelOut, tags=["channels"])
async def update_channel(
    channel_id: str, body: EntityUpdate, platform: ServicesDep, principal: PrincipalDep
) -> ChannelOut:
    channel = await platform.registry.update_channel(
        principal.require(Action.MANAGE_REGISTRY),
        channel_id,
        name=body.name,
        metadata=body.metadata,
        tags=body.tags,
    )
    return _channel_out(channel)


@router.delete("/channels/{channel_id}", status_code=status.HTTP_204_NO_CONTENT, tags=["channels"])
async def delete_channel(channel_id: str, platform: ServicesDep, principal: PrincipalDep) -> None:
    await platform.registry.delete_channel(principal.require(Action.MANAGE_REGISTRY), channel_id)


@router.get(
    "/channels/{channel_id}/things", response_model=PageOut[ConnectedThingOut], tags=["channels"]
)
async def channel_things(
    channel_id: str, platform: ServicesDep, principal: PrincipalDep, paging: PagingDep
) -> PageOut[Any]:
    page = await platform.registry.channel_things(
        principal.require_org(), channel_id, offset=paging.offset, limit=paging.limit
    )
    items = [
        ConnectedThingOut(
            **_thing_out(platform.registry, principal, t).model_dump(),
            permissions=sorted(conn.permissions),
        )
        for t, conn in page.items
    ]
    return _page(page, items)


@router.put(
    "/channels/{channel_id}/things/{thing_id}", response_model=ConnectionOut, tags=["channels"]
)
async def connect(
    channel_id: str,
    thing_id: str,
    platform: ServicesDep,
    principal: PrincipalDep,
    body: Annotated[ConnectionBody | None, Body()] = None,
) -> ConnectionOut:
    """Connect a thing to a channel (default: publish and subscribe)."""
    permissions = (body or ConnectionBody()).permissions
    connection = await platform.registry.connect(
        principal.require(Action.MANAGE_REGISTRY), channel_id, thing_id, permissions
    )
    return _connection_out(connection)


@router.delete(
    "/channels/{channel_id}/things/{thing_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    tags=["channels"],
)
async def disconnect(
    channel_id: str, thing_id: str, platform: ServicesDep, principal: PrincipalDep
) -> None:
    await platform.registry.disconnect(
        principal.require(Action.MANAGE_REGISTRY), channel_id, thing_id
    )


__all__ = ["Paging", "router"]
