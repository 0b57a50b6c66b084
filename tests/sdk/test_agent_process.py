"""An `Agent` run as the platform runs it: `python -m shopfloor.sdk.run pkg.mod:Class.main`
in a process of its own, with the files and variables the platform hands it."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from pathlib import Path

import pytest

from shopfloor.sdk import AgentUnreachable

from .agentkit import AgentCa, Fleet, crl_server
from .test_agent_grpc import served_serial

ROOT = Path(__file__).resolve().parents[2]


class Output:
    """The lines a process writes on stdout, read as they come."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        assert process.stdout is not None
        self.stream = process.stdout
        self.lines: list[str] = []

    async def until(self, pattern: str) -> re.Match[str]:
        async with asyncio.timeout(20):
            while True:
                line = (await self.stream.readline()).decode()
                assert line, f"the agent ended before {pattern!r}:\n{''.join(self.lines)}"
                self.lines.append(line)
                if found := re.search(pattern, line):
                    return found

    async def rest(self) -> str:
        self.lines.append((await self.stream.read()).decode())
        return "".join(self.lines)


async def test_sighup_renews_and_sigterm_stops_gracefully(fleet: Fleet, ca: AgentCa) -> None:
    async with crl_server(ca) as platform_url:
        files = await ca.agent("slow", {"access": "organisation", "platform_url": platform_url})
        env = {
            **os.environ, "SHOPFLOOR_AGENT_FILES": str(files.folder),
            "SHOPFLOOR_AGENT_NAME": "slow", "SHOPFLOOR_AGENT_ORG": files.org_id,
        }  # fmt: skip
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "shopfloor.sdk.run", "tests.sdk.grpc_targets:Slow.main",
            cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        output = Output(process)
        try:
            port = int((await output.until(r"serving gRPC on 127\.0\.0\.1:(\d+)"))[1])
            caller = await fleet.start("caller")
            fleet.addresses["slow"] = f"127.0.0.1:{port}"
            assert await caller.call("slow", "slow", seconds=0) == "finished"

            renewed = await ca.renew(files)
            process.send_signal(signal.SIGHUP)
            await output.until(f"certificate {renewed:x} replaces")
            assert (
                await served_serial(port, ca, fleet.files["caller"], "slow.org1.agents") == renewed
            )

            call = asyncio.create_task(caller.call("slow", "slow", seconds=0.5))
            await output.until("slow call started")
            process.send_signal(signal.SIGTERM)
            assert await call == "finished"  # the call in flight ends within the grace
            async with asyncio.timeout(20):
                status = await process.wait()
            text = await output.rest()
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
    assert status == 0
    assert re.search(r"stopping: ending 0 follows, calls in flight have 5 s", text)
    assert text.index("stopped taking calls") < text.index("shutdown ran")
    with pytest.raises(AgentUnreachable):
        await caller.ping("slow")
