"""Agents under the process runtime: many reaching `running`, and back after SIGKILL.

`ProcessRuntime` itself, as the agents service drives it (the service and its API are
not built yet): `apply` of N workloads, then `observe()` polled until every one is
`running`; then, one agent at a time, SIGKILL its process and time until `observe()`
shows a new process of it running. The runtime runs with its shipped settings except
`ready_after=0` (`running` as soon as the process is up, as for the anchor); its restart
backoff (0.5 s base, jittered down to half) is part of the figure: it is the policy
that keeps a crashing agent from spinning.

The anchor, in the same run: the same N processes spawned with
`asyncio.create_subprocess_exec`, and a bare process killed, its exit awaited and the
same command spawned again. Every agent runs `sleep`, so the figures measure the
supervision, not a program's start-up.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

from bench._scenario import Anchor, BenchContext, Figure, Scenario, ScenarioResult
from bench._stats import percentile
from shopfloor.agents import ObservedState, ProcessRuntime, RestartPolicy, Workload

__all__ = ["AgentsScenario"]

COMMAND = ("sleep", "86400")


def _workload(n: int) -> Workload:
    return Workload(
        key=f"bench/agent-{n:03d}", name=f"agent-{n:03d}", version="1", command=COMMAND,
        restart_policy=RestartPolicy.ALWAYS,
    )  # fmt: skip


async def _runtime_figures(
    data_dir: Path, count: int, kills: int, *, backoff: float | None = None
) -> tuple[float, list[float], int]:
    """(seconds for `count` to run, kill→running-again seconds, processes left running)."""
    settings: dict[str, float] = {"ready_after": 0}
    if backoff is not None:
        settings |= {"restart_backoff_base": backoff, "restart_backoff_cap": backoff}
    runtime = ProcessRuntime.from_settings(settings, data_dir=data_dir)
    async with runtime:
        try:
            started = time.perf_counter()
            for n in range(count):
                await runtime.apply(_workload(n))
            while True:
                seen = await runtime.observe()
                if len(seen) == count and all(
                    o.state is ObservedState.RUNNING for o in seen.values()
                ):
                    break
                await asyncio.sleep(0.005)
            ready = time.perf_counter() - started
            back: list[float] = []
            for n in range(kills):
                key = _workload(n % count).key
                pid = int((await runtime.observe())[key].detail["pid"])
                killed = time.perf_counter()
                os.kill(pid, signal.SIGKILL)
                while True:
                    now = (await runtime.observe())[key]
                    if now.state is ObservedState.RUNNING and now.detail.get("pid") != pid:
                        break
                    await asyncio.sleep(0.002)
                back.append(time.perf_counter() - killed)
            alive = sum(
                o.state is ObservedState.RUNNING for o in (await runtime.observe()).values()
            )
        finally:
            for key in list(await runtime.observe()):
                await runtime.remove(key)
    return ready, back, alive


async def _bare_figures(count: int, kills: int) -> tuple[float, list[float]]:
    processes: list[asyncio.subprocess.Process] = []
    try:
        started = time.perf_counter()
        for _ in range(count):
            processes.append(await asyncio.create_subprocess_exec(*COMMAND))
        ready = time.perf_counter() - started
        back: list[float] = []
        for n in range(kills):
            index = n % count
            killed = time.perf_counter()
            processes[index].kill()
            await processes[index].wait()
            processes[index] = await asyncio.create_subprocess_exec(*COMMAND)
            back.append(time.perf_counter() - killed)
        return ready, back
    finally:
        for process in processes:
            if process.returncode is None:
                process.kill()
                await process.wait()


class AgentsScenario(Scenario, name="agents"):
    title = "Agents: 100 process agents to running, and SIGKILL to running again"

    def run(self, ctx: BenchContext, result: ScenarioResult) -> None:
        count, kills = ctx.pick(10, 100), ctx.pick(3, 30)
        bare_ready, bare_back = asyncio.run(_bare_figures(count, kills))
        ready, back, alive = asyncio.run(_runtime_figures(ctx.work_dir / "agents", count, kills))
        # The same kills with the restart backoff out of the way: the supervision alone.
        _, quick_back, _ = asyncio.run(
            _runtime_figures(ctx.work_dir / "agents-nobackoff", 10, kills, backoff=0.001)
        )
        result.figures.append(
            Figure(
                key="agents.start_all",
                label=f"{count} process agents applied until all `running`",
                value=ready,
                unit="s",
                anchor=Anchor(label=f"{count} bare `create_subprocess_exec`", value=bare_ready),
                detail=f"{count / ready:,.0f} agents/s",
            )
        )
        series = (
            ("sigkill", "", back, f"{kills} kills, one at a time; restart backoff included"),
            ("sigkill_nobackoff", ", backoff 1 ms", quick_back,
             "the restart backoff set to 1 ms: what noticing and restarting costs"),
        )  # fmt: skip
        for key, label, times, detail in series:
            for name, q in (("p50", 50), ("p99", 99)):
                result.figures.append(
                    Figure(
                        key=f"agents.{key}_{name}",
                        label=f"SIGKILL → running again{label}, {name}",
                        value=percentile(times, q) * 1000,
                        unit="ms",
                        anchor=Anchor(
                            label=f"bare kill, wait, spawn again, {name}",
                            value=percentile(bare_back, q) * 1000,
                        ),
                        detail=detail,
                    )
                )
        result.check("every agent ran", alive == count, f"{alive} of {count} running")
        result.check("every kill came back", len(back) == kills, f"{len(back)} of {kills}")
        result.check("times are positive", min(back) > 0 and ready > 0 and bare_ready > 0)
