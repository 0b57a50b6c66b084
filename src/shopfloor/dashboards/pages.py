"""The console's dashboard pages: the list (create, import a file, export, delete) and
a dashboard, whose panels ECharts draws from one data answer for the whole dashboard
(`/data`, one JSON line per panel, each drawn as it comes) and extends from one live
stream (`/live`, server-sent events).

The routes sign the caller in with the console's session and check the same actions as
the API (`manage_dashboards` to change), through the same store and document model, so
a refusal reads as the API's: a save over a stale version is `409
dashboard_version_conflict`, "changed by someone else: reload".
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from shopfloor.api import event_stream
from shopfloor.auth import Action
from shopfloor.auth.capability import IdentityService
from shopfloor.core import KEEPALIVE, Platform, sse_event
from shopfloor.messaging import Event
from shopfloor.messaging.capability import BusService
from shopfloor.storage.capability import TimeseriesService
from shopfloor.ui import (
    InvalidForm,
    SignedFormDep,
    SignedIn,
    SignedInDep,
    asset_response,
    console_page,
    render,
    signed_in,
)

from ._model import PANEL_TYPES, SCHEMA_VERSION, DashboardDocument, check_document
from ._store import Dashboard, DashboardStore, changed_subject
from ._view import live_batches, org_channels, panel_data, resolve, window
from .capability import BASE, STATIC, STATIC_URL, DashboardsService
from .routes import export_response, import_document

__all__ = ["router"]

router = APIRouter(include_in_schema=False)

#: Seconds between keep-alives of a live stream, and between looks at its session.
KEEPALIVE_SECONDS = 5.0
#: Largest dashboard file an import takes.
MAX_IMPORT_BYTES = 1024 * 1024
_STATIC_TYPES = {"dashboard.js": "text/javascript", "dashboard.css": "text/css"}


def _platform(request: Request) -> Platform:
    platform: Platform = request.app.state.platform
    return platform


def _store(request: Request) -> DashboardStore:
    return _platform(request).get(DashboardsService).store


def _chosen(request: Request) -> dict[str, str]:
    """Template variables as the page chose them: `var-<name>=value`."""
    return {
        key[4:]: value[:200] for key, value in request.query_params.items()
        if key.startswith("var-")
    }  # fmt: skip


@router.get(STATIC_URL + "/{name}")
async def static_file(name: str, request: Request) -> Response:
    if name not in _STATIC_TYPES:
        return Response(status_code=404)
    return asset_response(request, STATIC / name, _STATIC_TYPES[name])


@router.get(BASE)
async def dashboards_page(request: Request) -> Response:
    async def build(caller: SignedIn) -> Response:
        org_id = caller.principal.require_org()
        page = await _store(request).page(org_id, limit=100)
        context = {"dashboards": page.items, "total": page.total}
        return render(request, "dashboards/list.html", context, caller=caller)

    return await console_page(request, build)


def _opened(request: Request, dashboard: Dashboard) -> Response:
    url = f"{BASE}/{dashboard.id}"
    if request.headers.get("hx-request"):
        return Response(status_code=204, headers={"HX-Redirect": url})
    return Response(status_code=303, headers={"Location": url})


@router.post(BASE)
async def create_dashboard(request: Request, sent: SignedFormDep) -> Response:
    org_id = sent.caller.principal.require(Action.MANAGE_DASHBOARDS)
    document = check_document({"schemaVersion": SCHEMA_VERSION, "title": sent.text("title")})
    return _opened(request, await _store(request).create(org_id, document))


@router.post(BASE + "/import")
async def import_dashboard(request: Request, sent: SignedFormDep) -> Response:
    """A dashboard file (an export) as a new dashboard; the document's errors are the
    API's, naming the wrong field."""
    org_id = sent.caller.principal.require(Action.MANAGE_DASHBOARDS)
    upload = sent.form.get("file")
    if upload is None or isinstance(upload, str):
        problem = "choose a dashboard file (.json)"
        raise InvalidForm(problem, details=[{"field": "file", "problem": problem}])
    try:
        data = await upload.read(MAX_IMPORT_BYTES + 1)
    finally:
        await upload.close()  # its spooled file; the form itself is not closed for us
    try:
        if len(data) > MAX_IMPORT_BYTES:
            raise ValueError("larger than 1 MiB")
        raw = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        problem = f"not a dashboard file: {exc}"
        raise InvalidForm(problem, details=[{"field": "file", "problem": problem}]) from None
    return _opened(request, await _store(request).create(org_id, import_document(raw)))


