"""Agents routes (`/api/v1/agents`): specs in, status and logs out.

Answers hold the spec as stored and what the reconciler saw; never credentials (those
reach the agent only, as files and environment). Changes are desired state: the answer
comes at once, the status follows (poll it, or follow `agents.<org>.<name>.state`).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Response, status
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from shopfloor.api import PageOut, PagingDep, PlatformDep, PrincipalDep
from shopfloor.auth import Action

from ._agents import Agents, dns_name
from ._errors import InvalidAgentSpec
from ._logs import ships_logs
from ._runtime import LogLine, ObservedState
from ._spec import DesiredState, parse_spec
from ._store import AgentRecord
from .capability import AgentsService

__all__ = ["router"]

router = APIRouter()
PREFIX = "/api/v1/agents"


class StatusOut(BaseModel):
    desired_state: DesiredState
    state: ObservedState
    version: str
    restarts: int
    exit_code: int | None
    error: str
    endpoint: str
    started_at: datetime | None
    observed_at: datetime | None


class CertificateOut(BaseModel):
    serial: str | None
    expires_at: datetime | None
    dns_name: str
    uri: str


class RolloutOut(BaseModel):
    from_version: str
    to_version: str
    started_at: datetime
    deadline: datetime


class AgentOut(BaseModel):
    name: str
    org_id: str
    spec: dict[str, Any]
    status: StatusOut
    certificate: CertificateOut
    rollout: RolloutOut | None
    provisioned: list[str]
    deleting: bool
    generation: int
    created_at: datetime
    updated_at: datetime


class UpgradeBody(BaseModel):
    version: Annotated[str, Field(max_length=128)]
    image: str | None = None
    command: list[str] | None = None
    module: str | None = None
    config: dict[str, Any] | None = None


class LogLineOut(BaseModel):
    time: datetime
    stream: str
    text: str


class LogsOut(BaseModel):
    source: str  # "runtime" or "shipped"
    items: list[LogLineOut]


def agent_out(record: AgentRecord) -> AgentOut:
    state = record.status
    return AgentOut(
        name=record.name,
        org_id=record.org_id,
        spec=record.spec.model_dump(mode="json"),
        status=StatusOut(
            desired_state=record.spec.desired_state,
            state=state.state,
            version=state.version or record.spec.version,
            restarts=state.restarts,
            exit_code=state.exit_code,
            error=state.error,
            endpoint=state.endpoint,
            started_at=state.started_at,
            observed_at=state.observed_at,
        ),
        certificate=CertificateOut(
            serial=record.cert_serial,
            expires_at=record.cert_expires_at,
            dns_name=dns_name(record.org_id, record.name),
            uri=f"urn:shopfloor:agent:{record.key}",
        ),
        rollout=None if record.rollout is None else RolloutOut(**record.rollout.to_json()),
        provisioned=list(record.provisioned),
        deleting=record.deleting,
        generation=record.generation,
        created_at=record.created_at,
        updated_at=record.updated_at,
    )


def _service(platform: PlatformDep) -> AgentsService:
    return platform.get(AgentsService)


def _agents(platform: PlatformDep) -> Agents:
    return _service(platform).agents


SpecBody = Annotated[dict[str, Any], Body(description="An agent spec (docs/agents.md).")]


@router.post(
    f"{PREFIX}", response_model=AgentOut, status_code=status.HTTP_201_CREATED, tags=["agents"]
)
async def create_agent(body: SpecBody, platform: PlatformDep, principal: PrincipalDep) -> AgentOut:
    """Deploy an agent: provisioned, certified and started by the reconciler."""
    org_id = principal.require(Action.MANAGE_AGENTS)
    return agent_out(await _agents(platform).create(org_id, parse_spec(body)))


@router.get(f"{PREFIX}", response_model=PageOut[AgentOut], tags=["agents"])
async def list_agents(
    platform: PlatformDep,
    principal: PrincipalDep,
    paging: PagingDep,
    state: Annotated[ObservedState | None, Query(description="Observed state.")] = None,
    label: Annotated[
        str | None, Query(max_length=300, description="`key=value`: agents with that label.")
    ] = None,
) -> PageOut[Any]:
    wanted: tuple[str, str] | None = None
    if label is not None:
        key, sep, value = label.partition("=")
        if not sep or not key:
            raise InvalidAgentSpec("label: give key=value", code="invalid_label")
        wanted = (key, value)
    page = await _agents(platform).store.page(
        principal.require_org(), offset=paging.offset, limit=paging.limit, state=state,
        label=wanted,
    )  # fmt: skip
    items = [agent_out(record) for record in page.items]
    return PageOut(total=page.total, offset=page.offset, limit=page.limit, items=items)


@router.get(f"{PREFIX}/{{name}}", response_model=AgentOut, tags=["agents"])
async def get_agent(name: str, platform: PlatformDep, principal: PrincipalDep) -> AgentOut:
    return agent_out(await _agents(platform).store.get(principal.require_org(), name))


@router.patch(f"{PREFIX}/{{name}}", response_model=AgentOut, tags=["agents"])
async def change_agent(
    name: str, body: SpecBody, platform: PlatformDep, principal: PrincipalDep
) -> AgentOut:
    """Change part of the spec; a new version, image, command or module is an upgrade."""
    org_id = principal.require(Action.MANAGE_AGENTS)
    return agent_out(await _agents(platform).change(org_id, name, body))


@router.delete(
    f"{PREFIX}/{{name}}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={202: {"description": "Still being removed: the status says `deleting`."}},
    tags=["agents"],
)
async def delete_agent(name: str, platform: PlatformDep, principal: PrincipalDep) -> Response:
    """Stop the agent and remove its credentials and certificates: 204 once done, 202 if
    it takes longer than `SHOPFLOOR_AGENT_DELETE_WAIT_SECONDS`."""
    org_id = principal.require(Action.MANAGE_AGENTS)
    done = await _agents(platform).delete(org_id, name)
    return Response(status_code=status.HTTP_204_NO_CONTENT if done else status.HTTP_202_ACCEPTED)


@router.post(f"{PREFIX}/{{name}}/sleep", response_model=AgentOut, tags=["agents"])
async def sleep_agent(name: str, platform: PlatformDep, principal: PrincipalDep) -> AgentOut:
    """Stop the agent and keep it (desired state `stopped`; observed `sleeping`)."""
    org_id = principal.require(Action.OPERATE_AGENTS)
    return agent_out(await _agents(platform).set_desired(org_id, name, DesiredState.STOPPED))


@router.post(f"{PREFIX}/{{name}}/wake", response_model=AgentOut, tags=["agents"])
async def wake_agent(name: str, platform: PlatformDep, principal: PrincipalDep) -> AgentOut:
    org_id = principal.require(Action.OPERATE_AGENTS)
    return agent_out(await _agents(platform).set_desired(org_id, name, DesiredState.RUNNING))


@router.post(f"{PREFIX}/{{name}}/restart", response_model=AgentOut, tags=["agents"])
async def restart_agent(name: str, platform: PlatformDep, principal: PrincipalDep) -> AgentOut:
    org_id = principal.require(Action.OPERATE_AGENTS)
    return agent_out(await _agents(platform).restart(org_id, name))


@router.post(f"{PREFIX}/{{name}}/upgrade", response_model=AgentOut, tags=["agents"])
async def upgrade_agent(
    name: str, body: UpgradeBody, platform: PlatformDep, principal: PrincipalDep
) -> AgentOut:
    """Roll to a new version (and image, command, module or config): rolled back unless
    healthy within the agent's `health.grace_seconds`."""
    org_id = principal.require(Action.MANAGE_AGENTS)
    changes = body.model_dump(exclude_none=True)
    return agent_out(await _agents(platform).change(org_id, name, changes))


