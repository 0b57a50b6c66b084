"""The device and agent side of Shopfloor.

Devices bootstrap from an external id and key (`bootstrap`). Agents read what the
platform handed them with `AgentContext.from_env()`, answer its health check with
`serve_health`, and run under `python -m shopfloor.sdk.run module:callable` (or
`run_agent(callable)` from a script); `shopfloor.sdk.run` states the contract. An
agent checks who may call it with a `RelationCache` of the organisation's relation graph.
"""

from ._bootstrap import (
    CredentialPaths,
    DeviceChannel,
    DeviceConfig,
    abootstrap,
    bootstrap,
    open_answer,
)
from ._context import AgentContext, AgentContextError, config_port, config_seconds
from ._errors import (
    BootstrapRefused,
    BootstrapResponseTampered,
    BootstrapUnreachable,
    RelationsRefused,
    RelationsUnreachable,
)
from ._health import serve_health
from ._relations import RelationCache
from ._runner import run_agent

__all__ = [
    "AgentContext",
    "AgentContextError",
    "BootstrapRefused",
    "BootstrapResponseTampered",
    "BootstrapUnreachable",
    "CredentialPaths",
    "DeviceChannel",
    "DeviceConfig",
    "RelationCache",
    "RelationsRefused",
    "RelationsUnreachable",
    "abootstrap",
    "bootstrap",
    "config_port",
    "config_seconds",
    "open_answer",
    "run_agent",
    "serve_health",
]
