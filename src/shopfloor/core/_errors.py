"""The one error tree of the platform.

    ShopfloorError                  every failure a capability reports on purpose; it has
    │                               a stable snake_case `code` and a `kind`
    ├── auth.AuthError              unauthenticated / forbidden
    ├── registry.RegistryError      not found / conflict / invalid
    ├── messaging.MessagingError    unavailable / busy / too large / invalid
    ├── storage.StorageError        unavailable / invalid
    ├── ingress.IngressError        every refusal of a thing's message
    └── ...                         one subtree per capability, drawn in its `_errors.py`

The `kind` says what the caller can do about it, whatever the protocol; each edge
translates it once: the API and the HTTP adapter to a status (`http_status`), MQTT
to a reason or an `_errors` report, WebSocket to a close code. `unavailable` and
`busy` carry `retry_after` (seconds) and answer 503 with `Retry-After`, so a backend
that is down is never a 500.
"""

from __future__ import annotations

import enum
from typing import ClassVar

__all__ = ["ErrorKind", "ShopfloorError", "http_status"]


class ErrorKind(enum.StrEnum):
    INVALID = "invalid"  # the request itself is wrong: fix it, do not retry
    UNAUTHENTICATED = "unauthenticated"  # no usable credential
    FORBIDDEN = "forbidden"  # a valid credential that may not do this
    NOT_FOUND = "not_found"  # absent, or another organisation's
    CONFLICT = "conflict"  # clashes with the current state (a taken name, a stale rev)
    TOO_LARGE = "too_large"  # over a documented size limit
    UNSUPPORTED = "unsupported"  # a media type or format the platform does not take
    RATE_LIMITED = "rate_limited"  # too many attempts from this caller: wait `retry_after`
    UNAVAILABLE = "unavailable"  # a backend is down or unreachable: retry later
    BUSY = "busy"  # backpressure: a bounded queue is full, retry later


_HTTP_STATUS = {
    ErrorKind.INVALID: 400,
    ErrorKind.UNAUTHENTICATED: 401,
    ErrorKind.FORBIDDEN: 403,
    ErrorKind.NOT_FOUND: 404,
    ErrorKind.CONFLICT: 409,
    ErrorKind.TOO_LARGE: 413,
    ErrorKind.UNSUPPORTED: 415,
    ErrorKind.RATE_LIMITED: 429,
    ErrorKind.UNAVAILABLE: 503,
    ErrorKind.BUSY: 503,
}
#: Kinds that tell the caller to come back: answered with `Retry-After`.
RETRY_KINDS = frozenset({ErrorKind.RATE_LIMITED, ErrorKind.UNAVAILABLE, ErrorKind.BUSY})
DEFAULT_RETRY_AFTER = 1.0


def http_status(kind: ErrorKind) -> int:
    """The HTTP status of an error kind, for every HTTP edge (API and HTTP adapter)."""
    return _HTTP_STATUS[kind]


class ShopfloorError(Exception):
    """A failure with a stable `code` and a `kind`; subclasses set defaults for both.

    `retry_after` is set for the kinds that ask the caller to come back (the default
    is one second for those, None otherwise).
    """

    code: ClassVar[str] = "error"
    kind: ClassVar[ErrorKind] = ErrorKind.UNAVAILABLE

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        kind: ErrorKind | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        # Instance attributes shadow the class defaults only when given.
        if code is not None:
            self.code = code  # type: ignore[misc]
        if kind is not None:
            self.kind = kind  # type: ignore[misc]
        if retry_after is None and self.kind in RETRY_KINDS:
            retry_after = DEFAULT_RETRY_AFTER
        self.retry_after = retry_after

    @property
    def message(self) -> str:
        return str(self)

    @property
    def transient(self) -> bool:
        """The same call may succeed later without any change (a backend, not the caller)."""
        return self.kind in (ErrorKind.UNAVAILABLE, ErrorKind.BUSY)
