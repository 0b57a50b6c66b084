"""Task and trigger types, registered by name the way bus and store backends are.

    class LogTask(TaskType, type="log"):
        \"\"\"Writes a line to the platform's log.\"\"\"

        class Parameters(TaskParameters):
            message: Expression
            level: Literal["debug", "info", "warning", "error"] = "info"

A document names a type by its registered name (`"type": "log"`); its `parameters`
are read with the type's `Parameters` model, so an unknown or ill-typed parameter is a
problem of the document like any other. A type name taken twice is a `TypeError` at
import. A type's `run(parameters, context)` is what it does in a run
(`TaskContext`: the run's values and what the platform offers); it answers a `Step`
or raises `FlowRunError` with a stable code.
"""

from __future__ import annotations

import asyncio
import builtins
import json
import logging
import zoneinfo
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal

import httpx
from cronsim import CronSim, CronSimError
from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic_core import PydanticCustomError

from shopfloor.core import Backends, Pluggable

from ._context import Step
from ._errors import FlowRunError, UnknownFlowType
from ._expressions import Expression

if TYPE_CHECKING:
    from ._context import TaskContext

__all__ = [
    "TaskParameters",
    "TaskType",
    "TriggerParameters",
    "TriggerType",
]

#: What an identifier inside a flow looks like (task ids, variable names).
ID_PATTERN = r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$"
TaskId = Annotated[str, Field(pattern=ID_PATTERN)]
Seconds = Annotated[float, Field(gt=0, le=7 * 24 * 3600)]


class TaskParameters(BaseModel):
    """Base of every type's parameters: unknown names are refused, values are frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class TriggerParameters(TaskParameters):
    pass


# -- registries ------------------------------------------------------------------------


class TaskType(
    Pluggable,
    registry=Backends("flow task", keyword="type", error=UnknownFlowType),
):
    """A kind of step of a flow."""

    type: ClassVar[str]
    # (`builtins.type`: `type` is the class attribute holding the name, here)
    Parameters: ClassVar[builtins.type[TaskParameters]] = TaskParameters
    #: Names of parameters that hold ids of other tasks of the flow: each is checked to
    #: exist, and is an edge of the flow's graph (where cycles are refused).
    references: ClassVar[tuple[str, ...]] = ()

    async def run(self, parameters: Any, context: TaskContext) -> Step:
        """Do the task once (the engine retries it and bounds it in time)."""
        raise FlowRunError(
            f"tasks of type {self.type!r} cannot run here yet",
            code="flow_task_not_supported",
        )


class TriggerType(
    Pluggable,
    registry=Backends("flow trigger", keyword="type", error=UnknownFlowType),
):
    """A kind of event that starts a run of a flow."""

    type: ClassVar[str]
    Parameters: ClassVar[builtins.type[TriggerParameters]] = TriggerParameters


# -- triggers --------------------------------------------------------------------------


def _cron(expression: str) -> str:
    try:
        CronSim(expression, datetime.now(UTC))
    except CronSimError as exc:
        raise PydanticCustomError(
            "flow_invalid_cron", "not a cron expression: {reason}", {"reason": str(exc)}
        ) from None
    return expression


def _timezone(name: str) -> str:
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise PydanticCustomError(
            "flow_unknown_timezone", "no time zone '{name}' (an IANA name: Europe/Rome)",
            {"name": name},
        ) from None  # fmt: skip
    return name


class IntervalTrigger(TriggerType, type="interval"):
    """Every `seconds`, the first time `seconds` after the flow starts."""

    class Parameters(TriggerParameters):
        seconds: Annotated[float, Field(ge=0.01, le=7 * 24 * 3600)]


class CronTrigger(TriggerType, type="cron"):
    """At the times of a cron expression (minute hour day month weekday, as cron reads
    them) in a time zone, daylight saving time included."""

    class Parameters(TriggerParameters):
        expression: Annotated[str, Field(min_length=1, max_length=200), AfterValidator(_cron)]
        timezone: Annotated[str, Field(max_length=64), AfterValidator(_timezone)] = "UTC"


class MessageTrigger(TriggerType, type="message"):
    """A message on a channel (and subtopic), if `condition` holds for it; with
    `only_on_change`, only when `value` (the payload by default) differs from the last."""

    class Parameters(TriggerParameters):
        channel_id: Annotated[str, Field(min_length=1, max_length=64)]
        subtopic: Annotated[str, Field(min_length=1, max_length=255)] | None = None
        condition: Expression | None = None
        only_on_change: bool = False
        value: Expression | None = None


# -- tasks -----------------------------------------------------------------------------


class ConditionTask(TaskType, type="condition"):
    """Goes on with `next` when `expression` is true, else with `otherwise` (or ends)."""

    references = ("otherwise",)

    class Parameters(TaskParameters):
        expression: Expression
        otherwise: list[TaskId] = Field(default_factory=list, max_length=64)

    async def run(self, parameters: Parameters, context: TaskContext) -> Step:
        if context.evaluate(parameters.expression) is True:
            return Step(result=True)
        return Step(result=False, next=list(parameters.otherwise))


class TransformTask(TaskType, type="transform"):
    """Sets each variable of `set` to its expression's value (all read the values from
    before the task)."""

    class Parameters(TaskParameters):
        set: dict[TaskId, Expression] = Field(min_length=1, max_length=256)

    async def run(self, parameters: Parameters, context: TaskContext) -> Step:
        values = {name: context.evaluate(source) for name, source in parameters.set.items()}
        context.variables.update(values)
        return Step(result=values)


class SetVariableTask(TaskType, type="set_variable"):
    """Sets one variable to an expression's value."""

    class Parameters(TaskParameters):
        name: TaskId
        value: Expression

    async def run(self, parameters: Parameters, context: TaskContext) -> Step:
        value = context.evaluate(parameters.value)
        context.variables[parameters.name] = value
        return Step(result=value)


