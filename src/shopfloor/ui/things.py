"""Things and channels of the caller's organisation: tables paged, sorted and filtered
on the server; create, rename, tags and metadata, rotate a key (shown once), delete;
a channel's connections.

Every change goes through the registry as the API's routes do, checked by the same
bodies (`EntityCreate`, `EntityUpdate`) and the same role checks (`Principal.require`),
so a refusal is the API's own error, which the page shows beside the form.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from shopfloor.api import EntityCreate, EntityUpdate
from shopfloor.auth import Action
from shopfloor.auth.capability import IdentityService
from shopfloor.registry import SORT_KEYS, Permission, Registry, SortKey

from ._errors import InvalidForm
from ._forms import PAGE_SIZES, checked, paging, sort_of
from ._pages import PREFIX
from ._web import SignedForm, SignedFormDep, SignedIn, console_page, platform_of, render

__all__ = ["router"]

router = APIRouter(include_in_schema=False)


def _registry(request: Request) -> Registry:
    return platform_of(request).get(IdentityService).registry


def _listing(request: Request) -> dict[str, Any]:
    """The table's paging, order and filters from the query string, bounded."""
    query = request.query_params
    return {
        **paging(request),
        "name": query.get("name", "").strip()[:200],
        "tag": query.get("tag", "").strip()[:100],
        "sort": sort_of(request, SORT_KEYS),
    }


def _entity_fields(sent: SignedForm) -> dict[str, Any]:
    """name, tags (comma-separated) and metadata (a JSON object) of a form, as sent."""
    values: dict[str, Any] = {"name": sent.text("name")}
    values["tags"] = [tag.strip() for tag in sent.text("tags").split(",") if tag.strip()]
    metadata = sent.text("metadata")
    try:
        values["metadata"] = json.loads(metadata) if metadata else {}
    except json.JSONDecodeError:
        problem = 'metadata is not valid JSON: give an object such as {"line": 1}'
        raise InvalidForm(problem, details=[{"field": "metadata", "problem": problem}]) from None
    return values


def _changed(
    request: Request, template: str, context: dict[str, Any], sent: SignedForm
) -> Response:
    """The answer to a change: a notice marked `data-changed`, upon which the page's
    tables reload themselves (console.js)."""
    return render(request, template, context, caller=sent.caller)


# -- things ------------------------------------------------------------------------------


@router.get(PREFIX + "/things")
async def things_page(request: Request) -> Response:
    return await _table_page(request, "console/things.html", _registry(request).list_things)


async def _table_page(request: Request, template: str, lister: Any) -> Response:
    """A page of the organisation's things or channels, as the listing's query asks
    (`Registry.list_things`, `list_channels`: the same paging, filters and sort)."""

    async def build(caller: SignedIn) -> Response:
        org_id = caller.principal.require_org()
        listing = _listing(request)
        sort: SortKey = listing["sort"]
        page = await lister(
            org_id, offset=listing["offset"], limit=listing["limit"],
            name=listing["name"] or None, tag=listing["tag"] or None, sort=sort,
        )  # fmt: skip
        context = {"page": page, "listing": listing, "page_sizes": PAGE_SIZES}
        return render(request, template, context, caller=caller)

    return await console_page(request, build)


@router.post(PREFIX + "/things")
async def create_thing(request: Request, sent: SignedFormDep) -> Response:
    org_id = sent.caller.principal.require(Action.MANAGE_REGISTRY)
    body: EntityCreate = checked(EntityCreate, _entity_fields(sent))
    thing, key = await _registry(request).create_thing(
        org_id, name=body.name, metadata=body.metadata, tags=body.tags
    )
    context = {"thing": thing, "key": key, "what": "created"}
    return _changed(request, "console/thing_key.html", context, sent)


@router.post(PREFIX + "/things/{thing_id}")
async def update_thing(thing_id: str, request: Request, sent: SignedFormDep) -> Response:
    org_id = sent.caller.principal.require(Action.MANAGE_REGISTRY)
    body: EntityUpdate = checked(EntityUpdate, _entity_fields(sent))
    thing = await _registry(request).update_thing(
        org_id, thing_id, name=body.name, metadata=body.metadata, tags=body.tags
    )
    return _changed(request, "console/saved.html", {"entity": thing}, sent)