@router.post(BASE + "/{dashboard_id}/delete")
async def delete_dashboard(dashboard_id: str, request: Request, sent: SignedFormDep) -> Response:
    org_id = sent.caller.principal.require(Action.MANAGE_DASHBOARDS)
    await _store(request).delete(org_id, dashboard_id)
    if request.headers.get("hx-request"):
        return Response(status_code=204, headers={"HX-Redirect": BASE})
    return Response(status_code=303, headers={"Location": BASE})


@router.get(BASE + "/{dashboard_id}/export")
async def export_dashboard(dashboard_id: str, caller: SignedInDep, request: Request) -> Response:
    dashboard = await _store(request).get(caller.principal.require_org(), dashboard_id)
    return export_response(dashboard.document)


@router.post(BASE + "/{dashboard_id}/save")
async def save_dashboard(dashboard_id: str, request: Request, sent: SignedFormDep) -> Response:
    """The page's document (`document`, JSON) over the `version` it was loaded at."""
    org_id = sent.caller.principal.require(Action.MANAGE_DASHBOARDS)
    try:
        raw = json.loads(sent.text("document"))
        version = int(sent.text("version"))
    except ValueError:
        problem = "the page sent no document and version: reload"
        raise InvalidForm(problem, details=[{"field": "document", "problem": problem}]) from None
    saved = await _store(request).put(org_id, dashboard_id, import_document(raw), version=version)
    return JSONResponse(saved.to_json())


@router.get(BASE + "/{dashboard_id}")
async def dashboard_page(dashboard_id: str, request: Request) -> Response:
    async def build(caller: SignedIn) -> Response:
        org_id = caller.principal.require_org()
        dashboard = await _store(request).get(org_id, dashboard_id)
        registry = _platform(request).get(IdentityService).registry
        things = await registry.list_things(org_id, limit=100)
        channels = await registry.list_channels(org_id, limit=100)
        setup = {
            "id": dashboard.id,
            "version": dashboard.version,
            "document": dashboard.document.to_json(),
            "things": [{"id": t.id, "name": t.name} for t in things.items],
            "channels": [{"id": c.id, "name": c.name} for c in channels.items],
            "panelTypes": PANEL_TYPES,
            "canEdit": caller.principal.can(Action.MANAGE_DASHBOARDS),
            "urls": {
                "data": f"{BASE}/{dashboard.id}/data", "live": f"{BASE}/{dashboard.id}/live",
                "save": f"{BASE}/{dashboard.id}/save",
            },
        }  # fmt: skip
        context = {"dashboard": dashboard, "setup": setup}
        return render(request, "dashboards/dashboard.html", context, caller=caller)

    return await console_page(request, build)


def _document_of(request: Request, stored: DashboardDocument) -> DashboardDocument:
    """The stored document, with the time range the page asks for (`from`, `to`)."""
    start, end = request.query_params.get("from"), request.query_params.get("to")
    if start is None and end is None:
        return stored
    raw = stored.to_json()

    def bound(text: str) -> str | float:
        try:
            return float(text)
        except ValueError:
            return text

    raw["time"] = {
        "from": bound(start) if start else raw["time"]["from"],
        "to": bound(end) if end else raw["time"]["to"],
    }
    return check_document(raw)


@router.get(BASE + "/{dashboard_id}/data")
async def dashboard_data(dashboard_id: str, caller: SignedInDep, request: Request) -> Response:
    """Every panel's stored points in the window (`from`, `to`: `now-1h` or seconds),
    for the variables chosen (`var-<name>`), in one answer of JSON lines
    (`application/x-ndjson`): `{"window": {"from", "to", "live"}}` first, then one line
    per panel in the document's order, `{"panel": id, "series": [{"name", "t": [ms, ...],
    "v": [...], "texts"?: [[ms, text], ...]}, ...], "unit"}` or `{"panel": id, "error"}`,
    each sent once read, so that the page draws the first panels while the server reads
    the next. A channel that is not the organisation's is an error of its panel, as
    unknown as a missing one."""
    org_id = caller.principal.require_org()
    dashboard = await _store(request).get(org_id, dashboard_id)
    return await _data(request, org_id, _document_of(request, dashboard.document))


