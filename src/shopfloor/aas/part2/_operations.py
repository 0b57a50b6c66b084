"""Operations (Part 2's InvokeOperation): `/invoke` answers when the Operation is done,
`/invoke-async` answers 202 at once with the Location of a handle whose
`/operation-status` and `/operation-results` tell how it went; `/invoke/$value` and
`/invoke-async/$value` take and give arguments in the value-only form.

The Operation runs where the service's `Invoker` says (the Managers; without a Core,
`Unmanaged` fails it, saying so). A failed run is still an answer: 200 with its
`executionState`. The handles of asynchronous runs live in this process (the app's
state), the newest `KEPT_HANDLES`, and are gone after a restart.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

from basyx.aas import model
from fastapi import APIRouter, BackgroundTasks, Body, Request, Response

from shopfloor.api import PlatformDep
from shopfloor.core import ShopfloorError

from .._errors import AasNotFound, InvalidAasRequest
from .._invoke import ExecutionState, Invocation, InvocationResult
from ..capability import AasService
from . import _values
from ._http import Json, Part2Route, json_response, to_json
from ._ids import decode_id, encode_id
from ._paths import format_path
from ._shells import shells_of
from ._submodels import ReadTarget, Target, WriteTarget

__all__ = ["KEPT_HANDLES", "parse_duration", "router"]

router = APIRouter(route_class=Part2Route, tags=["AAS operations (IDTA Part 2)"])
logger = logging.getLogger(__name__)

KEPT_HANDLES = 1000
DEFAULT_TIMEOUT = 30.0

_DURATION = re.compile(
    r"P(?:(?P<d>\d+(?:\.\d+)?)D)?(?:T(?:(?P<h>\d+(?:\.\d+)?)H)?(?:(?P<m>\d+(?:\.\d+)?)M)?"
    r"(?:(?P<s>\d+(?:\.\d+)?)S)?)?"
)


def parse_duration(text: str) -> float:
    """An xs:duration of days, hours, minutes and seconds (`PT30S`, `P1DT2H`) in
    seconds; months and years are no timeout anyone means."""
    match = _DURATION.fullmatch(text.strip())
    if match is None or text.strip() in ("P", "PT"):
        raise InvalidAasRequest(
            f"{text!r} is not an xs:duration such as PT30S", code="invalid_aas_duration"
        )
    parts = {key: float(value) for key, value in match.groupdict().items() if value}
    return (
        parts.get("d", 0) * 86400 + parts.get("h", 0) * 3600 + parts.get("m", 0) * 60
        + parts.get("s", 0)
    )  # fmt: skip


@dataclass
class _Handle:
    org_id: str
    submodel_id: str
    state: ExecutionState = ExecutionState.RUNNING
    result: Json | None = None


def _handles(request: Request) -> OrderedDict[str, _Handle]:
    held: OrderedDict[str, _Handle] | None = getattr(request.app.state, "aas_operations", None)
    if held is None:
        held = OrderedDict()
        request.app.state.aas_operations = held
    return held


def _message(text: str, message_type: str) -> Json:
    return {
        "code": "operation", "messageType": message_type, "text": text,
        "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds"),
    }  # fmt: skip


def _arguments(body: Json, key: str, *, value_only: bool) -> dict[str, Any]:
    """A request's arguments by idShort, as value-only values."""
    given = body.get(key, {} if value_only else [])
    if value_only:
        if not isinstance(given, dict):
            raise InvalidAasRequest(
                f"{key} is an object of values by idShort", code="invalid_aas_body"
            )
        return dict(given)
    if not isinstance(given, list):
        raise InvalidAasRequest(f"{key} is a list of OperationVariables", code="invalid_aas_body")
    found = {}
    for variable in given:
        element = variable.get("value") if isinstance(variable, dict) else None
        if not isinstance(element, dict) or "idShort" not in element:
            raise InvalidAasRequest(
                f'each of {key} is {{"value": <SubmodelElement>}}', code="invalid_aas_body"
            )
        found[element["idShort"]] = _values.value_of(element)
    return found


def _variables(declared: Any, values: dict[str, Any], *, value_only: bool) -> Any:
    """Result arguments shaped as Part 2 answers them: value-only by idShort, or as
    OperationVariables of the Operation's declared elements with the values set."""
    if value_only:
        return dict(values)
    shown = []
    for variable in declared:
        element = to_json(variable)
        name = element.get("idShort")
        if name in values:
            shown.append({"value": _values.with_value(element, values[name])})
    return shown


def _result_json(operation: model.Operation, result: InvocationResult, *, value_only: bool) -> Json:
    return {
        "executionState": result.execution_state.value,
        "success": result.success,
        "messages": [
            _message(text, "Info" if result.success else "Error") for text in result.messages
        ],
        "outputArguments": _variables(
            operation.output_variable, dict(result.output_arguments), value_only=value_only
        ),
        "inoutputArguments": _variables(
            operation.in_output_variable, dict(result.inoutput_arguments), value_only=value_only
        ),
    }


