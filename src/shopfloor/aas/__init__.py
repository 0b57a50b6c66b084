"""Asset Administration Shells (IDTA metamodel v3.1, basyx-python-sdk): the model store,
the AAS HTTP API (IDTA Part 2), the Manager per shell and the Core SDK, talking over
Kafka, NATS or in memory as docs/aas-protocol.md lays out.

    store = platform.get(AasService).store          # shopfloor.aas.capability
    page = await store.page(org_id, Kind.SUBMODEL, limit=50)
    await store.update(org_id, Kind.SUBMODEL, submodel_id, lambda sm: ...)
"""

from ._errors import (
    AasConflict,
    AasError,
    AasNotFound,
    AasUnavailable,
    InvalidAasFile,
    InvalidAasRequest,
)
from ._invoke import ExecutionState, Invocation, InvocationResult, Invoker, Unmanaged
from ._store import AasStore, Kind, Page, StoredFile, StoredObject, changed_subject, kind_of

__all__ = [
    "AasConflict",
    "AasError",
    "AasNotFound",
    "AasStore",
    "AasUnavailable",
    "ExecutionState",
    "InvalidAasFile",
    "InvalidAasRequest",
    "Invocation",
    "InvocationResult",
    "Invoker",
    "Kind",
    "Page",
    "StoredFile",
    "StoredObject",
    "Unmanaged",
    "changed_subject",
    "kind_of",
]
