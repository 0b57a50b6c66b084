"""`Core`: the asyncio Core SDK (see `shopfloor.aas.core`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from types import TracebackType
from typing import Any, Self

from ._core_config import CoreConfig
from ._endpoint import Endpoint, Reply
from ._errors import InvalidAasRequest, ServiceFailed
from ._manager import SUBMODEL_SERVICE
from .protocol import Request, ResponseStatus, Side, State
from .transports import Transport, create_transport

__all__ = ["AsyncOperation", "AsyncService", "Core"]

#: A service of the Core: the request in, its result out (an exception fails it).
AsyncService = Callable[[Request], Awaitable[Mapping[str, Any] | None]]
#: An Operation: its input (and inoutput) arguments by idShort in, output arguments out.
AsyncOperation = Callable[[dict[str, Any]], Awaitable[Mapping[str, Any] | None]]


class Core:
    def __init__(
        self,
        config: CoreConfig | None = None,
        *,
        topic: str | None = None,
        transport: Transport | str | None = None,
        grace: float = 10.0,
    ) -> None:
        chosen_topic = topic or (config.topic if config else None)
        chosen_transport = transport or (config.transport_url if config else None)
        if chosen_topic is None or chosen_transport is None:
            raise InvalidAasRequest(
                "a Core needs a topic and a transport (or a CoreConfig)", code="invalid_core_config"
            )
        self.config = config
        self.topic = chosen_topic
        self._owns_transport = isinstance(chosen_transport, str)
        self.transport = (
            create_transport(chosen_transport)
            if isinstance(chosen_transport, str)
            else chosen_transport
        )
        self._grace = grace
        self._services: dict[str, AsyncService] = {}
        self._endpoint: Endpoint | None = None

    # -- what it offers --------------------------------------------------------------

    def service(self, service_id: str) -> Callable[[AsyncService], AsyncService]:
        """Register the handler of a service the Manager may request."""

        def register(handler: AsyncService) -> AsyncService:
            if service_id in self._services:
                raise ValueError(f"the service {service_id!r} has a handler already")
            self._services[service_id] = handler
            return handler

        return register

    def operation(self, path: str) -> Callable[[AsyncOperation], AsyncOperation]:
        """Register the handler of an Operation (by its idShortPath in the submodel):
        it gets the input and inoutput arguments, returns the output arguments; a
        returned name that is an inoutput argument goes back as that."""

        def register(handler: AsyncOperation) -> AsyncOperation:
            async def run(request: Request) -> Mapping[str, Any]:
                inputs = _arguments(request.parameters.get("input_arguments"))
                inoutputs = _arguments(request.parameters.get("inoutput_arguments"))
                returned = dict(await handler({**inoutputs, **inputs}) or {})
                changed = {k: returned.pop(k) for k in list(returned) if k in inoutputs}
                return {
                    "output_arguments": returned,
                    "inoutput_arguments": {**inoutputs, **changed},
                }

            self.service(path)(run)
            return handler

        return register

    # -- lifecycle -------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        if self._owns_transport:
            await self.transport.open()
        self._endpoint = Endpoint(
            self.transport, self.topic, Side.CORE, self._dispatch, grace=self._grace
        )
        try:
            await self._endpoint.__aenter__()
        except BaseException:
            if self._owns_transport:
                await self.transport.close()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if self._endpoint is not None:
                await self._endpoint.aclose()
        finally:
            if self._owns_transport:
                await self.transport.close()

    @property
    def state(self) -> State:
        return self._open().state

    @property
    def manager_state(self) -> State | None:
        return self._open().peer_state

    async def wait_running(self, *, within: float) -> None:
        """Until the Core and the Manager both run (`AasUnavailable` after `within` s)."""
        await self._open().wait_running(within)

    # -- asking the Manager ----------------------------------------------------------

    async def request_manager(
        self,
        service_id: str,
        parameters: Mapping[str, Any] | None = None,
        *,
        service_type: str = SUBMODEL_SERVICE,
        within: float = 30.0,
        thread: str | None = None,
    ) -> dict[str, Any]:
        """The result of a Manager service; `ServiceFailed` when it failed, and
        `AasUnavailable` when the Manager does not run or answer within `within` s."""
        response = await self._open().request(
            service_id, service_type, parameters or {}, within=within, thread=thread
        )
        if response.status is not ResponseStatus.COMPLETED:
            raise ServiceFailed(f"{service_id}: {response.error or response.status.value}")
        return dict(response.result)

    async def get_value(self, submodel_id: str, path: str, *, within: float = 30.0) -> Any:
        result = await self.request_manager(
            "GetSubmodelElementValue", {"submodel_id": submodel_id, "path": path}, within=within
        )
        return result.get("value")

    async def set_value(
        self, submodel_id: str, path: str, value: Any, *, within: float = 30.0
    ) -> None:
        await self.request_manager(
            "SetSubmodelElementValue",
            {"submodel_id": submodel_id, "path": path, "value": value},
            within=within,
        )

    # -- inside ----------------------------------------------------------------------

    def _open(self) -> Endpoint:
        if self._endpoint is None:
            raise InvalidAasRequest("the Core is not started (use `async with core`)")
        return self._endpoint

    async def _dispatch(self, request: Request) -> Reply:
        handler = self._services.get(request.service_id)
        if handler is None:
            return Reply.failed(f"the Core offers no service {request.service_id!r}")
        return Reply(result=dict(await handler(request) or {}))


def _arguments(value: Any) -> dict[str, Any]:
    return dict(value) if isinstance(value, Mapping) else {}
