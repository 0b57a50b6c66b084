"""AAS failures (a subtree of `shopfloor.core`'s error tree).

AasError                        every failure of the AAS capability
├── InvalidAasFile              a file or body the metamodel refuses: `reasons` lists every
│                               one the reader gave (invalid; unsupported for a format
│                               that is not one)
├── InvalidAasRequest           a bad identifier, idShortPath, value or query (invalid)
├── AasNotFound                 no such shell, submodel, element, file or operation
│                               (in this organisation) (not_found)
├── AasConflict                 an identifier taken, or a change racing another (conflict)
├── AasUnavailable              the transport to a Core is down, or a Core does not answer
│                               in time (unavailable, retry); `aas_peer_not_running` when
│                               the other side has not reached `running` in time
├── InvalidAasMessage           a record of a shell's topic that is not a message of the
│                               protocol (invalid; logged and skipped by the reader)
├── InvalidTransportUrl         a transport URL no backend takes, or with bad options
│                               (invalid)
└── ServiceFailed               the other side of a shell's topic answered a request
                                `Failed` or `Timeout`, with its reason (conflict)
"""

from __future__ import annotations

from collections.abc import Sequence

from shopfloor.core import ErrorKind, ShopfloorError

__all__ = [
    "AasConflict",
    "AasError",
    "AasNotFound",
    "AasUnavailable",
    "InvalidAasFile",
    "InvalidAasMessage",
    "InvalidAasRequest",
    "InvalidTransportUrl",
    "ServiceFailed",
]


class AasError(ShopfloorError):
    code = "aas_error"
    kind = ErrorKind.UNAVAILABLE


class InvalidAasFile(AasError):
    code = "invalid_aas_file"
    kind = ErrorKind.INVALID

    def __init__(
        self, message: str, *, reasons: Sequence[str] = (), code: str | None = None,
        kind: ErrorKind | None = None,
    ) -> None:  # fmt: skip
        super().__init__(message, code=code, kind=kind)
        #: Every defect the reader reported, in order.
        self.reasons = tuple(reasons)


class InvalidAasRequest(AasError):
    code = "invalid_aas_request"
    kind = ErrorKind.INVALID


class AasNotFound(AasError):
    code = "aas_not_found"
    kind = ErrorKind.NOT_FOUND


class AasConflict(AasError):
    code = "aas_conflict"
    kind = ErrorKind.CONFLICT


class AasUnavailable(AasError):
    code = "aas_unavailable"
    kind = ErrorKind.UNAVAILABLE


class InvalidAasMessage(AasError):
    code = "invalid_aas_message"
    kind = ErrorKind.INVALID


class InvalidTransportUrl(AasError):
    code = "invalid_aas_transport_url"
    kind = ErrorKind.INVALID


class ServiceFailed(AasError):
    code = "aas_service_failed"
    kind = ErrorKind.CONFLICT
