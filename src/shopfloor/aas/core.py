"""The Core SDK: write the asset's side of a shell in a few lines (docs/aas-protocol.md).

    core = Core(CoreConfig.from_env())        # or Core(topic=..., transport="kafka://...")

    @core.operation("Controls.start")         # an Operation of the shell's submodels
    async def start(arguments: dict) -> dict:
        return {"started": await machine.start(arguments["speed"])}

    async with core:                          # status handshake, replay, dedup: done
        await core.wait_running(within=60)
        speed = await core.get_value(submodel_id, "Controls.speed")

`SyncCore` is the same for threaded code (the guide's first style): handlers are plain
functions run in worker threads, `request_manager` blocks. The Core only asks the
Manager while the Manager is `running` (a request waits for that, up to its time), and
every request of the Manager is answered once, also across restarts of either side.
"""

from ._core import AsyncOperation, AsyncService, Core
from ._core_config import CoreConfig
from ._errors import ServiceFailed
from ._sync_core import SyncCore, SyncOperation, SyncService

__all__ = [
    "AsyncOperation",
    "AsyncService",
    "Core",
    "CoreConfig",
    "ServiceFailed",
    "SyncCore",
    "SyncOperation",
    "SyncService",
]
