"""The configuration server: flow documents of the caller's organisation, at
`/api/v1/flows` and at `/flows` (the paths the Sensoworks configuration server has).

Reading needs any member; creating, changing, deleting and restoring need
`manage_flows` (engineer, admin); commands (start, stop, pause, resume) and replays
need `operate_flows` (operator, engineer, admin). A document comes as JSON or YAML and is checked
whole before anything is stored: a refusal lists every problem (`error.details`, each
with `path`, `code` and `message`). `GET /flows/schema` is the document's JSON Schema.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Query, Request, Response, status
from pydantic import BaseModel, Field

from shopfloor.api import PlatformDep, PrincipalDep, read_bounded
from shopfloor.auth import Action
from shopfloor.core import ErrorKind, http_status

from ._document import FlowDocument, decode_flow, flow_schema, read_flow
from ._errors import FlowError, InvalidFlow, Problem
from ._manager import COMMANDS, FlowManager
from .capability import FlowsService

__all__ = ["router", "seed_router"]

T = TypeVar("T")

_MEDIA = ("application/json", "application/yaml", "application/x-yaml", "text/yaml")
_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            media: {"schema": {"$ref": "#/components/schemas/FlowDocument"}} for media in _MEDIA
        },
    }
}


class FlowsOut(BaseModel):
    total: int
    flows: list[FlowDocument]


class RevisionOut(BaseModel):
    rev: int
    name: str
    saved_at: datetime


class HistoryOut(BaseModel):
    flow_id: str
    revisions: list[RevisionOut]


_routes = APIRouter()


def _service(platform: PlatformDep) -> FlowsService:
    return platform.get(FlowsService)


async def _call(function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """A ConfigManager call, off the event loop: it syncs files, and its lock may be
    held by a write syncing them."""
    return await asyncio.to_thread(function, *args, **kwargs)


@_routes.get("", response_model=FlowsOut)
async def list_flows(platform: PlatformDep, principal: PrincipalDep) -> FlowsOut:
    """Every flow of the organisation, by id."""
    org_id = principal.require_org()
    flows = await _call(_service(platform).configs.flows, org_id)
    return FlowsOut(total=len(flows), flows=flows)


@_routes.get("/schema")
async def get_schema() -> dict[str, Any]:
    """The JSON Schema (2020-12) of a flow document, each registered type's parameters
    included (`$defs` `task.<type>`, `trigger.<type>`). Public: it holds nothing of an
    organisation."""
    return flow_schema()


class CommandIn(BaseModel):
    command: str
    flow_ids: list[str] = Field(min_length=1, max_length=10_000)


class CommandResult(BaseModel):
    flow_id: str
    ok: bool
    state: str | None = None
    error: dict[str, Any] | None = None
    #: A failure's HTTP status, as the flow's own call would have answered it.
    status: int | None = None


class CommandsOut(BaseModel):
    command: str
    results: list[CommandResult]


class FlowStatusOut(BaseModel):
    flow_id: str
    state: str
    current_task: str | None
    run_in_progress: str | None
    counters: dict[str, int]
    last_error: dict[str, str] | None
    started: str | None
    updated: str


class StatusesOut(BaseModel):
    total: int
    flows: list[FlowStatusOut]


def _manager(platform: PlatformDep) -> FlowManager:
    manager = _service(platform).manager
    if manager is None:
        raise FlowError("the flows are not running yet", code="flow_store_error")
    return manager


def _status(data: dict[str, Any]) -> FlowStatusOut:
    return FlowStatusOut.model_validate(data)


@_routes.patch("/commands", response_model=CommandsOut)
async def command_flows(
    body: CommandIn, response: Response, platform: PlatformDep, principal: PrincipalDep
) -> CommandsOut:
    """Apply one command to each flow named, all at once (a flow named twice takes them
    one after the other), with a result per flow in the order named. The call is 200
    unless every flow failed, then the first failure's status."""
    org_id = principal.require(Action.OPERATE_FLOWS)
    if body.command not in COMMANDS:
        raise FlowError(
            f"no command {body.command!r}; one of {', '.join(COMMANDS)}",
            code="flow_unknown_command", kind=ErrorKind.INVALID,
        )  # fmt: skip
    manager = _manager(platform)

    async def apply(flow_id: str) -> CommandResult:
        try:
            state = await manager.command(org_id, flow_id, body.command)
        except FlowError as exc:
            error = {"code": exc.code, "message": str(exc)}
            failed = http_status(exc.kind)
            return CommandResult(flow_id=flow_id, ok=False, error=error, status=failed)
        return CommandResult(flow_id=flow_id, ok=True, state=state.state)

    # Stops drain at the same time: one call stops a thousand flows in one drain timeout.
    results = await asyncio.gather(*(apply(flow_id) for flow_id in body.flow_ids))
    if not any(result.ok for result in results):
        response.status_code = results[0].status or status.HTTP_400_BAD_REQUEST
    return CommandsOut(command=body.command, results=list(results))


