"""A simulated machine served as a real OPC UA server (asyncua).

    python examples/sdk/opcua_machine_sim.py --port 4840

The object `Machine` (namespace `urn:shopfloor:example-machine`, index 2) holds

| node | type | |
|---|---|---|
| `ns=2;s=Temperature` | Double | warms towards 60 °C while running, cools towards 22 °C |
| `ns=2;s=SpindleSpeed` | Int32 | 1200 rpm while running, 0 when stopped |
| `ns=2;s=State` | String | `RUNNING` or `STOPPED` |
| `ns=2;s=Parts` | Int32 | parts made, one every `part_seconds` while running |

and the methods `ns=2;s=start` and `ns=2;s=stop` (no arguments; each answers the new
state). It starts `RUNNING`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from asyncua import ua
from asyncua.common.methods import uamethod
from asyncua.server.server import Server

__all__ = ["NAMESPACE", "NODES", "SimulatedMachine"]

NAMESPACE = "urn:shopfloor:example-machine"
#: The variables' node ids, by the name the agent gives them.
NODES = {
    "temperature": "ns=2;s=Temperature",
    "spindle_speed": "ns=2;s=SpindleSpeed",
    "state": "ns=2;s=State",
    "parts": "ns=2;s=Parts",
}
RUNNING, STOPPED = "RUNNING", "STOPPED"
RUNNING_SPEED = 1200
HOT, AMBIENT = 60.0, 22.0

logger = logging.getLogger("opcua_machine_sim")


class SimulatedMachine:
    """The machine and its OPC UA server on `host:port`; `async with` starts and stops it.

    `shelf_file` is asyncua's cache of the standard address space: with one, a server
    starts in a fraction of a second instead of two or three.
    """

    def __init__(
        self,
        port: int = 4840,
        *,
        host: str = "127.0.0.1",
        tick_seconds: float = 0.2,
        part_seconds: float = 1.0,
        shelf_file: Path | None = None,
    ) -> None:
        self.host, self.port = host, port
        self.tick_seconds, self.part_seconds = tick_seconds, part_seconds
        self.shelf_file = shelf_file
        self.state = RUNNING
        self.temperature = AMBIENT
        self.parts = 0
        self._since_part = 0.0
        self._server: Server | None = None
        self._nodes: dict[str, Any] = {}
        self._ticker: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"opc.tcp://{self.host}:{self.port}/"

    async def start(self) -> None:
        server = Server()
        await server.init(shelf_file=self.shelf_file)
        server.disable_clock()  # its 1 s loop would make every stop last a second
        server.set_endpoint(self.url)
        server.set_server_name("Shopfloor simulated machine")
        index = await server.register_namespace(NAMESPACE)
        machine = await server.nodes.objects.add_object(
            ua.NodeId("Machine", index), ua.QualifiedName("Machine", index)
        )
        initial = {
            "Temperature": ua.Variant(self.temperature, ua.VariantType.Double),
            "SpindleSpeed": ua.Variant(self._speed(), ua.VariantType.Int32),
            "State": ua.Variant(self.state, ua.VariantType.String),
            "Parts": ua.Variant(self.parts, ua.VariantType.Int32),
        }
        for name, variant in initial.items():
            self._nodes[name] = await machine.add_variable(
                ua.NodeId(name, index), ua.QualifiedName(name, index), variant
            )
        for name, target in (("start", RUNNING), ("stop", STOPPED)):
            await machine.add_method(
                ua.NodeId(name, index), ua.QualifiedName(name, index),
                self._method(target), [], [ua.VariantType.String],
            )  # fmt: skip
        await server.start()
        self._server = server
        self._ticker = asyncio.create_task(self._tick(), name=f"machine on {self.port}")
        logger.info("simulated machine serving %s", self.url)

    async def stop(self) -> None:
        ticker, self._ticker = self._ticker, None
        if ticker is not None:
            ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticker
        server, self._server = self._server, None
        if server is not None:
            await server.stop()

    async def set_state(self, state: str) -> str:
        """Run or stop the machine, as its `start` and `stop` methods do."""
        self.state = state
        await self._write()
        logger.info("machine %s", state)
        return state

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    def _method(self, target: str) -> Any:
        @uamethod  # type: ignore[untyped-decorator]
        async def method(parent: ua.NodeId) -> str:
            return await self.set_state(target)

        return method

    def _speed(self) -> int:
        return RUNNING_SPEED if self.state == RUNNING else 0

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(self.tick_seconds)
            goal = HOT if self.state == RUNNING else AMBIENT
            self.temperature += (goal - self.temperature) * 0.05
            if self.state == RUNNING:
                self._since_part += self.tick_seconds
                if self._since_part >= self.part_seconds:
                    self._since_part = 0.0
                    self.parts += 1
            await self._write()

    async def _write(self) -> None:
        values = {
            "Temperature": ua.Variant(round(self.temperature, 2), ua.VariantType.Double),
            "SpindleSpeed": ua.Variant(self._speed(), ua.VariantType.Int32),
            "State": ua.Variant(self.state, ua.VariantType.String),
            "Parts": ua.Variant(self.parts, ua.VariantType.Int32),
        }
        for name, variant in values.items():
            await self._nodes[name].write_value(variant)


async def serve(host: str, port: int) -> None:
    async with SimulatedMachine(port, host=host):
        await asyncio.Event().wait()


def main() -> None:
    parser = argparse.ArgumentParser(description="A simulated machine over OPC UA.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=4840)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("asyncua").setLevel(logging.WARNING)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()
