"""The Core SDK: write the asset's side of a shell in a few lines (docs/aas-protocol.md).

    core = Core(CoreConfig.from_env())        # or Core(topic=..., transport="kafka://...")

    @core.operation("Controls.start")         # an Operation of the shell's submodels
    async def start(arguments: dict) -> dict:
        return {"started": await machine.start(arguments["speed"])}

    async with core:                          # status handshake, replay, dedup: done
        await core.wait_running(within=60)
        speed = await core.get_value(submodel_id, "Controls.speed")

`SyncCore` is the same for threaded code (the guide's first style): handlers are plain
functions run in worker threads, `request_manager` blocks. The Core only asks the
Manager while the Manager is `running` (a request waits for that, up to its time), and
every request of the Manager is answered once, also across restarts of either side.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar

from basyx.aas import model
from basyx.aas.adapter import json as aas_json
from basyx.aas.adapter import xml as aas_xml

from ._endpoint import Endpoint, Reply
from ._errors import AasError, InvalidAasRequest
from ._manager import SUBMODEL_SERVICE
from .protocol import Request, ResponseStatus, Side, State
from .transports import Transport, create_transport

__all__ = [
    "AsyncOperation",
    "AsyncService",
    "Core",
    "CoreConfig",
    "ServiceFailed",
    "SyncCore",
]

T = TypeVar("T")
#: A service of the Core: the request in, its result out (an exception fails it).
AsyncService = Callable[[Request], Awaitable[Mapping[str, Any] | None]]
#: An Operation: its input (and inoutput) arguments by idShort in, output arguments out.
AsyncOperation = Callable[[dict[str, Any]], Awaitable[Mapping[str, Any] | None]]


class ServiceFailed(AasError):
    """The other side answered a request `Failed` (or `Timeout`); `error` says why."""

    code = "aas_service_failed"


@dataclass(frozen=True, slots=True, kw_only=True)
class CoreConfig:
    """Where a Core finds its shell: what the platform hands it (the `core` of
    `POST /api/v1/aas/managers`), as environment variables or a JSON file."""

    transport_url: str
    topic: str
    aas_id: str
    #: The shell's AAS definition (XML or JSON environment), when the deployment has one.
    aas_file: str | None = None

    VARIABLES = {
        "transport_url": "SHOPFLOOR_CORE_TRANSPORT_URL",
        "topic": "SHOPFLOOR_CORE_TOPIC",
        "aas_id": "SHOPFLOOR_CORE_AAS_ID",
        "aas_file": "SHOPFLOOR_CORE_AAS_FILE",
    }
    #: Names a JSON file with the same fields (a mounted ConfigMap, say).
    FILE_VARIABLE = "SHOPFLOOR_CORE_CONFIG"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> CoreConfig:
        """From `SHOPFLOOR_CORE_CONFIG`'s file, then `SHOPFLOOR_CORE_*` over it."""
        env = os.environ if environ is None else environ
        values: dict[str, str] = {}
        path = env.get(cls.FILE_VARIABLE)
        if path:
            try:
                loaded = json.loads(Path(path).read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise InvalidAasRequest(
                    f"cannot read the Core config {path}: {exc}", code="invalid_core_config"
                ) from exc
            if not isinstance(loaded, dict):
                raise InvalidAasRequest(
                    f"the Core config {path} is not a JSON object", code="invalid_core_config"
                )
            values.update({k: str(v) for k, v in loaded.items() if k in cls.VARIABLES})
        values.update({k: env[v] for k, v in cls.VARIABLES.items() if env.get(v)})
        missing = [
            cls.VARIABLES[k] for k in ("transport_url", "topic", "aas_id") if k not in values
        ]
        if missing:
            raise InvalidAasRequest(
                f"the Core needs {', '.join(missing)} (or {cls.FILE_VARIABLE})",
                code="invalid_core_config",
            )
        return cls(**values)

    def read_aas(self) -> list[model.Identifiable]:
        """The identifiables of `aas_file` (XML, or JSON by its `.json` suffix), read
        strictly: a definition the metamodel refuses is `InvalidAasRequest`."""
        if self.aas_file is None:
            raise InvalidAasRequest(
                "the Core was given no AAS file (SHOPFLOOR_CORE_AAS_FILE)",
                code="invalid_core_config",
            )
        path = Path(self.aas_file)
        read = (
            aas_json.read_aas_json_file
            if path.suffix.lower() == ".json"
            else aas_xml.read_aas_xml_file
        )
        try:
            return list(read(path, failsafe=False))
        # lxml's XMLSyntaxError is a SyntaxError; basyx raises the others.
        except (OSError, SyntaxError, ValueError, KeyError, TypeError) as exc:
            raise InvalidAasRequest(
                f"cannot read the AAS file {path}: {exc}", code="invalid_core_config"
            ) from exc

    def environment(self) -> dict[str, str]:
        """The variables `from_env` reads, for a container's environment."""
        fields = {
            "transport_url": self.transport_url,
            "topic": self.topic,
            "aas_id": self.aas_id,
            "aas_file": self.aas_file,
        }
        return {self.VARIABLES[k]: v for k, v in fields.items() if v is not None}


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


#: A service of a SyncCore, and an Operation: as the async ones, as plain functions.
SyncService = Callable[[Request], Mapping[str, Any] | None]
SyncOperation = Callable[[dict[str, Any]], Mapping[str, Any] | None]


class SyncCore:
    """A Core for threaded code: its protocol runs on an event loop in a thread of its
    own; handlers run in worker threads (several at once); calls block.

        with SyncCore(CoreConfig.from_env()) as core:
            core.wait_running(within=60)
            core.set_value(submodel_id, "Status.state", "ready")
    """

    def __init__(
        self,
        config: CoreConfig | None = None,
        *,
        topic: str | None = None,
        transport: str | None = None,
        grace: float = 10.0,
    ) -> None:
        self._core = Core(config, topic=topic, transport=transport, grace=grace)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stop: asyncio.Event | None = None
        self._started = threading.Event()
        self._failure: BaseException | None = None

    def service(self, service_id: str) -> Callable[[SyncService], SyncService]:
        def register(handler: SyncService) -> SyncService:
            async def run(request: Request) -> Mapping[str, Any] | None:
                return await asyncio.to_thread(handler, request)

            self._core.service(service_id)(run)
            return handler

        return register

    def operation(self, path: str) -> Callable[[SyncOperation], SyncOperation]:
        def register(handler: SyncOperation) -> SyncOperation:
            async def run(arguments: dict[str, Any]) -> Mapping[str, Any] | None:
                return await asyncio.to_thread(handler, arguments)

            self._core.operation(path)(run)
            return handler

        return register

    def start(self) -> None:
        """Start the Core's thread; return once it booted (or raise why it could not)."""
        if self._thread is not None:
            raise RuntimeError("a SyncCore starts once")
        self._thread = threading.Thread(
            target=asyncio.run,
            args=(self._main(),),
            name=f"aas-core-{self._core.topic}",
            daemon=True,
        )
        self._thread.start()
        self._started.wait()
        if self._failure is not None:
            self._thread.join()
            raise self._failure

    def stop(self) -> None:
        """Say `stopping`, let running handlers finish, say `idle`, end the thread."""
        if self._loop is not None and self._stop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
            self._thread.join()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def state(self) -> State:
        return self._core.state

    @property
    def manager_state(self) -> State | None:
        return self._core.manager_state

    def wait_running(self, *, within: float) -> None:
        self._call(self._core.wait_running(within=within))

    def request_manager(
        self,
        service_id: str,
        parameters: Mapping[str, Any] | None = None,
        *,
        service_type: str = SUBMODEL_SERVICE,
        within: float = 30.0,
        thread: str | None = None,
    ) -> dict[str, Any]:
        return self._call(
            self._core.request_manager(
                service_id, parameters, service_type=service_type, within=within, thread=thread
            )
        )

    def get_value(self, submodel_id: str, path: str, *, within: float = 30.0) -> Any:
        return self._call(self._core.get_value(submodel_id, path, within=within))

    def set_value(self, submodel_id: str, path: str, value: Any, *, within: float = 30.0) -> None:
        self._call(self._core.set_value(submodel_id, path, value, within=within))

    def _call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        if self._loop is None:
            coroutine.close()
            raise InvalidAasRequest("the SyncCore is not started (use `with core`)")
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        try:
            async with self._core:
                self._started.set()
                await self._stop.wait()
        except BaseException as exc:
            if self._started.is_set():
                raise
            self._failure = exc
        finally:
            self._started.set()
