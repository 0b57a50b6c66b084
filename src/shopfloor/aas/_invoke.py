"""Invoking an Operation of a submodel: what the AAS HTTP API asks, and who answers.

The HTTP API (`/invoke`, `/invoke-async`) hands an `Invocation` to the service's
`Invoker`; the Managers (one per shell with a Core, docs/aas-protocol.md) forward it to
the Core as a `manager-service-request` and answer the Core's response. An Operation of
a shell no Manager runs for is answered `Failed`, saying so: there is nobody to run it.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

__all__ = ["ExecutionState", "Invocation", "InvocationResult", "Invoker", "Unmanaged"]


class ExecutionState(enum.StrEnum):
    """IDTA Part 2's `ExecutionState`."""

    INITIATED = "Initiated"
    RUNNING = "Running"
    COMPLETED = "Completed"
    CANCELED = "Canceled"
    FAILED = "Failed"
    TIMEOUT = "Timeout"


@dataclass(frozen=True, slots=True, kw_only=True)
class Invocation:
    org_id: str
    #: The shell whose submodel it is (the one whose Manager runs it), when known.
    aas_id: str | None
    submodel_id: str
    #: The Operation's idShortPath in the submodel (`Controls.start`, `List[2].run`).
    path: str
    #: Argument values by idShort, as the value-only serialisation has them.
    input_arguments: Mapping[str, Any] = field(default_factory=dict)
    inoutput_arguments: Mapping[str, Any] = field(default_factory=dict)
    #: Seconds the caller waits (Part 2's `timeout`, an xs:duration made seconds).
    timeout: float = 30.0


@dataclass(frozen=True, slots=True, kw_only=True)
class InvocationResult:
    execution_state: ExecutionState
    success: bool
    messages: tuple[str, ...] = ()
    output_arguments: Mapping[str, Any] = field(default_factory=dict)
    inoutput_arguments: Mapping[str, Any] = field(default_factory=dict)


class Invoker(Protocol):
    async def invoke(self, invocation: Invocation) -> InvocationResult: ...


class Unmanaged:
    """The invoker while no Manager runs: every Operation fails, saying why."""

    async def invoke(self, invocation: Invocation) -> InvocationResult:
        return InvocationResult(
            execution_state=ExecutionState.FAILED,
            success=False,
            messages=(
                f"no AAS Manager runs for the submodel {invocation.submodel_id!r}: no Core "
                f"is connected to run {invocation.path}",
            ),
        )
