"""The press's Core on the SDK: the same behaviour as `kafka_python_core.py` in a
dozen lines, over whichever transport the platform names.

    SHOPFLOOR_CORE_TRANSPORT_URL=kafka://127.0.0.1:9092 SHOPFLOOR_CORE_TOPIC=aas.... \
    SHOPFLOOR_CORE_AAS_ID=https://example.org/aas/press-7 \
    PRESS_SUBMODEL_ID=https://example.org/sm/press-7/controls python -m examples.aas.press_core

(the `core.environment` of `POST /api/v1/aas/managers` holds the first three). Deployed
as an agent labelled `shopfloor.provision.aas: <AAS id>`, it is handed all of them and
the shell's definition (docs/aas-protocol.md).
"""

from __future__ import annotations

import asyncio
import os
import signal
from typing import Any

from shopfloor.aas import Core, CoreConfig


async def main() -> None:
    config = CoreConfig.from_env()
    core = Core(config)
    submodel_id = os.environ["PRESS_SUBMODEL_ID"]
    if config.aas_file:  # deployed as an agent: the platform handed over the definition
        ids = sorted(obj.id for obj in config.read_aas())
        print(f"defined by {config.aas_file.rsplit('/', 1)[-1]}: {' '.join(ids)}", flush=True)

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
