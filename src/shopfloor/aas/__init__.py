"""Asset Administration Shells (IDTA metamodel v3.1, basyx-python-sdk): the model store,
the AAS HTTP API (IDTA Part 2), the Manager per shell and the Core SDK, talking over
Kafka, NATS or in memory as docs/aas-protocol.md lays out.

    store = platform.get(AasService).store          # shopfloor.aas.capability
    page = await store.page(org_id, Kind.SUBMODEL, limit=50)
    await store.update(org_id, Kind.SUBMODEL, submodel_id, lambda sm: ...)

    core = Core(CoreConfig.from_env())              # a shell's Core (docs/aas-protocol.md)
    @core.operation("Controls.start")
    async def start(arguments: dict) -> dict: ...
    async with core: ...
"""

from ._errors import (
    AasConflict,
    AasError,
    AasNotFound,
    AasUnavailable,
    InvalidAasFile,
    InvalidAasMessage,
    InvalidAasRequest,
    InvalidTransportUrl,
)
from ._invoke import ExecutionState, Invocation, InvocationResult, Invoker, Unmanaged
from ._manager import Manager
from ._managers import ManagerInfo, Managers
from ._store import AasStore, Kind, Page, StoredFile, StoredObject, changed_subject, kind_of
from .core import Core, CoreConfig, ServiceFailed, SyncCore

__all__ = [
    "AasConflict",
    "AasError",
    "AasNotFound",
    "AasStore",
    "AasUnavailable",
    "Core",
    "CoreConfig",
    "ExecutionState",
    "InvalidAasFile",
    "InvalidAasMessage",
    "InvalidAasRequest",
    "InvalidTransportUrl",
    "Invocation",
    "InvocationResult",
    "Invoker",
    "Kind",
    "Manager",
    "ManagerInfo",
    "Managers",
    "Page",
    "ServiceFailed",
    "StoredFile",
    "StoredObject",
    "SyncCore",
    "Unmanaged",
    "changed_subject",
    "kind_of",
]
