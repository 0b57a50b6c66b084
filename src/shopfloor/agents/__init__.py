"""Industrial agents: specs, runtimes (process, Docker Swarm, Kubernetes), supervision.

See `_runtime.py` for the runtime interface every engine implements.
"""

from ._errors import (
    AgentConflict,
    AgentError,
    AgentNotFound,
    InvalidAgentSpec,
    RuntimeMisconfigured,
    RuntimeUnavailable,
)
from ._runtime import (
    KEY_LABEL,
    MANAGED_LABEL,
    AgentRuntime,
    LogLine,
    Observed,
    ObservedState,
    RestartPolicy,
    Workload,
)
from ._swarm import SwarmRuntime

__all__ = [
    "KEY_LABEL",
    "MANAGED_LABEL",
    "AgentConflict",
    "AgentError",
    "AgentNotFound",
    "AgentRuntime",
    "InvalidAgentSpec",
    "LogLine",
    "Observed",
    "ObservedState",
    "RestartPolicy",
    "RuntimeMisconfigured",
    "RuntimeUnavailable",
    "SwarmRuntime",
    "Workload",
]
