"""The bootstrap page of the console: the organisation's device configurations (paged,
filtered by name and state), create, edit the name and content, activate and
deactivate, delete; the unknown devices for those the API shows them to.

Every change is the API's own route (`routes.create_config`, `update_config`,
`set_state`, `delete_config`) called with the same body and caller: what
`/api/v1/bootstrap/configs` refuses, the page refuses, in the API's words.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import Response

from shopfloor.auth.capability import IdentityService
from shopfloor.core import ShopfloorError
from shopfloor.ui import (
    PAGE_SIZES,
    PREFIX,
    SignedFormDep,
    SignedIn,
    checked,
    console_page,
    paging,
    platform_of,
    render,
)
from shopfloor.ui.capability import console_router

from . import routes
from ._store import MAX_EXTERNAL_KEY, MIN_EXTERNAL_KEY
from ._types import State
from .capability import BootstrapService

__all__ = ["router"]

router = console_router()

BASE = PREFIX + "/bootstrap"
#: Unknown devices shown on the page (latest first); the API pages through them all.
UNKNOWN_SHOWN = 50


def _listing(request: Request) -> dict[str, Any]:
    query = request.query_params
    state = query.get("state", "")
    return {
        **paging(request),
        "sort": "name",
        "name": query.get("name", "").strip()[:200],
        "state": state if state in ("0", "1") else "",
        "also": ("state",),
    }


@router.get(BASE)
async def bootstrap_page(request: Request) -> Response:
    async def build(caller: SignedIn) -> Response:
        principal = caller.principal
        org_id = principal.require_org()  # as `GET /api/v1/bootstrap/configs`
        platform = platform_of(request)
        listing = _listing(request)
        page = await platform.get(BootstrapService).bootstrap.configs.page(
            org_id, offset=listing["offset"], limit=listing["limit"],
            state=State(int(listing["state"])) if listing["state"] else None,
            name=listing["name"] or None,
        )  # fmt: skip
        try:
            routes.may_see_unknown(principal)  # `GET /api/v1/bootstrap/unknown`'s check
        except ShopfloorError:
            unknown = None
        else:
            unknown = await platform.get(BootstrapService).bootstrap.unknown.page(
                offset=0, limit=UNKNOWN_SHOWN
            )
        channels = await platform.get(IdentityService).registry.list_channels(org_id, limit=100)
        context = {
            "page": page, "listing": listing, "page_sizes": PAGE_SIZES, "unknown": unknown,
            "channels": channels.items, "key_min": MIN_EXTERNAL_KEY, "key_max": MAX_EXTERNAL_KEY,
        }  # fmt: skip
        return render(request, "bootstrap/configs.html", context, caller=caller)

    return await console_page(request, build)


def _notice(request: Request, sent: Any, key: str, name: str) -> Response:
    context = {"key": key, "name": name}
    return render(request, "bootstrap/notice.html", context, caller=sent.caller)


@router.post(BASE)
async def create(request: Request, sent: SignedFormDep) -> Response:
    values: dict[str, Any] = {
        "external_id": sent.text("external_id"),
        "external_key": sent.form.get("external_key", ""),
        "name": sent.text("name"),
        "thing_id": sent.text("thing_id") or None,
        "channels": [c for c in sent.form.getlist("channels") if isinstance(c, str) and c],
        "content": sent.text("content"),
    }
    body: routes.ConfigCreate = checked(routes.ConfigCreate, values)
    config = await routes.create_config(body, platform_of(request), sent.caller.principal)
    return _notice(request, sent, "bootstrap.created", config.name)


@router.post(BASE + "/{thing_id}")
async def update(thing_id: str, request: Request, sent: SignedFormDep) -> Response:
    body: routes.ConfigUpdate = checked(
        routes.ConfigUpdate, {"name": sent.text("name"), "content": sent.text("content")}
    )
    config = await routes.update_config(thing_id, body, platform_of(request), sent.caller.principal)
    return _notice(request, sent, "bootstrap.saved", config.name)


@router.post(BASE + "/{thing_id}/state")
async def set_state(thing_id: str, request: Request, sent: SignedFormDep) -> Response:
    body: routes.StateBody = checked(routes.StateBody, {"state": sent.text("state")})
    config = await routes.set_state(thing_id, body, platform_of(request), sent.caller.principal)
    key = "bootstrap.activated" if config.state == State.ACTIVE else "bootstrap.deactivated"
    return _notice(request, sent, key, config.name)


@router.post(BASE + "/{thing_id}/delete")
async def delete(thing_id: str, request: Request, sent: SignedFormDep) -> Response:
    platform = platform_of(request)
    config = await routes.get_config(thing_id, platform, sent.caller.principal)
    await routes.delete_config(thing_id, platform, sent.caller.principal)
    return _notice(request, sent, "bootstrap.deleted", config.name)
