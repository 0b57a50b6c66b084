"""Errors of the device and agent side.

Bootstrapping a device, a subtree of bootstrap's:

shopfloor.bootstrap.BootstrapError
├── BootstrapRefused            the server answered an error: its `code` and kind, as sent
├── BootstrapUnreachable        no answer (connection, TLS, timeout), or not a bootstrap server
└── BootstrapResponseTampered   a secure answer that does not open under the challenge's
                                key: changed on the way, or replayed from another exchange

One agent calling another (`Agent.call`, `ping`, `follow`):

shopfloor.core.ShopfloorError
└── AgentError
    ├── PeerUnknown             no address for the target: not in `config.peers`, no `proxy`
    ├── AgentUnreachable        no answer: connection, TLS handshake (the name the caller
    │                           asked for is not in the target's certificate), deadline
    │   └── AgentTimeout        the deadline passed (the target may have run the call)
    ├── AgentRefused            the target refused the caller: `status` UNAUTHENTICATED (no
    │                           usable certificate, a revoked one) or PERMISSION_DENIED
    │                           (another organisation, the relation graph); its reason
    ├── CallFailed              the target ran the call and answered an error: its `code`
    │                           and message. A handler raises it to answer one.
    ├── PlatformRefused         the platform's API refused the agent (a state report, the
    │                           state feed): its `status`, `code` and message
    └── PlatformUnreachable     no answer from the platform's API

The relation cache (`RelationCache`), a subtree of the relation graph's:

shopfloor.auth.relations.RelationError
├── RelationsRefused            the relations API answered an error: its `code` and kind
└── RelationsUnreachable        no answer from it (connection, TLS, timeout), or not its own
"""

from __future__ import annotations

import grpc

from shopfloor.auth.relations import RelationError
from shopfloor.bootstrap import BootstrapError
from shopfloor.core import ErrorKind, ShopfloorError

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


class AgentError(ShopfloorError):
    code = "agent_error"
    kind = ErrorKind.UNAVAILABLE


class PeerUnknown(AgentError):
    code = "agent_peer_unknown"
    kind = ErrorKind.NOT_FOUND


class AgentUnreachable(AgentError):
    code = "agent_unreachable"
    kind = ErrorKind.UNAVAILABLE


class AgentTimeout(AgentUnreachable):
    """No answer within the call's deadline: the target may be slow, or may have run it."""

    code = "agent_timeout"


class AgentRefused(AgentError):
    code = "agent_refused"

    def __init__(self, message: str, *, status: grpc.StatusCode) -> None:
        kind = (
            ErrorKind.UNAUTHENTICATED
            if status is grpc.StatusCode.UNAUTHENTICATED
            else ErrorKind.FORBIDDEN
        )
        super().__init__(message, kind=kind)
        self.status = status


class CallFailed(AgentError):
    """The answer of a call that failed: raise it in a handler to send `code` and the
    message to the caller, who gets it raised from `Agent.call`."""

    code = "call_failed"
    kind = ErrorKind.INVALID

    def __init__(self, message: str, *, code: str = "call_failed") -> None:
        super().__init__(message, code=code)


class PlatformRefused(AgentError):
    def __init__(self, message: str, *, status: int, code: str) -> None:
        super().__init__(message, code=code, kind=_KINDS.get(status, ErrorKind.UNAVAILABLE))
        self.status = status


class PlatformUnreachable(AgentError):
    code = "platform_unreachable"
    kind = ErrorKind.UNAVAILABLE


class RelationsRefused(RelationError):
    def __init__(self, message: str, *, status: int, code: str) -> None:
        super().__init__(message, code=code, kind=_KINDS.get(status, ErrorKind.UNAVAILABLE))
        self.status = status


class RelationsUnreachable(RelationError):
    code = "relations_unreachable"
    kind = ErrorKind.UNAVAILABLE