@router.post(BASE + "/{dashboard_id}/data")
async def edited_dashboard_data(
    dashboard_id: str, request: Request, sent: SignedFormDep
) -> Response:
    """The same for the page's document while it is being edited (not saved yet)."""
    org_id = sent.caller.principal.require_org()
    await _store(request).get(org_id, dashboard_id)
    try:
        raw = json.loads(sent.text("document"))
    except ValueError:
        problem = "the page sent no document: reload"
        raise InvalidForm(problem, details=[{"field": "document", "problem": problem}]) from None
    return await _data(request, org_id, _document_of(request, import_document(raw)))


async def _data(request: Request, org_id: str, document: DashboardDocument) -> Response:
    platform = _platform(request)
    span = window(document.time, now=time.time())
    targets = resolve(document, _chosen(request))
    refused = await org_channels(
        platform.get(IdentityService).registry, org_id, (t.channel for t in targets)
    )
    store = platform.get(TimeseriesService).store
    head = {"window": {"from": span.from_ * 1000, "to": span.to * 1000, "live": span.live}}

    async def lines() -> AsyncIterator[bytes]:
        # orjson: ten panels of 10,000 points took the standard encoder 0.2 s, orjson 0.01 s.
        yield orjson.dumps(head) + b"\n"
        for target in targets:
            why = refused[target.channel]
            if why is not None:
                data: dict[str, Any] = {"error": {"code": "channel_not_found", "message": why}}
            else:
                data = await panel_data(store, target, span)
            yield orjson.dumps({"panel": target.panel.id, **data}) + b"\n"

    return StreamingResponse(lines(), media_type="application/x-ndjson")


@router.get(BASE + "/{dashboard_id}/live")
async def dashboard_live(dashboard_id: str, caller: SignedInDep, request: Request) -> Response:
    """The dashboard's live points as server-sent events: `points` (`{"panels": {id:
    [[ms, name, value, text], ...]}}`) at most one per the live batch interval; one bus
    subscription for all its panels, to the organisation's channels only; `changed`
    (`{"version"}`, null when deleted) when the dashboard was saved. It ends when the
    session does (signed out, expired, password changed) or the server stops."""
    org_id = caller.principal.require_org()
    platform = _platform(request)
    service = platform.get(DashboardsService)
    dashboard = await service.store.get(org_id, dashboard_id)
    refused = await org_channels(
        platform.get(IdentityService).registry, org_id,
        (t.channel for t in resolve(dashboard.document, _chosen(request))),
    )  # fmt: skip
    targets = [
        t for t in resolve(dashboard.document, _chosen(request)) if refused[t.channel] is None
    ]

    async def still_allowed() -> bool:
        return await signed_in(request) is not None

    # A save of this dashboard anywhere (`dashboards.<org>.changed`, from every process)
    # is told to the page with the next event or keep-alive: its editor then knows its
    # version is stale before it saves.
    saved: list[int | None] = []

    def on_change(event: Event) -> None:
        if event.data.get("dashboard_id") == dashboard_id:
            saved.append(event.data.get("version"))

    async def events() -> AsyncIterator[bytes]:
        bus = platform.get(BusService)
        with bus.events.listen(changed_subject(org_id), on_change):
            async for batch in live_batches(
                bus.bus, targets, batch_seconds=service.settings.live_batch_seconds,
                keepalive=KEEPALIVE_SECONDS, still_allowed=still_allowed,
            ):  # fmt: skip
                if saved:
                    yield sse_event("changed", {"version": saved[-1]})
                    saved.clear()
                yield KEEPALIVE if batch is None else sse_event("points", {"panels": batch})
        yield sse_event("ended", {"reason": "session"})

    return event_stream(platform, events())