@router.get(f"{PREFIX}/{{name}}/logs", response_model=LogsOut, tags=["agents"])
async def agent_logs(
    name: str,
    platform: PlatformDep,
    principal: PrincipalDep,
    tail: Annotated[int, Query(ge=0, le=10_000)] = 100,
    since: Annotated[datetime | None, Query(description="Lines at or after (RFC 3339).")] = None,
    search: Annotated[str | None, Query(max_length=200, description="Lines holding it.")] = None,
    follow: Annotated[bool, Query(description="Then new lines, as server-sent events.")] = False,
) -> Any:
    """The agent's output, credentials redacted. Agents labelled
    `shopfloor.provision.logs=true` are read from the shipped copy; others from the
    runtime (`search` then filters the `tail` lines read)."""
    org_id = principal.require_org()
    service = _service(platform)
    record = await service.agents.store.get(org_id, name)
    lines: AsyncIterator[LogLine]
    if ships_logs(record):
        source = "shipped"
        lines = service.shipper.read(
            org_id, name, tail=tail, since=since, search=search, follow=follow
        )
    else:
        source = "runtime"
        lines = _matching(
            service.agents.logs(org_id, name, tail=tail, since=since, follow=follow), search
        )
    if follow:
        return StreamingResponse(
            _events(lines),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )
    items = [LogLineOut(time=line.time, stream=line.stream, text=line.text) async for line in lines]
    return LogsOut(source=source, items=items)


async def _matching(lines: AsyncIterator[LogLine], search: str | None) -> AsyncIterator[LogLine]:
    async for line in lines:
        if not search or search in line.text:
            yield line


async def _events(lines: AsyncIterator[LogLine]) -> AsyncIterator[bytes]:
    """Server-sent events: one `log` event per line (JSON), a comment as keep-alive."""
    yield b": following\n\n"
    async for line in lines:
        data = json.dumps({"time": line.time.isoformat(), "stream": line.stream, "text": line.text})
        yield f"event: log\ndata: {data}\n\n".encode()
