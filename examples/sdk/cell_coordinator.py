"""A cell coordinator: the SDK's `CoordinatorAgent` over the cell's machine agents.

    {"members": ["mill-1", "mill-2"],
     "peers": {"mill-1": "127.0.0.1:7443", "mill-2": "127.0.0.1:7444"},
     "grpc_port": 7450, "access": "relations"}                          # config.json

It follows each machine agent (`examples/sdk/opcua_machine_agent.py`) and publishes the
cell's aggregate as its own state, logged at every change:

    {"state": "degraded", "availability": 0.5, "running": 1, "members": 2,
     "machines": {"mill-1": "running", "mill-2": "stopped"}}

`availability` is the share of machines running; a machine whose agent cannot be
followed, or that has lost its link to the machine, is `unknown`. `Call` `stop_all`
stops every machine (through each agent's `stop`) and answers what each said.

Deploy it with `"module": "examples.sdk.cell_coordinator:main"` (`main` is
`CellCoordinator.main`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shopfloor.sdk import AgentError, CoordinatorAgent, StateChange

__all__ = ["CellCoordinator", "main"]


class CellCoordinator(CoordinatorAgent):
    """The aggregate of a cell's machines, and `stop_all`."""

    async def setup(self) -> None:
        self.register("stop_all", self.stop_all)
        await super().setup()

    def aggregate(self, states: Mapping[str, Mapping[str, Any] | None]) -> dict[str, Any]:
        machines: dict[str, str] = {}
        for name, state in states.items():
            value = state.get("state") if state is not None else None
            machines[name] = value if isinstance(value, str) else "unknown"
        running = sum(1 for value in machines.values() if value == "running")
        total = len(machines)
        overall = "down" if not running else "running" if running == total else "degraded"
        return {
            "state": overall,
            "availability": round(running / total, 3) if total else 0.0,
            "running": running,
            "members": total,
            "machines": machines,
        }

    async def publish_state(self, state: Mapping[str, Any]) -> StateChange:
        change = await super().publish_state(state)
        self.log.info("cell %s: %s", self.name, dict(state))
        return change

    async def stop_all(self) -> dict[str, Any]:
        """Stop every machine of the cell; each machine's answer, or its error."""
        answers: dict[str, Any] = {}
        for member in self.members:
            try:
                answers[member] = await self.call(member, "stop")
            except AgentError as exc:
                answers[member] = {"error": exc.code, "message": str(exc)}
        return answers


#: The spec's `module` entry point.
main = CellCoordinator.main
