"""Edge flows: versioned flow documents, checked whole, stored as files with history.

    doc = read_flow(decode_flow(body, "application/yaml"))   # InvalidFlow lists every problem
    configs = ConfigManager(data_dir / "flows")
    configs.load()
    stored = configs.create(org_id, doc)                      # rev 1
    configs.update(org_id, changed, rev=stored.rev)           # a stale rev: FlowConflict
    configs.history(org_id, doc.id); configs.restore(org_id, doc.id, 1)

Task and trigger types register by name (`class LogTask(TaskType, type="log")`) with a
parameters model and a `run`. The engine runs a flow's tasks per trigger event, the
FlowManager starts, stops, pauses and resumes flows and keeps their state in files:

    engine = FlowEngine(publisher=publisher, http=client)
    manager = FlowManager(configs, data_dir / "flows", engine, subscriber=subscriber)
    await manager.open(); await manager.command(org_id, "line-3", "start")
"""

from ._config import ConfigManager, Revision
from ._context import Message, Publisher, Step, Subscriber, TaskContext
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
from ._engine import Boundary, FlowEngine, RunRecord, TaskOutcome
from ._errors import (
    FlowConflict,
    FlowError,
    FlowNotFound,
    FlowRunError,
    FlowStateError,
    FlowStoreError,
    InvalidFlow,
    Problem,
    UnknownFlowType,
)
from ._expressions import Expression, compile_expression
from ._manager import COMMANDS, FlowManager, FlowState
from ._types import TaskParameters, TaskType, TriggerParameters, TriggerType

__all__ = [
    "COMMANDS",
    "FLOW_ID_PATTERN",
    "Boundary",
    "ConfigManager",
    "Expression",
    "FlowConflict",
    "FlowDocument",
    "FlowEngine",
    "FlowError",
    "FlowManager",
    "FlowNotFound",
    "FlowRunError",
    "FlowState",
    "FlowStateError",
    "FlowStoreError",
    "InvalidFlow",
    "Message",
    "Problem",
    "Publisher",
    "Retries",
    "Revision",
    "RunRecord",
    "Step",
    "Subscriber",
    "Task",
    "TaskContext",
    "TaskOutcome",
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
