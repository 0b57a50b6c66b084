"""Agent failures (a subtree of `shopfloor.core`'s error tree).

AgentError                      every failure of deploying or supervising an agent
├── InvalidAgentSpec            a spec the platform cannot run (invalid)
├── InvalidAgentState           a state report the platform cannot keep (invalid, too_large)
├── AgentNotFound               no such agent (in this organisation) (not_found)
├── AgentConflict               a name taken, or a change racing another (conflict)
├── RuntimeMisconfigured        SHOPFLOOR_AGENT_RUNTIME or its settings are wrong (at start)
└── RuntimeUnavailable          the engine (Docker, Kubernetes) is down or refused (retry)
"""

from __future__ import annotations

from shopfloor.core import ErrorKind, ShopfloorError

__all__ = [
    "AgentConflict",
    "AgentError",
    "AgentNotFound",
    "InvalidAgentSpec",
    "InvalidAgentState",
    "RuntimeMisconfigured",
    "RuntimeUnavailable",
]


class AgentError(ShopfloorError):
    code = "agent_error"
    kind = ErrorKind.UNAVAILABLE


class InvalidAgentSpec(AgentError):
    code = "invalid_agent_spec"
    kind = ErrorKind.INVALID


class InvalidAgentState(AgentError):
    code = "invalid_agent_state"
    kind = ErrorKind.INVALID


class AgentNotFound(AgentError):
    code = "agent_not_found"
    kind = ErrorKind.NOT_FOUND


class AgentConflict(AgentError):
    code = "agent_conflict"
    kind = ErrorKind.CONFLICT


class RuntimeMisconfigured(AgentError):
    code = "agent_runtime_misconfigured"
    kind = ErrorKind.INVALID


class RuntimeUnavailable(AgentError):
    code = "agent_runtime_unavailable"
    kind = ErrorKind.UNAVAILABLE