class DelayTask(TaskType, type="delay"):
    """Waits `seconds` before the next task."""

    class Parameters(TaskParameters):
        seconds: Seconds

    async def run(self, parameters: Parameters, context: TaskContext) -> Step:
        await asyncio.sleep(parameters.seconds)
        return Step()


class PublishTask(TaskType, type="publish"):
    """Publishes the value of `payload` to a channel: as the thing `thing_id` (which must
    be connected to it), else as the flow itself."""

    class Parameters(TaskParameters):
        channel_id: Annotated[str, Field(min_length=1, max_length=64)]
        subtopic: Annotated[str, Field(min_length=1, max_length=255)] | None = None
        payload: Expression
        content_type: Literal["application/json", "application/senml+json"] = "application/json"
        thing_id: Annotated[str, Field(min_length=1, max_length=64)] | None = None

    async def run(self, parameters: Parameters, context: TaskContext) -> Step:
        if context.publisher is None:
            raise FlowRunError("nothing to publish with here", code="flow_task_not_supported")
        value = context.evaluate(parameters.payload)
        # On the loop: a few µs for a message; a hop to the thread pool costs more.
        body = json.dumps(value).encode()
        await context.publisher.publish(
            context.org_id, context.flow_id, parameters.channel_id,
            parameters.subtopic or "", body, parameters.content_type,
            thing_id=parameters.thing_id,
        )  # fmt: skip
        return Step(result=value)


