"""Agents for `python -m shopfloor.sdk.run tests.sdk.grpc_targets:<Class>.main`: each
prints what happened to it, so the test reading its output can tell."""

from __future__ import annotations

import asyncio

from shopfloor.sdk import Agent, config_seconds


class Slow(Agent):
    """Serves `slow(seconds)`, a call that takes that long."""

    async def setup(self) -> None:
        self.register("slow", self.slow)

    async def slow(self, seconds: float) -> str:
        print("slow call started", flush=True)
        await asyncio.sleep(seconds)
        return "finished"

    async def shutdown(self) -> None:
        print("shutdown ran", flush=True)


class Publisher(Agent):
    """Publishes `{"state": "running", "count": n}` every `config.interval` seconds."""

    async def run(self) -> None:
        interval = config_seconds(self.context.config, "interval", 0.5)
        count = 0
        while True:
            count += 1
            await self.publish_state({"state": "running", "count": count})
            await asyncio.sleep(interval)