@_routes.get("/status", response_model=StatusesOut)
async def flows_status(platform: PlatformDep, principal: PrincipalDep) -> StatusesOut:
    """The state of every flow of the organisation (a flow never started is `stopped`)."""
    org_id = principal.require_org()
    manager = _manager(platform)
    flows = await _call(_service(platform).configs.flows, org_id)
    answers = [_status(manager.status(org_id, doc.id).public()) for doc in flows]
    return StatusesOut(total=len(answers), flows=answers)


@_routes.get("/{flow_id}", response_model=FlowDocument)
async def get_flow(flow_id: str, platform: PlatformDep, principal: PrincipalDep) -> FlowDocument:
    org_id = principal.require_org()
    return await _call(_service(platform).configs.get, org_id, flow_id)


@_routes.post(
    "", response_model=FlowDocument, status_code=status.HTTP_201_CREATED, openapi_extra=_BODY
)
async def create_flow(
    request: Request, response: Response, platform: PlatformDep, principal: PrincipalDep
) -> FlowDocument:
    """Store a new flow as revision 1 (a `rev` in the body is ignored)."""
    org_id = principal.require(Action.MANAGE_FLOWS)
    service = _service(platform)
    data = await _document(request, service.settings.max_document_bytes)
    stored = await _call(service.configs.create, org_id, read_flow(data))
    response.headers["Location"] = f"{request.url.path.rstrip('/')}/{stored.id}"
    return stored


@_routes.put("/{flow_id}", response_model=FlowDocument, openapi_extra=_BODY)
async def replace_flow(
    flow_id: str, request: Request, platform: PlatformDep, principal: PrincipalDep
) -> FlowDocument:
    """Replace a flow; the body's `rev` is the revision the change was made from (a
    stale one is `409 flow_rev_conflict`). The answer has the new `rev`."""
    org_id = principal.require(Action.MANAGE_FLOWS)
    service = _service(platform)
    data = await _document(request, service.settings.max_document_bytes)
    if isinstance(data, dict):
        data.setdefault("id", flow_id)
        problems = []
        if data["id"] != flow_id:
            problems.append(Problem("id", "flow_id_mismatch", f"the path names {flow_id!r}"))
        if data.get("rev") is None:
            problems.append(Problem("rev", "flow_rev_required", "name the revision changed"))
        if problems:
            raise InvalidFlow("the document does not fit the request", problems=problems)
    doc = read_flow(data)
    assert doc.rev is not None
    return await _call(service.configs.update, org_id, doc, rev=doc.rev)


@_routes.delete("/{flow_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_flow(
    flow_id: str,
    platform: PlatformDep,
    principal: PrincipalDep,
    rev: Annotated[
        int | None, Query(description="Delete only if this is the revision in effect.")
    ] = None,
) -> Response:
    """Remove a flow; its history stays, so it can be restored."""
    org_id = principal.require(Action.MANAGE_FLOWS)
    await _call(_service(platform).configs.delete, org_id, flow_id, rev=rev)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@_routes.get("/{flow_id}/history", response_model=HistoryOut)
async def flow_history(flow_id: str, platform: PlatformDep, principal: PrincipalDep) -> HistoryOut:
    """The stored revisions, newest first (also of a deleted flow)."""
    org_id = principal.require_org()
    revisions = await _call(_service(platform).configs.history, org_id, flow_id)
    return HistoryOut(
        flow_id=flow_id,
        revisions=[RevisionOut(rev=r.rev, name=r.name, saved_at=r.saved_at) for r in revisions],
    )


