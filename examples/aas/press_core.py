"""The press's Core on the SDK: the same behaviour as `kafka_python_core.py` in a
dozen lines, over whichever transport the platform names.

    SHOPFLOOR_CORE_TRANSPORT_URL=kafka://127.0.0.1:9092 SHOPFLOOR_CORE_TOPIC=aas.... \
    SHOPFLOOR_CORE_AAS_ID=https://example.org/aas/press-7 \
    PRESS_SUBMODEL_ID=https://example.org/sm/press-7/controls python -m examples.aas.press_core

(the `core.environment` of `POST /api/v1/aas/managers` holds the first three).
"""

from __future__ import annotations

import asyncio
import os
import signal
from typing import Any

from shopfloor.aas import Core, CoreConfig


async def main() -> None:
    core = Core(CoreConfig.from_env())
    submodel_id = os.environ["PRESS_SUBMODEL_ID"]

    @core.operation("Controls.start")
    async def start(arguments: dict[str, Any]) -> dict[str, Any]:
        await asyncio.sleep(0.1)  # the press spinning up
        return {"rpm": arguments["speed"] * 100}

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with core:
        await core.wait_running(within=300)
        speed = await core.get_value(submodel_id, "Controls.speed")
        print(f"running; the shell says Controls.speed is {speed}", flush=True)
        await stop.wait()


if __name__ == "__main__":
    asyncio.run(main())
