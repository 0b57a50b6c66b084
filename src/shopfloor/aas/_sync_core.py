"""`SyncCore`: the Core SDK for threaded code (see `shopfloor.aas.core`)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine, Mapping
from typing import Any, Self, TypeVar

from ._core import Core
from ._core_config import CoreConfig
from ._errors import InvalidAasRequest
from ._manager import SUBMODEL_SERVICE
from .protocol import Request, State

__all__ = ["SyncCore", "SyncOperation", "SyncService"]

T = TypeVar("T")

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
