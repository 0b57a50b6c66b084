"""Agents routes (`/api/v1/agents`): specs in, status and logs out.

Answers hold the spec as stored and what the reconciler saw; never credentials (those
reach the agent only, as files and environment). Changes are desired state: the answer
comes at once, the status follows (poll it, or follow `agents.<org>.<name>.state`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Response, status
from pydantic import BaseModel, Field

from shopfloor.api import PageOut, PagingDep, PlatformDep, PrincipalDep, event_stream
from shopfloor.auth import Action, Forbidden, Principal
from shopfloor.auth.relations.capability import RelationsService
from shopfloor.core import KEEPALIVE, sse_event

from ._agents import Agents, dns_name
from ._errors import InvalidAgentSpec
from ._logs import ships_logs
from ._runtime import LogLine, ObservedState
from ._spec import DesiredState, parse_spec
from ._states import ReportedState, StateFeedItem
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


class StateReport(BaseModel):
    """A state the agent published (`Agent.publish_state`)."""

    run: Annotated[str, Field(min_length=1, max_length=64, description="This start's id.")]
    sequence: Annotated[int, Field(ge=1, description="1, 2, ... within the run.")]
    state: dict[str, Any]
    published_at: datetime


class ReportedOut(BaseModel):
    agent: str
    run: str
    sequence: int
    state: dict[str, Any]
    published_at: datetime
    reported_at: datetime


class ReportOut(BaseModel):
    accepted: bool  # false: the platform holds a newer state of the agent
    reported: ReportedOut


class AgentStateOut(BaseModel):
    agent: str
    status: ObservedState
    reported: ReportedOut | None


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
        return event_stream(platform, _events(lines))
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
        data = {"time": line.time.isoformat(), "stream": line.stream, "text": line.text}
        yield sse_event("log", data)


# -- reported states -------------------------------------------------------------------


@router.put(f"{PREFIX}/{{name}}/state", response_model=ReportOut, tags=["agents"])
async def report_state(
    name: str, body: StateReport, platform: PlatformDep, principal: PrincipalDep
) -> ReportOut:
    """An agent reports the state it published: only the agent itself, signed in with its
    certificate (an agent assertion, docs/agents.md)."""
    org_id = principal.require_org()
    if principal.agent != name:
        raise Forbidden(
            f"only agent {name} reports its state, signed in as itself", code="not_this_agent"
        )
    reported, accepted = await _service(platform).states.report(
        org_id, name, run=body.run, sequence=body.sequence, state=body.state,
        published_at=body.published_at,
    )  # fmt: skip
    return ReportOut(accepted=accepted, reported=ReportedOut(**reported.to_json()))


@router.get(
    f"{PREFIX}/{{name}}/state",
    response_model=AgentStateOut,
    responses={200: {"content": {"text/event-stream": {}}}},
    tags=["agents"],
)
async def agent_state(
    name: str,
    platform: PlatformDep,
    principal: PrincipalDep,
    follow: Annotated[
        bool, Query(description="Then each change, as server-sent events (`status`, `state`).")
    ] = False,
) -> Any:
    """The agent's observed status and the last state it reported. An agent asking
    needs `reads` on `agent:<name>` in the relation graph (as over gRPC)."""
    org_id = principal.require_org()
    await _may_read_state(platform, principal, org_id, name)
    service = _service(platform)
    record = await service.agents.store.get(org_id, name)  # 404 before a stream starts
    if follow:
        return event_stream(platform, _state_events(service.states.follow(org_id, name)))
    held = await service.states.last(org_id, name)
    return AgentStateOut(
        agent=name, status=record.status.state,
        reported=None if held is None else ReportedOut(**held.to_json()),
    )  # fmt: skip


async def _may_read_state(
    platform: PlatformDep, principal: Principal, org_id: str, name: str
) -> None:
    caller = principal.agent
    if caller is None or caller == name:
        return
    result = await platform.get(RelationsService).relations.check(
        org_id, f"agent:{caller}", "reads", f"agent:{name}"
    )
    if not result.allowed:
        raise Forbidden(result.reason or f"agent:{caller} may not read agent:{name}",
                        code="relation_denied")  # fmt: skip


async def _state_events(items: AsyncIterator[StateFeedItem]) -> AsyncIterator[bytes]:
    """`status` and `state` events (JSON); a comment as keep-alive."""
    yield b": following\n\n"
    async for item in items:
        if item is None:
            yield KEEPALIVE
            continue
        kind, value = item
        yield sse_event(kind, value.to_json() if isinstance(value, ReportedState) else value)
