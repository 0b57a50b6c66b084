"""Who calls an agent, and whether they may: every incoming gRPC call passes `Access`.

In order, for every call, before the agent's code sees it:

1. the caller's certificate, as the TLS handshake verified it against the agents' CA
   (`x509_pem_cert` in the call's `auth_context()`), must name an agent
   (`urn:shopfloor:agent:<org_id>/<name>`) or a flow of the flows service
   (`urn:shopfloor:flow:<org_id>/<flow_id>`): else `UNAUTHENTICATED`;
2. its serial must not be on the platform's revocation list (`RevocationList`): else
   `UNAUTHENTICATED`, as when there is no list to check against;
3. the agent or flow must be of this agent's organisation: else `PERMISSION_DENIED`;
4. the checker must allow `(agent:<caller>, relation, agent:<this agent>)` (for a flow
   `flow:<flow_id>`), the relation the method needs (`METHOD_RELATIONS`): else
   `PERMISSION_DENIED`, with the reason.

grpc.aio's `ServerInterceptor` is handed the method and the metadata only
(`HandlerCallDetails`), not the peer's certificate, so `AccessInterceptor` cannot
decide there: it wraps the method's handler instead, and the wrapper asks
`context.auth_context()` of each call before it runs the agent's code. The caller is
then `current_caller()` for that code.

Without a checker every call is refused: no agent is reachable by default.
`same_organisation` is the checker that lets every agent of the organisation do
everything; the relation graph's `RelationCache.check` is the one meant for it.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, TypeAlias, cast

import grpc
from cryptography import x509

from shopfloor.pki import CertificateRefused, EntityType, PkiError, entity_of

from ._revocation import CertificateRevoked, RevocationList, RevocationUnknown
from ._tls import AgentIdentity, FlowIdentity
from ._wire import CALL, FOLLOW, GET_STATE, PING

__all__ = [
    "METHOD_RELATIONS",
    "Access",
    "AccessInterceptor",
    "Caller",
    "Checker",
    "Refusal",
    "current_caller",
    "same_organisation",
]

logger = logging.getLogger(__name__)

#: `checker(subject, relation, object)`: `agent:<caller>` (or `flow:<caller>`), a relation,
#: `agent:<callee>`.
Checker = Callable[[str, str, str], bool | Awaitable[bool]]

#: The relation a caller needs to the agent it calls, per gRPC method; None: any agent of
#: the organisation. A method not listed is refused. `Call` needs `calls`, or what the
#: method was registered with (`Agent.register(..., relation="controls")`).
METHOD_RELATIONS: Mapping[str, str | None] = {
    PING: "reads",
    GET_STATE: "reads",
    FOLLOW: "reads",
    CALL: "calls",
    "/grpc.health.v1.Health/Check": None,
    "/grpc.health.v1.Health/Watch": None,
}

_CERT_CACHE_SIZE = 1024


def same_organisation(subject: str, relation: str, object: str) -> bool:
    """Allow everything to every agent of the organisation (checked before the checker)."""
    return True


@dataclass(frozen=True, slots=True)
class Caller:
    """The agent calling, as its certificate names it; or a flow of the flows service
    (`kind` "flow", `name` the flow's id, `identity` a `FlowIdentity`)."""

    identity: AgentIdentity | FlowIdentity
    serial: int
    #: "agent", or "flow": a flow's `agent.call` task (docs/flows.md).
    kind: str = "agent"

    @property
    def name(self) -> str:
        return self.identity.name

    @property
    def subject(self) -> str:
        """How the relation graph names the caller: `agent:<name>`, `flow:<flow_id>`."""
        return self.identity.subject


_CALLER: ContextVar[Caller | None] = ContextVar("shopfloor_agent_caller", default=None)


def current_caller() -> Caller | None:
    """The agent (or flow: `kind`) whose call is being served (None outside a call)."""
    return _CALLER.get()


class Refusal(Exception):
    """A call refused, with the status and the reason its caller is told."""

    def __init__(self, status: grpc.StatusCode, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class Access:
    """The checks of one agent, as `identity` (the agent called)."""

    def __init__(
        self,
        identity: AgentIdentity,
        *,
        checker: Checker | None,
        revocations: RevocationList | None,
        relations: Mapping[str, str | None] = METHOD_RELATIONS,
    ) -> None:
        self.identity = identity
        self.checker = checker
        self.revocations = revocations
        self.relations = relations
        self._certificates: dict[bytes, Caller | Refusal] = {}
        self._warned = False

    async def admit(self, method: str, auth_context: Mapping[str, Iterable[bytes]]) -> Caller:
        """The caller of `method`, or `Refusal`."""
        if method not in self.relations:
            raise Refusal(grpc.StatusCode.PERMISSION_DENIED, f"{method} is not served to agents")
        caller = self.identify(auth_context)  # revocation checked there
        await self._check_relation(caller, self.relations[method])
        return caller

    def identify(self, auth_context: Mapping[str, Iterable[bytes]]) -> Caller:
        """Steps 1-3: the caller, not revoked, of this organisation."""
        pems = list(auth_context.get("x509_pem_cert", ()))
        if len(pems) != 1:
            raise Refusal(grpc.StatusCode.UNAUTHENTICATED, "no client certificate")
        known = self._certificates.get(pems[0])
        if known is None:
            known = self._certificates[pems[0]] = _caller_of(pems[0])
            if len(self._certificates) > _CERT_CACHE_SIZE:
                self._certificates.pop(next(iter(self._certificates)))
        if isinstance(known, Refusal):
            raise known
        self._check_revocation(known)
        if known.identity.org_id != self.identity.org_id:
            raise Refusal(
                grpc.StatusCode.PERMISSION_DENIED,
                f"{known.kind} {known.name} is of another organisation",
            )
        return known

    async def authorise(self, caller: Caller, relation: str | None) -> None:
        """Step 4, and step 2 again: for a caller admitted earlier (a follower)."""
        self._check_revocation(caller)
        await self._check_relation(caller, relation)

    async def _check_relation(self, caller: Caller, relation: str | None) -> None:
        if relation is None:
            return
        if self.checker is None:
            if not self._warned:
                self._warned = True
                logger.warning("no access checker configured: every call to %s is refused",
                               self.identity.name)  # fmt: skip
            raise Refusal(grpc.StatusCode.PERMISSION_DENIED, "this agent has no access checker")
        target = self.identity.subject
        try:
            verdict = self.checker(caller.subject, relation, target)
            allowed = await verdict if inspect.isawaitable(verdict) else verdict
        except Exception:
            logger.exception("access check %s %s %s failed", caller.subject, relation, target)
            raise Refusal(grpc.StatusCode.UNAVAILABLE, "the access check failed") from None
        if not allowed:
            raise Refusal(
                grpc.StatusCode.PERMISSION_DENIED,
                f"{caller.subject} has no relation {relation!r} to {target}",
            )

    def _check_revocation(self, caller: Caller) -> None:
        if self.revocations is None:
            return
        try:
            self.revocations.check(caller.serial)
        except CertificateRevoked:
            raise Refusal(grpc.StatusCode.UNAUTHENTICATED, "the certificate is revoked") from None
        except RevocationUnknown as exc:
            raise Refusal(
                grpc.StatusCode.UNAUTHENTICATED, f"cannot check revocation: {exc}"
            ) from None


def _caller_of(pem: bytes) -> Caller | Refusal:
    try:
        certificate = x509.load_pem_x509_certificate(pem)
        if entity_of(certificate).type is EntityType.FLOW:
            return Caller(FlowIdentity.of(certificate), certificate.serial_number, kind="flow")
        return Caller(AgentIdentity.of(certificate), certificate.serial_number)
    except CertificateRefused as exc:
        return Refusal(grpc.StatusCode.UNAUTHENTICATED, str(exc))
    except (ValueError, PkiError):
        return Refusal(grpc.StatusCode.UNAUTHENTICATED, "the client certificate is unreadable")


# Generic in the stubs only: quoted, so nothing subscripts them at run time.
Handler: TypeAlias = "grpc.RpcMethodHandler[Any, Any]"
Context: TypeAlias = "grpc.aio.ServicerContext[Any, Any]"


class AccessInterceptor(grpc.aio.ServerInterceptor):
    """Runs `Access.admit` before every call's handler, and sets `current_caller()`."""

    def __init__(self, access: Access) -> None:
        self.access = access
        #: method → (the handler, its guarded wrapper): wrapped once, not per call.
        self._guarded: dict[str, tuple[Handler, Handler]] = {}

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Handler | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Handler | None:
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        method = handler_call_details.method
        known = self._guarded.get(method)
        if known is not None and known[0] is handler:
            return known[1]
        guarded = _guarded(handler, self.access, method)
        self._guarded[method] = (handler, guarded)
        return guarded


def _guarded(handler: Handler, access: Access, method: str) -> Handler:
    async def admit(context: Context) -> Caller:
        try:
            return await access.admit(method, context.auth_context())
        except Refusal as refusal:
            logger.info("refused %s to %s: %s", method, context.peer(), refusal.reason)
            await context.abort(refusal.status, refusal.reason)

    def unary_response(behaviour: Callable[..., Awaitable[Any]]) -> Callable[..., Any]:
        async def guarded(request: Any, context: Context) -> Any:
            token = _CALLER.set(await admit(context))
            try:
                return await behaviour(request, context)
            finally:
                _CALLER.reset(token)

        return guarded

    def stream_response(behaviour: Callable[..., Any]) -> Callable[..., Any]:
        if inspect.isasyncgenfunction(behaviour):

            async def generating(request: Any, context: Context) -> AsyncIterator[Any]:
                # Set, never reset: every call runs in a task (and a context) of its own,
                # and a generator closed late may be in another context than it was set in.
                _CALLER.set(await admit(context))
                async for item in behaviour(request, context):
                    yield item

            return generating
        return unary_response(behaviour)  # writes with `context.write` and returns

    serializers: dict[str, Any] = {
        "request_deserializer": handler.request_deserializer,
        "response_serializer": handler.response_serializer,
    }
    if handler.unary_unary is not None:
        return grpc.unary_unary_rpc_method_handler(
            unary_response(handler.unary_unary), **serializers
        )
    if handler.unary_stream is not None:
        return grpc.unary_stream_rpc_method_handler(
            stream_response(handler.unary_stream), **serializers
        )
    if handler.stream_unary is not None:
        return grpc.stream_unary_rpc_method_handler(
            unary_response(handler.stream_unary), **serializers
        )
    assert handler.stream_stream is not None
    return grpc.stream_stream_rpc_method_handler(
        cast(Any, stream_response(handler.stream_stream)), **serializers
    )
