"""Errors of the device and agent side, subtrees of bootstrap's and the relation graph's.

shopfloor.bootstrap.BootstrapError
├── BootstrapRefused            the server answered an error: its `code` and kind, as sent
├── BootstrapUnreachable        no answer (connection, TLS, timeout), or not a bootstrap server
└── BootstrapResponseTampered   a secure answer that does not open under the challenge's
                                key: changed on the way, or replayed from another exchange

shopfloor.auth.relations.RelationError
├── RelationsRefused            the relations API answered an error: its `code` and kind
└── RelationsUnreachable        no answer from it (connection, TLS, timeout), or not its own
"""

from __future__ import annotations

from shopfloor.auth.relations import RelationError
from shopfloor.bootstrap import BootstrapError
from shopfloor.core import ErrorKind

_KINDS = {
    400: ErrorKind.INVALID,
    401: ErrorKind.UNAUTHENTICATED,
    403: ErrorKind.FORBIDDEN,
    404: ErrorKind.NOT_FOUND,
    409: ErrorKind.CONFLICT,
    413: ErrorKind.TOO_LARGE,
    415: ErrorKind.UNSUPPORTED,
    422: ErrorKind.INVALID,
    429: ErrorKind.RATE_LIMITED,
}


class BootstrapRefused(BootstrapError):
    def __init__(
        self, message: str, *, status: int, code: str, retry_after: float | None = None
    ) -> None:
        kind = _KINDS.get(status, ErrorKind.UNAVAILABLE)
        super().__init__(message, code=code, kind=kind, retry_after=retry_after)
        self.status = status


class BootstrapUnreachable(BootstrapError):
    code = "bootstrap_unreachable"
    kind = ErrorKind.UNAVAILABLE


class BootstrapResponseTampered(BootstrapError):
    code = "bootstrap_response_tampered"
    kind = ErrorKind.INVALID


class RelationsRefused(RelationError):
    def __init__(self, message: str, *, status: int, code: str) -> None:
        super().__init__(message, code=code, kind=_KINDS.get(status, ErrorKind.UNAVAILABLE))
        self.status = status


class RelationsUnreachable(RelationError):
    code = "relations_unreachable"
    kind = ErrorKind.UNAVAILABLE
