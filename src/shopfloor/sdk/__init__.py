"""The device and agent side of Shopfloor.

Devices bootstrap from an external id and key (`bootstrap`). Agents read what the
platform handed them with `AgentContext.from_env()`, answer its health check with
`serve_health`, and run under `python -m shopfloor.sdk.run module:callable` (or
`run_agent(callable)` from a script); `shopfloor.sdk.run` states the contract.

`Agent` is the base class of an agent that serves and calls the other agents of its
organisation over gRPC with mutual TLS (`proto/agent.proto`), every call checked
against its certificate, the revocation list and the relation graph;
`CoordinatorAgent` aggregates its members' states. docs/sdk.md walks through both. An
agent checks who may call it with a `RelationCache` of the organisation's relation graph.
"""

from ._access import METHOD_RELATIONS, Caller, Checker, current_caller, same_organisation
from ._agent import Agent
from ._bootstrap import (
    CredentialPaths,
    DeviceChannel,
    DeviceConfig,
    abootstrap,
    bootstrap,
    open_answer,
)
from ._client import AgentClient, ClientCredentials, Peers, Resolver, StateChange
from ._context import AgentContext, AgentContextError, config_port, config_seconds
from ._coordinator import CoordinatorAgent
from ._errors import (
    AgentError,
    AgentRefused,
    AgentTimeout,
    AgentUnreachable,
    BootstrapRefused,
    BootstrapResponseTampered,
    BootstrapUnreachable,
    CallFailed,
    PeerUnknown,
    PlatformRefused,
    PlatformUnreachable,
    RelationsRefused,
    RelationsUnreachable,
)
from ._health import serve_health
from ._platform import AgentAssertion, PlatformClient, StateReporter
from ._relations import RelationCache
from ._revocation import (
    CertificateRevoked,
    CrlSource,
    HttpCrlSource,
    RevocationList,
    RevocationUnknown,
    StaticCrlSource,
)
from ._runner import run_agent
from ._service import CallHandler
from ._settings import AgentSettings
from ._tls import (
    AgentCredentials,
    AgentIdentity,
    FlowIdentity,
    MemoryCredentials,
    agent_dns_name,
    platform_tls,
)

__all__ = [
    "METHOD_RELATIONS",
    "Agent",
    "AgentAssertion",
    "AgentClient",
    "AgentContext",
    "AgentContextError",
    "AgentCredentials",
    "AgentError",
    "AgentIdentity",
    "AgentRefused",
    "AgentSettings",
    "AgentTimeout",
    "AgentUnreachable",
    "BootstrapRefused",
    "BootstrapResponseTampered",
    "BootstrapUnreachable",
    "CallFailed",
    "CallHandler",
    "Caller",
    "CertificateRevoked",
    "Checker",
    "ClientCredentials",
    "CoordinatorAgent",
    "CredentialPaths",
    "CrlSource",
    "DeviceChannel",
    "DeviceConfig",
    "FlowIdentity",
    "HttpCrlSource",
    "MemoryCredentials",
    "PeerUnknown",
    "Peers",
    "PlatformClient",
    "PlatformRefused",
    "PlatformUnreachable",
    "RelationCache",
    "RelationsRefused",
    "RelationsUnreachable",
    "Resolver",
    "RevocationList",
    "RevocationUnknown",
    "StateChange",
    "StateReporter",
    "StaticCrlSource",
    "abootstrap",
    "agent_dns_name",
    "bootstrap",
    "config_port",
    "config_seconds",
    "current_caller",
    "open_answer",
    "platform_tls",
    "run_agent",
    "same_organisation",
    "serve_health",
]
