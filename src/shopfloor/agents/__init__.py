"""Industrial agents: specs, runtimes (process, Docker Swarm, Kubernetes), supervision.

    agents = platform.get(AgentsService).agents      # shopfloor.agents.capability
    record = await agents.create(org_id, parse_spec({"name": "press-7", ...}))
    await agents.set_desired(org_id, "press-7", DesiredState.STOPPED)

See `_runtime.py` for the runtime interface every engine implements and `_agents.py`
for the reconciler.
"""

from ._agents import AgentOptions, Agents, dns_name, state_subject
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
from ._provisioners import (
    AgentRef,
    Grant,
    LogsProvisioner,
    MqttProvisioner,
    PostgresProvisioner,
    Provisioner,
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
from ._store import AgentRecord, AgentStatus, AgentStore, Rollout
from ._swarm import SwarmRuntime

__all__ = [
    "AGENT_LABEL",
    "KEY_LABEL",
    "MANAGED_LABEL",
    "PROVISION_PREFIX",
    "AgentConflict",
    "AgentError",
    "AgentNotFound",
    "AgentOptions",
    "AgentRecord",
    "AgentRef",
    "AgentRuntime",
    "AgentSpec",
    "AgentStatus",
    "AgentStore",
    "Agents",
    "DesiredState",
    "Grant",
    "HealthSettings",
    "InfluxdbProvisioner",
    "InvalidAgentSpec",
    "KubernetesRuntime",
    "LogLine",
    "LogsProvisioner",
    "MqttProvisioner",
    "Observed",
    "ObservedState",
    "PostgresProvisioner",
    "ProcessRuntime",
    "Provisioner",
    "RestartPolicy",
    "Rollout",
    "RuntimeMisconfigured",
    "RuntimeUnavailable",
    "SwarmRuntime",
    "Workload",
    "agent_label",
    "dns_name",
    "parse_spec",
    "provisioning_labels",
    "state_subject",
]
