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
from ._kubernetes import KubernetesRuntime
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

__all__ = [
    "KEY_LABEL",
    "MANAGED_LABEL",
    "AgentConflict",
    "AgentError",
    "AgentNotFound",
    "AgentRuntime",
    "InvalidAgentSpec",
    "KubernetesRuntime",
    "LogLine",
    "Observed",
    "ObservedState",
    "RestartPolicy",
    "RuntimeMisconfigured",
    "RuntimeUnavailable",
    "Workload",
]
