"""`Manager`: the platform's side of one shell's topic (docs/aas-protocol.md).

Its state machine is the endpoint's (`booting` → `booted` → `running` → `stopping` →
`idle`; `failed` when it could not start and waits to try again, set by `Managers`).
It forwards the Operations of the shell's submodels to the Core (`invoke`) and
answers the Core's requests for the shell's own data:

    GetSubmodelElementValue {"submodel_id", "path"}            → {"value": ...}
    SetSubmodelElementValue {"submodel_id", "path", "value"}   → {}

in the value-only form the HTTP API's `$value` uses (`part2/_values.py`, IDTA-01001
§11.4), for every kind of element that has one, only for submodels the shell
references.
"""

from __future__ import annotations

import logging
from contextlib import AsyncExitStack
from typing import Any

from basyx.aas import model

from ._endpoint import Endpoint, Reply
from ._errors import AasUnavailable, InvalidAasRequest
from ._invoke import ExecutionState, Invocation, InvocationResult
from ._store import AasStore, Kind
from .part2 import parse, resolve, value_of, with_value
from .part2._json import decode_object, to_json
from .protocol import Request, ResponseStatus, Side, State
from .transports import Transport

__all__ = ["ASSET_SERVICE", "SUBMODEL_SERVICE", "Manager"]

logger = logging.getLogger(__name__)

#: The service type of what the Manager asks the Core (Operations of the asset).
ASSET_SERVICE = "AssetRelatedService"
#: The service type of what a Core asks the Manager (the shell's data).
SUBMODEL_SERVICE = "SubmodelService"

_RESULT_STATES = {
    ResponseStatus.COMPLETED: ExecutionState.COMPLETED,
    ResponseStatus.FAILED: ExecutionState.FAILED,
    ResponseStatus.TIMEOUT: ExecutionState.TIMEOUT,
}


def shell_submodels(shell: model.Identifiable) -> set[str]:
    """The ids of the submodels a shell references."""
    if not isinstance(shell, model.AssetAdministrationShell):
        return set()
    return {ref.key[-1].value for ref in shell.submodel if ref.key}


class Manager(Endpoint):
    def __init__(
        self, store: AasStore, transport: Transport, *, org_id: str, aas_id: str, topic: str
    ) -> None:
        super().__init__(transport, topic, Side.MANAGER, self._serve)
        self.store = store
        self.org_id = org_id
        self.aas_id = aas_id

    async def _start(self, stack: AsyncExitStack) -> None:
        await self._shell()  # a shell deleted since: refuse to start
        await super()._start(stack)
        logger.info("AAS Manager of %s started on %s", self.aas_id, self.topic)

    async def serves(self, submodel_id: str) -> bool:
        return submodel_id in shell_submodels(await self._shell())

    # -- towards the Core ------------------------------------------------------------

    async def invoke(self, invocation: Invocation) -> InvocationResult:
        """Run an Operation on the Core: its answer, or why there is none."""
        parameters = {
            "submodel_id": invocation.submodel_id,
            "path": invocation.path,
            "input_arguments": dict(invocation.input_arguments),
            "inoutput_arguments": dict(invocation.inoutput_arguments),
        }
        try:
            response = await self.request(
                invocation.path, ASSET_SERVICE, parameters, within=invocation.timeout
            )
        except AasUnavailable as exc:
            state = (
                ExecutionState.TIMEOUT if exc.code == "aas_peer_timeout" else ExecutionState.FAILED
            )
            return InvocationResult(execution_state=state, success=False, messages=(str(exc),))
        result = response.result
        outputs = result.get("output_arguments", {})
        inoutputs = result.get("inoutput_arguments", {})
        return InvocationResult(
            execution_state=_RESULT_STATES[response.status],
            success=response.status is ResponseStatus.COMPLETED,
            messages=() if response.error is None else (response.error,),
            output_arguments=outputs if isinstance(outputs, dict) else {},
            inoutput_arguments=inoutputs if isinstance(inoutputs, dict) else {},
        )

    # -- answering the Core ----------------------------------------------------------

    async def _serve(self, request: Request) -> Reply:
        params = request.parameters
        submodel_id, path = params.get("submodel_id"), params.get("path")
        if not isinstance(submodel_id, str) or not isinstance(path, str):
            return Reply.failed(f"{request.service_id} needs a submodel_id and a path")
        if request.service_id == "GetSubmodelElementValue":
            return Reply(result={"value": await self._get_value(submodel_id, path)})
        if request.service_id == "SetSubmodelElementValue":
            if "value" not in params:
                return Reply.failed("SetSubmodelElementValue needs a value")
            await self._set_value(submodel_id, path, params["value"])
            return Reply()
        return Reply.failed(f"the Manager offers no service {request.service_id!r}")

    async def _get_value(self, submodel_id: str, path: str) -> Any:
        await self._check_submodel(submodel_id)
        segments = parse(path)
        stored = await self.store.get(self.org_id, Kind.SUBMODEL, submodel_id)
        assert isinstance(stored.obj, model.Submodel)
        return value_of(to_json(resolve(stored.obj, segments).element))

    async def _set_value(self, submodel_id: str, path: str, value: Any) -> None:
        await self._check_submodel(submodel_id)

        segments = parse(path)

        def change(obj: model.Identifiable) -> None:
            assert isinstance(obj, model.Submodel)
            slot = resolve(obj, segments)
            changed = with_value(to_json(slot.element), value)
            slot.replace(decode_object(changed, model.SubmodelElement, "value"))  # type: ignore[type-abstract]

        await self.store.update(self.org_id, Kind.SUBMODEL, submodel_id, change)

    async def _check_submodel(self, submodel_id: str) -> None:
        if not await self.serves(submodel_id):
            raise InvalidAasRequest(
                f"the shell {self.aas_id!r} has no submodel {submodel_id!r}",
                code="aas_not_my_submodel",
            )

    async def _shell(self) -> model.Identifiable:
        return (await self.store.get(self.org_id, Kind.SHELL, self.aas_id)).obj

    @property
    def running(self) -> bool:
        return self.state is State.RUNNING
