"""A Core written by hand with plain kafka-python (examples/aas/kafka_python_core.py,
the guide's code) works with the platform's Manager over a real Kafka broker."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from shopfloor.aas import ExecutionState, Invocation, Kind
from shopfloor.aas.protocol import State
from tests.messaging.bus_testkit import eventually

from .shells import AAS_ID, SUBMODEL_ID, plant

EXAMPLE = Path(__file__).parents[2] / "examples" / "aas" / "kafka_python_core.py"


async def test_a_hand_written_kafka_python_core_runs_operations_and_writes_values(
    make_settings: Callable[..., Any], kafka_address: str
) -> None:
    async with plant(make_settings, f"kafka://{kafka_address}") as shop:
        env = {
            **os.environ,
            **shop.manager["core"]["environment"],
            "PRESS_SUBMODEL_ID": SUBMODEL_ID,
            "PRESS_SPEED": "99",
        }
        process = await asyncio.create_subprocess_exec(
            sys.executable, str(EXAMPLE), env=env, stdout=asyncio.subprocess.PIPE
        )
        try:
            manager = shop.service.managers

            def core_is(state: State) -> Callable[[], bool]:
                def check() -> bool:
                    assert process.returncode is None, "the example Core exited"
                    running = manager.running(shop.org_id, AAS_ID)
                    return running is not None and running.peer_state is state

                return check

            await eventually(core_is(State.RUNNING), within=30)
            result = await shop.service.invoker.invoke(
                Invocation(
                    org_id=shop.org_id,
                    aas_id=AAS_ID,
                    submodel_id=SUBMODEL_ID,
                    path="Controls.start",
                    input_arguments={"speed": 4},
                    timeout=20,
                )
            )

            async def speed() -> Any:
                stored = await shop.service.store.get(shop.org_id, Kind.SUBMODEL, SUBMODEL_ID)
                return stored.obj.get_referable("Controls.speed").value  # type: ignore[attr-defined]

            async def speed_set() -> bool:
                return await speed() == 99

            await eventually(speed_set, within=20)
            process.terminate()
            output = (await asyncio.wait_for(process.communicate(), 20))[0].decode()
            running = manager.running(shop.org_id, AAS_ID)
            await eventually(lambda: running is not None and running.peer_state is State.IDLE)
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
    assert result.execution_state is ExecutionState.COMPLETED
    assert result.output_arguments == {"rpm": 400}
    assert "the Manager answered Completed" in output