async def _prepare(
    target: Target, path: str, body: Any, *, value_only: bool
) -> tuple[model.Operation, Invocation]:
    slot = await target.element(path)
    if not isinstance(slot.element, model.Operation):
        raise InvalidAasRequest(
            f"{path!r} is a {type(slot.element).__name__}, not an Operation",
            code="aas_not_an_operation",
        )
    if not isinstance(body, dict):
        raise InvalidAasRequest("an OperationRequest is a JSON object", code="invalid_aas_body")
    timeout = body.get("clientTimeoutDuration")
    aas_id = target.aas_id
    if aas_id is None:
        # The Manager is the shell's: asked by the submodel alone, the (first) shell that
        # refers to it. The store keeps no index of references, so this reads the shells.
        shells = await shells_of(target.store, target.org_id, target.submodel_id)
        aas_id = shells[0] if shells else None
    invocation = Invocation(
        org_id=target.org_id,
        aas_id=aas_id,
        submodel_id=target.submodel_id,
        path=format_path(slot.path),
        input_arguments=_arguments(body, "inputArguments", value_only=value_only),
        inoutput_arguments=_arguments(body, "inoutputArguments", value_only=value_only),
        timeout=DEFAULT_TIMEOUT if timeout is None else parse_duration(str(timeout)),
    )
    return slot.element, invocation


async def _invoke(
    platform: PlatformDep, target: Target, path: str, body: Any, value_only: bool
) -> Response:
    operation, invocation = await _prepare(target, path, body, value_only=value_only)
    result = await platform.get(AasService).invoker.invoke(invocation)
    return json_response(_result_json(operation, result, value_only=value_only))


async def _invoke_async(
    request: Request, platform: PlatformDep, target: Target, path: str, body: Any,
    tasks: BackgroundTasks, value_only: bool,
) -> Response:  # fmt: skip
    operation, invocation = await _prepare(target, path, body, value_only=value_only)
    handles = _handles(request)
    handle_id = uuid.uuid4().hex
    handle = handles[handle_id] = _Handle(target.org_id, target.submodel_id)
    while len(handles) > KEPT_HANDLES:
        handles.popitem(last=False)

    async def run() -> None:
        try:
            result = await platform.get(AasService).invoker.invoke(invocation)
        except ShopfloorError as exc:
            # Nobody waits on this request any more: the failure goes into the handle
            # (a synchronous /invoke answers it as an error instead).
            logger.warning(
                "invoking %s of %s failed: %s", invocation.path, invocation.submodel_id, exc
            )
            result = InvocationResult(
                execution_state=ExecutionState.FAILED, success=False, messages=(exc.message,)
            )
        handle.result = _result_json(operation, result, value_only=value_only)
        handle.state = result.execution_state

    # Run after the 202 is sent, inside the request's own task: nothing outlives it.
    tasks.add_task(run)
    base = request.url.path.rsplit("/invoke-async", 1)[0]
    location = f"{base}/operation-status/{encode_id(handle_id)}"
    return Response(status_code=202, headers={"Location": location})


@router.post("/submodel-elements/{idShortPath}/invoke")
async def invoke_operation(
    idShortPath: str, target: WriteTarget, platform: PlatformDep,
    body: Annotated[Any, Body()],
) -> Response:  # fmt: skip
    return await _invoke(platform, target, idShortPath, body, False)


@router.post("/submodel-elements/{idShortPath}/invoke/$value")
async def invoke_operation_value_only(
    idShortPath: str, target: WriteTarget, platform: PlatformDep,
    body: Annotated[Any, Body()],
) -> Response:  # fmt: skip
    return await _invoke(platform, target, idShortPath, body, True)


@router.post("/submodel-elements/{idShortPath}/invoke-async", status_code=202)
async def invoke_operation_async(
    idShortPath: str, target: WriteTarget, platform: PlatformDep, request: Request,
    tasks: BackgroundTasks, body: Annotated[Any, Body()],
) -> Response:  # fmt: skip
    return await _invoke_async(request, platform, target, idShortPath, body, tasks, False)


@router.post("/submodel-elements/{idShortPath}/invoke-async/$value", status_code=202)
async def invoke_operation_async_value_only(
    idShortPath: str, target: WriteTarget, platform: PlatformDep, request: Request,
    tasks: BackgroundTasks, body: Annotated[Any, Body()],
) -> Response:  # fmt: skip
    return await _invoke_async(request, platform, target, idShortPath, body, tasks, True)


def _handle(request: Request, target: Target, handle_id: str) -> _Handle:
    handle = _handles(request).get(decode_id(handle_id))
    if handle is None or handle.org_id != target.org_id or handle.submodel_id != target.submodel_id:
        raise AasNotFound(f"no operation handle {handle_id!r}", code="aas_handle_not_found")
    return handle


@router.get("/submodel-elements/{idShortPath}/operation-status/{handleId}")
async def get_operation_status(
    idShortPath: str,
    handleId: str,
    target: ReadTarget,
    request: Request,
) -> Response:
    handle = _handle(request, target, handleId)
    done = handle.result is not None
    body: dict[str, Any] = {"executionState": handle.state.value, "messages": []}
    if done:
        # Part 2: a finished operation's status redirects to its result.
        base = request.url.path.rsplit("/operation-status/", 1)[0]
        return json_response(body, 302, {"Location": f"{base}/operation-results/{handleId}"})
    return json_response(body)


@router.get("/submodel-elements/{idShortPath}/operation-results/{handleId}")
async def get_operation_result(
    idShortPath: str,
    handleId: str,
    target: ReadTarget,
    request: Request,
) -> Response:
    handle = _handle(request, target, handleId)
    if handle.result is None:
        return json_response(
            {"executionState": handle.state.value, "success": False, "messages": []}
        )
    return json_response(handle.result)
