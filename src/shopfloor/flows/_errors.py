"""Flow failures (a subtree of `shopfloor.core`'s error tree).

FlowError                       every failure of the flows capability
├── InvalidFlow                 a document refused: `problems` lists every one found,
│                               each with a path and a stable code (invalid); nothing
│                               is stored
├── FlowNotFound                no such flow or revision (in this organisation)
│                               (not_found)
├── FlowConflict                an id taken (`flow_exists`), or a `rev` that is not the
│                               stored one (`flow_rev_conflict`) (conflict)
├── UnknownFlowType             a task or trigger type nobody registered (invalid)
├── FlowStoreError              the flows folder cannot be read or written (unavailable)
├── FlowRunError                a task failed when it ran: `flow_task_failed`,
│                               `flow_task_timeout`, `flow_expression_failed`,
│                               `flow_http_status`, `flow_task_not_supported`,
│                               `flow_agent_refused` …
└── FlowStateError              a command the flow's state does not allow
                                (`flow_already_running`, `flow_not_running`, …) (conflict)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from shopfloor.core import ErrorKind, ShopfloorError

__all__ = [
    "FlowConflict",
    "FlowError",
    "FlowNotFound",
    "FlowRunError",
    "FlowStateError",
    "FlowStoreError",
    "InvalidFlow",
    "Problem",
    "UnknownFlowType",
]


@dataclass(frozen=True, slots=True)
class Problem:
    """One defect of a flow document: where (`tasks[1].next`), what (a stable code), why."""

    path: str
    code: str
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {"path": self.path, "code": self.code, "message": self.message}

    def __str__(self) -> str:
        return f"{self.path or '(document)'}: {self.message} ({self.code})"


class FlowError(ShopfloorError):
    code = "flow_error"
    kind = ErrorKind.UNAVAILABLE


class InvalidFlow(FlowError):
    code = "invalid_flow"
    kind = ErrorKind.INVALID

    def __init__(
        self, message: str, *, problems: Sequence[Problem] = (), code: str | None = None
    ) -> None:
        super().__init__(message, code=code)
        #: Every defect found, in document order.
        self.problems = tuple(problems)
        #: The same, as the API answers them (`error.reasons` and `error.details`).
        self.reasons = tuple(str(problem) for problem in self.problems)
        self.details = [problem.as_dict() for problem in self.problems]


class FlowNotFound(FlowError):
    code = "flow_not_found"
    kind = ErrorKind.NOT_FOUND


class FlowConflict(FlowError):
    code = "flow_conflict"
    kind = ErrorKind.CONFLICT


class UnknownFlowType(FlowError):
    code = "unknown_flow_type"
    kind = ErrorKind.INVALID


class FlowStoreError(FlowError):
    code = "flow_store_error"
    kind = ErrorKind.UNAVAILABLE


class FlowRunError(FlowError):
    """A task of a run failed (after its retries); `code` says how. `about` holds more
    of the reason, recorded beside the code and message (an agent's own error code)."""

    code = "flow_task_failed"
    kind = ErrorKind.UNAVAILABLE

    def __init__(
        self, message: str, *, code: str | None = None, about: dict[str, str] | None = None
    ) -> None:
        super().__init__(message, code=code)
        self.about = dict(about or {})


class FlowStateError(FlowError):
    """A command the flow's state does not allow (`flow_already_running`, …)."""

    code = "flow_state_conflict"
    kind = ErrorKind.CONFLICT
