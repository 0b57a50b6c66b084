"""What a running task sees: its run's values, a logger, and what the platform offers.

The engine runs the same inside `shopfloor serve` and in a process of its own at the
edge: it knows the platform only through the two small interfaces here, a `Publisher`
(messages onto a channel of the organisation) and a `Subscriber` (messages of one),
and an `httpx.AsyncClient`; where the aas service runs beside it, an
`OperationInvoker` too, and where the agents and pki services do, an `AgentCaller`.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import httpx

from ._errors import FlowRunError
from ._expressions import compile_expression, names_in

__all__ = [
    "AgentCaller",
    "Message",
    "OperationInvoker",
    "Publisher",
    "Step",
    "Subscriber",
    "TaskContext",
]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Message:
    """A message of a channel, as a message trigger hands it to a run."""

    channel_id: str
    subtopic: str
    publisher: str
    payload: Any
    content_type: str
    created_ns: int


class Publisher(Protocol):
    """Puts a flow's message on a channel of its organisation."""

    async def publish(
        self,
        org_id: str,
        flow_id: str,
        channel_id: str,
        subtopic: str,
        payload: bytes,
        content_type: str,
        *,
        thing_id: str | None = None,
    ) -> None: ...


class Subscriber(Protocol):
    """The messages of a channel of an organisation, from now on, until the exit."""

    def subscribe(
        self, org_id: str, channel_id: str, subtopic: str | None
    ) -> AbstractAsyncContextManager[AsyncIterator[Message]]: ...


class OperationInvoker(Protocol):
    """Runs an Operation of a submodel of the organisation (an AAS Core's), its Core
    given `within` seconds: its output variables by idShort, or `FlowRunError` with the
    reason and a code."""

    async def invoke(
        self,
        org_id: str,
        submodel_id: str,
        operation: str,
        arguments: dict[str, Any],
        *,
        within: float,
    ) -> dict[str, Any]: ...


class AgentCaller(Protocol):
    """Calls method `method` of agent `agent` of the organisation as the flow itself
    (`flow:<flow_id>`, over the agents' gRPC `Call`), at `address` ("host:port") or where
    the platform says the agent is, the agent given `within` seconds: the answer's JSON,
    or `FlowRunError` with the reason and a code (`flow_agent_unreachable`,
    `flow_agent_refused`, `flow_agent_call_failed`, `flow_call_timeout`)."""

    async def call(
        self,
        org_id: str,
        flow_id: str,
        agent: str,
        method: str,
        arguments: dict[str, Any],
        *,
        address: str | None,
        within: float,
    ) -> Any: ...


@dataclass(frozen=True, slots=True)
class Step:
    """What a task answers: its result (`results.<task id>` for the tasks after it),
    and, when it chooses, the tasks that come next instead of its `next`."""

    result: Any = None
    next: list[str] | None = None


@dataclass(slots=True)
class TaskContext:
    """One run of a flow, as its tasks see it (one context per run; tasks change
    `variables` in place)."""

    org_id: str
    flow_id: str
    run_id: str
    payload: Any
    trigger: dict[str, Any]
    variables: dict[str, Any]
    results: dict[str, Any] = field(default_factory=dict)
    logger: logging.Logger = field(default_factory=lambda: logging.getLogger("shopfloor.flows"))
    publisher: Publisher | None = None
    http: httpx.AsyncClient | None = None
    operations: OperationInvoker | None = None
    agents: AgentCaller | None = None
    #: Runs blocking work in the engine's bounded thread pool.
    blocking: Callable[[Callable[[], Any]], Awaitable[Any]] | None = None

    def bindings(self) -> dict[str, Any]:
        return {
            "payload": self.payload,
            "variables": self.variables,
            "trigger": self.trigger,
            "results": self.results,
        }

    def evaluate(self, source: str) -> Any:
        """The value of a CEL expression over `payload`, `variables`, `trigger` and
        `results`; `FlowRunError` (`flow_expression_failed`) when it cannot be had."""
        try:
            program = compile_expression(source)
            names = names_in(source)
            bindings = {name: value for name, value in self.bindings().items() if name in names}
            return program.execute(bindings)
        except Exception as exc:  # the library raises KeyError, TypeError, ValueError…
            raise FlowRunError(
                f"the expression {source!r} failed: {type(exc).__name__}: {exc}",
                code="flow_expression_failed",
            ) from exc

    async def run_blocking(self, function: Callable[[], T]) -> T:
        if self.blocking is None:
            return function()
        result: T = await self.blocking(function)
        return result
