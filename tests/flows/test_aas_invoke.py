"""An `aas.invoke` task runs an Operation of a shell's submodel through the aas service
of the same process: its Core (here in this process, on a memory transport) answers,
and the next task sees the outputs; an Operation no Core runs fails the run."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from shopfloor.aas.core import Core
from tests.aas.shells import SUBMODEL_ID, plant
from tests.agents.agentkit import eventually


def invoking(flow_id: str, submodel_id: str) -> dict[str, Any]:
    return {
        "id": flow_id, "name": flow_id,
        "triggers": [{"type": "interval", "parameters": {"seconds": 0.05}}],
        "tasks": [
            {"id": "start", "type": "aas.invoke", "next": ["check"],
             "parameters": {"submodel_id": submodel_id, "operation": "Controls.start",
                            "arguments": {"speed": "variables.speed"}, "timeout_seconds": 5}},
            {"id": "check", "type": "log", "condition": "results.start.rpm == 500",
             "parameters": {"message": "'the press turns at ' + string(results.start.rpm)"}},
        ],
        "variables": {"speed": 5},
    }  # fmt: skip


async def test_a_flow_invokes_an_operation_and_the_next_task_reads_its_outputs(
    make_settings: Callable[..., Any],
) -> None:
    async with plant(make_settings, "memory://flows-aas") as shop:
        http, headers = shop.api.http, shop.headers
        core = Core(topic=shop.topic, transport="memory://flows-aas")
        calls: list[dict[str, Any]] = []

        @core.operation("Controls.start")
        async def start(arguments: dict[str, Any]) -> dict[str, Any]:
            calls.append(arguments)
            return {"rpm": arguments["speed"] * 100}

        async with core:
            await core.wait_running(within=20)
            for flow_id, submodel in (("press", SUBMODEL_ID), ("nowhere", "urn:sm:none")):
                created = await http.post("/flows", json=invoking(flow_id, submodel),
                                          headers=headers)  # fmt: skip
                assert created.status_code == 201, created.text
            started = await http.patch(
                "/flows/commands", json={"command": "start", "flow_ids": ["press", "nowhere"]},
                headers=headers,
            )  # fmt: skip
            assert started.status_code == 200, started.text

            async def finished(flow_id: str, status: str) -> Any:
                runs = (await http.get(f"/flows/{flow_id}/runs", headers=headers)).json()
                done = [run for run in runs["runs"] if run["status"] == status]
                return done[0] if done else None

            press = await eventually(lambda: finished("press", "completed"))
            nowhere = await eventually(lambda: finished("nowhere", "failed"))
            await http.patch("/flows/commands", json={"command": "stop", "flow_ids": ["press",
                             "nowhere"]}, headers=headers)  # fmt: skip
    assert [(t["task_id"], t["status"]) for t in press["tasks"]] == [
        ("start", "succeeded"), ("check", "succeeded"),
    ]  # fmt: skip
    assert calls[0] == {"speed": 5}
    assert nowhere["tasks"][0]["status"] == "failed"
    assert nowhere["tasks"][0]["error"]["code"] == "flow_operation_failed"
    assert "no AAS Manager runs" in nowhere["tasks"][0]["error"]["message"]
