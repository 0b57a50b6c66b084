"""The example Cores of examples/aas, each run as its own process against the platform's
Manager over a real Kafka broker (Tansu): the SDK one here, the hand-written one in
test_kafka_python_core.py."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from shopfloor.aas import ExecutionState, Invocation

from .shells import AAS_ID, SUBMODEL_ID, plant

ROOT = Path(__file__).parents[2]


async def test_the_sdk_example_core_reads_its_shell_and_runs_the_operation(
    make_settings: Callable[..., Any], kafka_address: str
) -> None:
    async with plant(make_settings, f"kafka://{kafka_address}") as shop:
        env = {**os.environ, **shop.manager["core"]["environment"]}
        env |= {"PRESS_SUBMODEL_ID": SUBMODEL_ID, "PYTHONPATH": os.pathsep.join(sys.path)}
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "examples.aas.press_core", cwd=ROOT, env=env,
            stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        try:
            assert process.stdout is not None
            line = await asyncio.wait_for(process.stdout.readline(), 60)
            result = await shop.service.invoker.invoke(
                Invocation(
                    org_id=shop.org_id, aas_id=AAS_ID, submodel_id=SUBMODEL_ID,
                    path="Controls.start", input_arguments={"speed": 5}, timeout=20,
                )
            )  # fmt: skip
            process.terminate()
            code = await asyncio.wait_for(process.wait(), 30)
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
    assert line.decode().strip() == "running; the shell says Controls.speed is 10"
    assert result.execution_state is ExecutionState.COMPLETED
    assert result.output_arguments == {"rpm": 500}
    assert code == 0
