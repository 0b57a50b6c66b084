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
from ._influxdb import InfluxdbProvisioner
from ._kubernetes import KubernetesRuntime
from ._process import ProcessRuntime
from ._provisioners import AgentRef, Grant, MqttProvisioner, PostgresProvisioner, Provisioner
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
from ._spec import (
    AGENT_LABEL,
    PROVISION_PREFIX,
    AgentSpec,
    DesiredState,
    HealthSettings,
    agent_label,
    parse_spec,
    provisioning_labels,
)
from ._swarm import SwarmRuntime

__all__ = [
    "AGENT_LABEL",
    "KEY_LABEL",
    "MANAGED_LABEL",
    "PROVISION_PREFIX",
    "AgentConflict",
    "AgentError",
    "AgentNotFound",
    "AgentRef",
    "AgentRuntime",
    "AgentSpec",
    "DesiredState",
    "Grant",
    "HealthSettings",
    "InfluxdbProvisioner",
    "InvalidAgentSpec",
    "KubernetesRuntime",
    "LogLine",
    "MqttProvisioner",
    "Observed",
    "ObservedState",
    "PostgresProvisioner",
    "ProcessRuntime",
    "Provisioner",
    "RestartPolicy",
    "RuntimeMisconfigured",
    "RuntimeUnavailable",
    "SwarmRuntime",
    "Workload",
    "agent_label",
    "parse_spec",
    "provisioning_labels",
]