@router.post(PREFIX + "/things/{thing_id}/key")
async def rotate_key(thing_id: str, request: Request, sent: SignedFormDep) -> Response:
    org_id = sent.caller.principal.require(Action.MANAGE_THING_KEYS)
    thing, key = await _registry(request).rotate_thing_key(org_id, thing_id)
    context = {"thing": thing, "key": key, "what": "rotated"}
    return _changed(request, "console/thing_key.html", context, sent)


@router.post(PREFIX + "/things/{thing_id}/delete")
async def delete_thing(thing_id: str, request: Request, sent: SignedFormDep) -> Response:
    org_id = sent.caller.principal.require(Action.MANAGE_REGISTRY)
    registry = _registry(request)
    thing = await registry.get_thing(org_id, thing_id)
    await registry.delete_thing(org_id, thing_id)
    return _changed(request, "console/deleted.html", {"entity": thing}, sent)


# -- channels and connections ------------------------------------------------------------


@router.get(PREFIX + "/channels")
async def channels_page(request: Request) -> Response:
    return await _table_page(request, "console/channels.html", _registry(request).list_channels)


@router.post(PREFIX + "/channels")
async def create_channel(request: Request, sent: SignedFormDep) -> Response:
    org_id = sent.caller.principal.require(Action.MANAGE_REGISTRY)
    body: EntityCreate = checked(EntityCreate, _entity_fields(sent))
    channel = await _registry(request).create_channel(
        org_id, name=body.name, metadata=body.metadata, tags=body.tags
    )
    return _changed(request, "console/saved.html", {"entity": channel}, sent)


@router.post(PREFIX + "/channels/{channel_id}/delete")
async def delete_channel(channel_id: str, request: Request, sent: SignedFormDep) -> Response:
    org_id = sent.caller.principal.require(Action.MANAGE_REGISTRY)
    registry = _registry(request)
    channel = await registry.get_channel(org_id, channel_id)
    await registry.delete_channel(org_id, channel_id)
    return _changed(request, "console/deleted.html", {"entity": channel}, sent)


@router.get(PREFIX + "/channels/{channel_id}")
async def channel_page(channel_id: str, request: Request) -> Response:
    async def build(caller: SignedIn) -> Response:
        org_id = caller.principal.require_org()
        registry = _registry(request)
        channel = await registry.get_channel(org_id, channel_id)
        listing = _listing(request)
        connected = await registry.channel_things(
            org_id, channel_id, offset=listing["offset"], limit=listing["limit"]
        )
        things = await registry.list_things(org_id, limit=100)
        context = {
            "channel": channel, "page": connected, "listing": listing, "things": things.items,
            "page_sizes": PAGE_SIZES,
        }  # fmt: skip
        return render(request, "console/channel.html", context, caller=caller)

    return await console_page(request, build)


@router.post(PREFIX + "/channels/{channel_id}/things")
async def connect(channel_id: str, request: Request, sent: SignedFormDep) -> Response:
    org_id = sent.caller.principal.require(Action.MANAGE_REGISTRY)
    permissions = [p for p in Permission if sent.form.get(p.value)]
    if not permissions:
        problem = "choose publish, subscribe or both"
        raise InvalidForm(problem, details=[{"field": "permissions", "problem": problem}])
    thing_id = sent.text("thing_id")
    registry = _registry(request)
    thing = await registry.get_thing(org_id, thing_id)
    await registry.connect(org_id, channel_id, thing_id, permissions)
    return _changed(request, "console/saved.html", {"entity": thing}, sent)


@router.post(PREFIX + "/channels/{channel_id}/things/{thing_id}/delete")
async def disconnect(
    channel_id: str, thing_id: str, request: Request, sent: SignedFormDep
) -> Response:
    org_id = sent.caller.principal.require(Action.MANAGE_REGISTRY)
    registry = _registry(request)
    thing = await registry.get_thing(org_id, thing_id)
    await registry.disconnect(org_id, channel_id, thing_id)
    return _changed(request, "console/deleted.html", {"entity": thing}, sent)
