"""Edge flows: versioned flow documents, checked whole, stored as files with history.

    doc = read_flow(decode_flow(body, "application/yaml"))   # InvalidFlow lists every problem
    configs = ConfigManager(data_dir / "flows")
    configs.load()
    stored = configs.create(org_id, doc)                      # rev 1
    configs.update(org_id, changed, rev=stored.rev)           # a stale rev: FlowConflict
    configs.history(org_id, doc.id); configs.restore(org_id, doc.id, 1)

Task and trigger types register by name (`class LogTask(TaskType, type="log")`) with a
parameters model; the engine that runs them is not built yet (docs/flows.md).
"""

from ._config import ConfigManager, Revision
from ._document import (
    FLOW_ID_PATTERN,
    FlowDocument,
    Retries,
    Task,
    Trigger,
    decode_flow,
    flow_schema,
    read_flow,
)
from ._errors import (
    FlowConflict,
    FlowError,
    FlowNotFound,
    FlowStoreError,
    InvalidFlow,
    Problem,
    UnknownFlowType,
)
from ._expressions import Expression, compile_expression
from ._types import TaskParameters, TaskType, TriggerParameters, TriggerType

__all__ = [
    "FLOW_ID_PATTERN",
    "ConfigManager",
    "Expression",
    "FlowConflict",
    "FlowDocument",
    "FlowError",
    "FlowNotFound",
    "FlowStoreError",
    "InvalidFlow",
    "Problem",
    "Retries",
    "Revision",
    "Task",
    "TaskParameters",
    "TaskType",
    "Trigger",
    "TriggerParameters",
    "TriggerType",
    "UnknownFlowType",
    "compile_expression",
    "decode_flow",
    "flow_schema",
    "read_flow",
]