class HttpTask(TaskType, type="http"):
    """An HTTP request; its answer (status, headers, body) is the task's result."""

    class Parameters(TaskParameters):
        method: Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"] = "GET"
        url: Annotated[str, Field(pattern=r"^https?://[^\s]+$", max_length=2048)]
        headers: dict[str, str] = Field(default_factory=dict, max_length=64)
        body: Expression | None = None
        expected_status: list[Annotated[int, Field(ge=100, le=599)]] = Field(
            default_factory=lambda: [200, 201, 202, 204]
        )

    async def run(self, parameters: Parameters, context: TaskContext) -> Step:
        if context.http is None:
            raise FlowRunError("no HTTP client here", code="flow_task_not_supported")
        body = None if parameters.body is None else context.evaluate(parameters.body)
        try:
            answer = await context.http.request(
                parameters.method, parameters.url, headers=parameters.headers,
                json=body if body is not None else None,
            )  # fmt: skip
        except httpx.HTTPError as exc:
            raise FlowRunError(f"{parameters.url}: {exc}", code="flow_http_failed") from exc
        if answer.status_code not in parameters.expected_status:
            raise FlowRunError(
                f"{parameters.url} answered {answer.status_code}", code="flow_http_status"
            )
        try:
            content: Any = answer.json() if answer.content else None
        except ValueError:
            content = answer.text
        return Step(result={"status": answer.status_code, "body": content,
                            "headers": dict(answer.headers)})  # fmt: skip


class LogTask(TaskType, type="log"):
    """Writes the value of `message` to the platform's log."""

    class Parameters(TaskParameters):
        message: Expression
        level: Literal["debug", "info", "warning", "error"] = "info"

    async def run(self, parameters: Parameters, context: TaskContext) -> Step:
        message = context.evaluate(parameters.message)
        level = logging.getLevelNamesMapping()[parameters.level.upper()]
        context.logger.log(level, "flow %s: %s", context.flow_id, message)
        return Step(result=message)


class AasInvokeTask(TaskType, type="aas.invoke"):
    """Invokes an Operation of a shell's submodel (docs/aas.md), with its input
    variables from expressions; the output variables are the task's result."""

    class Parameters(TaskParameters):
        submodel_id: Annotated[str, Field(min_length=1, max_length=2048)]
        operation: Annotated[str, Field(min_length=1, max_length=1024)]
        arguments: dict[str, Expression] = Field(default_factory=dict, max_length=256)
        #: How long the Core has to answer (the Operation's client timeout).
        timeout_seconds: float = Field(default=30.0, gt=0, le=3600)

    async def run(self, parameters: Parameters, context: TaskContext) -> Step:
        if context.operations is None:
            raise FlowRunError(
                "no AAS service runs beside these flows", code="flow_task_not_supported"
            )
        arguments = {name: context.evaluate(source) for name, source in
                     parameters.arguments.items()}  # fmt: skip
        outputs = await context.operations.invoke(
            context.org_id, parameters.submodel_id, parameters.operation, arguments,
            within=parameters.timeout_seconds,
        )  # fmt: skip
        return Step(result=outputs)


#: `host:port`: a name or IPv4 address, or an IPv6 address in brackets.
ADDRESS_PATTERN = r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9][A-Za-z0-9.-]*):[0-9]{1,5}$"


class AgentCallTask(TaskType, type="agent.call"):
    """Calls method `method` of agent `agent` of the organisation over its gRPC `Call`
    (docs/sdk.md), as the flow itself (`flow:<flow_id>`: the agent's relation graph must
    let it), with arguments from expressions; the answer is the task's result."""

    class Parameters(TaskParameters):
        agent: Annotated[str, Field(min_length=1, max_length=64)]
        method: Annotated[str, Field(min_length=1, max_length=128)]
        arguments: dict[str, Expression] = Field(default_factory=dict, max_length=256)
        #: Where the agent listens; unset: where the agents service says it is.
        address: Annotated[str, Field(max_length=262, pattern=ADDRESS_PATTERN)] | None = None
        #: How long the agent has to answer (the call's gRPC deadline).
        timeout_seconds: float = Field(default=10.0, gt=0, le=3600)

    async def run(self, parameters: Parameters, context: TaskContext) -> Step:
        if context.agents is None:
            raise FlowRunError(
                "no agents and pki services run beside these flows",
                code="flow_task_not_supported",
            )
        arguments = {name: context.evaluate(source) for name, source in
                     parameters.arguments.items()}  # fmt: skip
        answer = await context.agents.call(
            context.org_id, context.flow_id, parameters.agent, parameters.method, arguments,
            address=parameters.address, within=parameters.timeout_seconds,
        )  # fmt: skip
        return Step(result=answer)