@_routes.get("/{flow_id}/history/{rev}", response_model=FlowDocument)
async def flow_revision(
    flow_id: str, rev: int, platform: PlatformDep, principal: PrincipalDep
) -> FlowDocument:
    org_id = principal.require_org()
    return await _call(_service(platform).configs.revision, org_id, flow_id, rev)


@_routes.post("/{flow_id}/history/{rev}/restore", response_model=FlowDocument)
async def restore_flow(
    flow_id: str,
    rev: int,
    platform: PlatformDep,
    principal: PrincipalDep,
    current: Annotated[
        int | None, Query(description="Restore only if this is the revision in effect.")
    ] = None,
) -> FlowDocument:
    """Store revision `rev` again as the next revision (a deleted flow comes back)."""
    org_id = principal.require(Action.MANAGE_FLOWS)
    configs = _service(platform).configs
    return await _call(configs.restore, org_id, flow_id, rev, expected=current)


@_routes.get("/{flow_id}/status", response_model=FlowStatusOut)
async def flow_status(
    flow_id: str, platform: PlatformDep, principal: PrincipalDep
) -> FlowStatusOut:
    """State, the task a run in progress reached, counters, last error, times."""
    org_id = principal.require_org()
    await _call(_service(platform).configs.get, org_id, flow_id)
    return _status(_manager(platform).status(org_id, flow_id).public())


@_routes.get("/{flow_id}/runs")
async def flow_runs(flow_id: str, platform: PlatformDep, principal: PrincipalDep) -> dict[str, Any]:
    """The recent runs, newest first, each task's outcome in order (since the platform
    started; at most `SHOPFLOOR_FLOWS_RUNS_KEPT`)."""
    org_id = principal.require_org()
    await _call(_service(platform).configs.get, org_id, flow_id)
    runs = [run.as_dict() for run in _manager(platform).runs(org_id, flow_id)]
    return {"flow_id": flow_id, "total": len(runs), "runs": runs}


@_routes.get("/{flow_id}/dead-letters")
async def flow_dead_letters(
    flow_id: str, platform: PlatformDep, principal: PrincipalDep
) -> dict[str, Any]:
    """Runs that failed, oldest first: their error, payload and trigger."""
    org_id = principal.require_org()
    await _call(_service(platform).configs.get, org_id, flow_id)
    letters = _manager(platform).dead_letters(org_id, flow_id)
    return {"flow_id": flow_id, "total": len(letters), "dead_letters": letters}


@_routes.post("/{flow_id}/dead-letters/{letter_id}/replay", status_code=status.HTTP_202_ACCEPTED)
async def replay_dead_letter(
    flow_id: str, letter_id: str, platform: PlatformDep, principal: PrincipalDep
) -> dict[str, Any]:
    """Queue a dead letter's event again (the flow running or paused); it leaves the list."""
    org_id = principal.require(Action.OPERATE_FLOWS)
    await _call(_service(platform).configs.get, org_id, flow_id)
    letter = await _manager(platform).replay(org_id, flow_id, letter_id)
    return {"flow_id": flow_id, "replayed": letter["id"]}


async def _document(request: Request, limit: int) -> object:
    """The body, decoded as JSON or YAML by its content type; refused over `limit`."""
    media = (request.headers.get("content-type") or "application/json").split(";")[0]
    media = media.strip().lower()
    if media not in _MEDIA:
        raise FlowError(
            f"send a flow as {', '.join(_MEDIA)}, not {media}",
            code="flow_unsupported_media_type", kind=ErrorKind.UNSUPPORTED,
        )  # fmt: skip
    body = await read_bounded(
        request, limit,
        lambda: FlowError(
            f"a flow document is at most {limit} bytes",
            code="flow_too_large", kind=ErrorKind.TOO_LARGE,
        ),
    )  # fmt: skip
    return decode_flow(body, media)


router = APIRouter(tags=["flows"])
router.include_router(_routes, prefix="/api/v1/flows")
#: The same routes where the Sensoworks configuration server has them.
seed_router = APIRouter(tags=["flows"])
seed_router.include_router(_routes, prefix="/flows")
