"""An OPC UA machine agent: the SDK's `Agent` over one machine's OPC UA server.

    {"machine_url": "opc.tcp://127.0.0.1:4840/", "grpc_port": 7443,
     "access": "relations"}                                              # config.json

It connects to its machine through the OPC UA connector (`machine_url`), subscribes to
its variables (`opcua_machine_sim.NODES`: temperature, spindle speed, state, parts) and

- publishes them every `interval` seconds (default 1) as SenML on its first provisioned
  channel (the `shopfloor.provision.mqtt` label), through the platform's HTTP adapter
  with its thing key: the same outbox, retries and backoff as `examples/agents/machine.py`;
- keeps its agent state current: `{"state": "running" | "stopped" | "unknown",
  "machine_state": "RUNNING", "connected": true, "connector": "connected"}`, published
  whenever the machine's state or the connector's link changes (a coordinator following
  it sees each change; `unknown` while the machine cannot be reached);
- answers the gRPC `Call` methods `start` and `stop` (the machine's own methods) and
  `read` (the current values, read from the machine).

Deploy it with `"module": "examples.sdk.opcua_machine_agent:main"` (`main` is
`OpcUaMachineAgent.main`).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx

from examples.agents.machine import Outbox, Pack, Platform, deliver
from shopfloor.sdk import Agent, AgentContextError, CallFailed, config_seconds
from shopfloor.sdk.connectors import (
    Connector,
    ConnectorError,
    Reading,
    connect,
)

from .opcua_machine_sim import NODES

__all__ = ["OpcUaMachineAgent", "main"]

#: The machine's methods, by the `Call` method that runs each.
METHODS = {"start": "ns=2;s=start", "stop": "ns=2;s=stop"}
UNITS = {"temperature": "Cel", "spindle_speed": "rpm"}
#: Packs waiting for the platform, at most (the oldest dropped past that).
QUEUE_LIMIT = 3600


class OpcUaMachineAgent(Agent):
    """One machine over OPC UA: telemetry to its channel, state to its followers."""

    machine: Connector[Any]

    async def setup(self) -> None:
        config = self.context.config
        url = config.get("machine_url")
        if not isinstance(url, str) or not url.startswith("opc.tcp://"):
            raise AgentContextError(f"config.machine_url is an opc.tcp:// URL, not {url!r}")
        try:
            self.interval = config_seconds(config, "interval", 1.0)
        except ValueError as exc:
            raise AgentContextError(str(exc)) from exc
        self.values: dict[str, Any] = {}
        self._changed = asyncio.Event()
        self.outbox = Outbox("platform", QUEUE_LIMIT)
        self.machine = connect(url)
        await self.machine.__aenter__()  # the link starts in the background
        self.machine.on_state(lambda _: self._changed.set())
        for name in METHODS:
            self.register(name, self._method(name))
        self.register("read", self.read)
        await self._publish()

    async def run(self) -> None:
        context = self.context
        if not (context.thing_key and context.channels and context.http_url):
            raise AgentContextError(
                "the machine agent publishes as its thing over HTTP: it needs the mqtt "
                "provisioner's SHOPFLOOR_THING_KEY and SHOPFLOOR_CHANNELS, and SHOPFLOOR_HTTP_URL"
            )
        channel = context.channels[0]
        url = self.context.config["machine_url"]
        self.log.info("machine %s: every %g s to channel %s (%s)", url, self.interval,
                      channel.name, channel.id)  # fmt: skip
        async with httpx.AsyncClient(timeout=10) as http, asyncio.TaskGroup() as tasks:
            platform = Platform(http, context.http_url, channel.id, context.thing_key)
            tasks.create_task(deliver(platform, self.outbox), name="to the platform")
            tasks.create_task(self._subscribe(), name="subscribe")
            tasks.create_task(self._states(), name="states")
            tasks.create_task(self._sample(), name="sample")

    async def shutdown(self) -> None:
        await self.machine.__aexit__(None, None, None)

    # -- the Call methods ---------------------------------------------------------------

    async def read(self) -> dict[str, Any]:
        """The machine's current values, read now."""
        try:
            readings = await self.machine.read_many(list(NODES.values()))
        except ConnectorError as exc:
            raise CallFailed(str(exc), code=exc.code) from exc
        return {name: reading.value for name, reading in zip(NODES, readings, strict=True)}

    def _method(self, name: str) -> Any:
        async def method() -> dict[str, Any]:
            try:
                state = await self.machine.call(METHODS[name])
            except ConnectorError as exc:
                raise CallFailed(str(exc), code=exc.code) from exc
            self.log.info("%s called: the machine is %s", name, state)
            return {"machine_state": state}

        return method

    # -- the work -----------------------------------------------------------------------

    async def _subscribe(self) -> None:
        names = {address: name for name, address in NODES.items()}
        reading: Reading
        async for reading in self.machine.subscribe(list(NODES.values()), interval=0.2):
            name = names[reading.address]
            value = reading.value if reading.good else None
            if self.values.get(name) != value:
                self.values[name] = value
                if name == "state":
                    self._changed.set()

    async def _states(self) -> None:
        while True:
            await self._changed.wait()
            self._changed.clear()
            await self._publish()

    async def _publish(self) -> None:
        connected = self.machine.connected
        machine_state = self.values.get("state") if connected else None
        state = {
            "state": machine_state.lower() if isinstance(machine_state, str) else "unknown",
            "machine_state": machine_state,
            "connected": connected,
            "connector": str(self.machine.state),
        }
        if state != self.state:
            await self.publish_state(state)

    async def _sample(self) -> None:
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while True:
            if self.machine.connected and len(self.values) == len(NODES):
                self.outbox.put(self.pack(time.time()))
            next_at = max(next_at + self.interval, loop.time())
            await asyncio.sleep(next_at - loop.time())

    def pack(self, now: float) -> Pack:
        """The current values as one SenML pack, named `<agent>:<variable>`."""
        records: Pack = []
        for name, value in self.values.items():
            if value is None:
                continue
            record: dict[str, Any] = {"n": name.replace("_", "-")}
            if name in UNITS:
                record["u"] = UNITS[name]
            record["vs" if isinstance(value, str) else "v"] = value
            records.append(record)
        if records:
            records[0] = {"bn": f"{self.name}:", "bt": round(now, 3), **records[0]}
        return records


#: The spec's `module` entry point.
main = OpcUaMachineAgent.main
