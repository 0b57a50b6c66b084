"""Process agents reaching `running`, and back after SIGKILL: the runtime, then the API.

Two sets of figures from one run, beside one anchor.

The runtime: `ProcessRuntime` itself, in this process, with its shipped settings except
`ready_after=0` (`running` as soon as the process is up, as for the anchor). `apply` of
N workloads, then `observe()` polled until every one is `running`; then, one agent at a
time, SIGKILL its process and time until `observe()` shows a new process of it running.
Its restart backoff (0.5 s base, jittered down to half) is part of that figure: it is
the policy that keeps a crashing agent from spinning; the same kills are timed again
with the backoff at 1 ms, which leaves what noticing and restarting cost.

The service: a real `shopfloor serve --services api,agents` (SQLite, built-in CA,
`SHOPFLOOR_AGENT_READY_AFTER=0`, the reconciler's interval and the runtime's backoff at
their defaults), an organisation and an engineer made through the API. Timed from the
first of N `POST /api/v1/agents` (sent one after the other) until `GET /api/v1/agents`
lists all N `running`; then, one agent at a time, after a random pause of up to one
reconcile interval (2 s: kills then land anywhere in the reconciler's cycle, as crashes
do), SIGKILL its process (the pid the runtime records in
`<data_dir>/agents/<org>/<name>/process.json`) and time until
`GET /api/v1/agents/<name>` says `running` with `restarts` one higher, noting when the
new pid appeared in `process.json` (the runtime's restart) on the way. Then every
agent is deleted (the DELETEs sent together) and the agent processes still alive are
counted (the server's children and every agent pid seen): 0 expected. Each figure
includes the polling, one request at a time: the list every 50 ms, one agent every
20 ms (their cost to the server is part of the run: a list of 100 agents takes it about
16 ms). The API path adds, to the runtime's, the reconciler: it acts on what it
observes once per pass, a pass every 2 s when idle and every 0.1 s while something is
in motion (an agent just applied, pending or starting), so its interval is in the API
figures.

The anchor, in the same run: the same N processes spawned with
`asyncio.create_subprocess_exec`, and a bare process killed, its exit awaited and the
same command spawned again. Every agent runs `sleep`, so the figures measure the
supervision, not a program's start-up.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import signal
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil  # type: ignore[import-untyped]  # psutil ships no type information

from bench._scenario import Anchor, BenchContext, Figure, Goal, Scenario, ScenarioResult
from bench._servers import create_engineer, shopfloor_server
from bench._stats import percentile
from shopfloor.agents import ObservedState, ProcessRuntime, RestartPolicy, Workload
from shopfloor.agents.capability import AgentsSettings

__all__ = ["AgentsScenario"]

COMMAND = ("sleep", "86400")
#: The service's client sleeps this long between two requests (one request at a time):
#: a list of 100 agents costs the server about 16 ms, one agent 4 to 7 ms; polling
#: faster would load the loop that runs the reconciler being timed.
LIST_POLL, AGENT_POLL = 0.05, 0.02
#: Longest wait for the API to show what the reconciler does.
API_TIMEOUT = 120.0
#: The reconciler's default pass interval: a kill waits a random part of it first, so
#: that kills land at random moments of the reconciler's cycle, as crashes do.
RECONCILE_INTERVAL = float(AgentsSettings.model_fields["reconcile_interval"].default)


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


@dataclass(slots=True)
class _Service:
    """What the service run measured."""

    ready: float = 0.0  # first POST → the list shows all `running`
    posted: float = 0.0  # first POST → last POST answered
    polls: int = 0  # list requests until all `running`
    back: list[float] = field(default_factory=list)  # kill → API `running`, restarts + 1
    respawned: list[float] = field(default_factory=list)  # kill → new pid in process.json
    kill_polls: int = 0
    deleted: float = 0.0  # DELETEs sent together → the list is empty
    answers: Counter[int] = field(default_factory=Counter)  # DELETE status codes
    listed_after: int = -1  # agents the list still holds after the DELETEs
    left: int = -1  # agent processes alive after the DELETEs
    zombies: int = 0  # and unreaped ones
    pids: set[int] = field(default_factory=set)  # every agent pid seen


def _pid(agents_dir: Path, name: str) -> int | None:
    """The pid the process runtime records for an agent (None between two processes)."""
    try:
        pid = json.loads((agents_dir / name / "process.json").read_bytes()).get("pid")
    except (OSError, ValueError):
        return None
    return None if pid is None else int(pid)


def _agent_processes(server_pid: int | None, seen: set[int]) -> tuple[list[Any], int]:
    """Agent processes alive (children of the server, and every pid seen, that run the
    agents' command), and how many children of the server are zombies."""
    candidates: dict[int, Any] = {}
    if server_pid is not None:
        with contextlib.suppress(psutil.Error):
            candidates = {p.pid: p for p in psutil.Process(server_pid).children(recursive=True)}
    for pid in seen - candidates.keys():
        with contextlib.suppress(psutil.Error):
            candidates[pid] = psutil.Process(pid)
    alive, zombies = [], 0
    for process in candidates.values():
        with contextlib.suppress(psutil.Error):
            if process.status() == psutil.STATUS_ZOMBIE:
                zombies += 1
            elif tuple(process.cmdline()) == COMMAND:
                alive.append(process)
    return alive, zombies


async def _service_figures(
    url: str, server_pid: int, agents_dir: Path, user: dict[str, str], count: int, kills: int,
    out: _Service,
) -> None:  # fmt: skip
    names = [f"agent-{n:03d}" for n in range(count)]
    async with httpx.AsyncClient(base_url=url, headers=user, timeout=60) as http:

        async def call(method: str, path: str, **kwargs: Any) -> Any:
            response = await http.request(method, path, **kwargs)
            if response.status_code >= 300:
                raise RuntimeError(f"{method} {path}: {response.status_code} {response.text}")
            return response.json() if response.content else None

        started = time.perf_counter()
        for name in names:
            spec = {"name": name, "command": list(COMMAND), "restart_policy": "always"}
            await call("POST", "/api/v1/agents", json=spec)
        out.posted = time.perf_counter() - started
        while True:
            page = await call("GET", "/api/v1/agents", params={"limit": count})
            out.polls += 1
            states = [item["status"]["state"] for item in page["items"]]
            if len(states) == count and all(state == "running" for state in states):
                break
            if time.perf_counter() - started > API_TIMEOUT:
                raise RuntimeError(f"agents not all running after {API_TIMEOUT:.0f} s: {states}")
            await asyncio.sleep(LIST_POLL)
        out.ready = time.perf_counter() - started
        out.pids |= {pid for name in names if (pid := _pid(agents_dir, name)) is not None}

        rng = random.Random(kills)
        for n in range(kills):
            name = names[n % count]
            await asyncio.sleep(rng.uniform(0, RECONCILE_INTERVAL))
            before = (await call("GET", f"/api/v1/agents/{name}"))["status"]
            pid = _pid(agents_dir, name)
            if before["state"] != "running" or pid is None:
                raise RuntimeError(f"agent {name} is not running before its kill: {before}")
            killed = time.perf_counter()
            os.kill(pid, signal.SIGKILL)
            respawned: float | None = None
            while True:
                new = _pid(agents_dir, name)
                if respawned is None and new is not None and new != pid:
                    respawned = time.perf_counter() - killed
                    out.pids.add(new)
                status = (await call("GET", f"/api/v1/agents/{name}"))["status"]
                out.kill_polls += 1
                if status["state"] == "running" and status["restarts"] > before["restarts"]:
                    break
                if time.perf_counter() - killed > API_TIMEOUT:
                    raise RuntimeError(f"agent {name} not running again: {status}")
                await asyncio.sleep(AGENT_POLL)
            out.back.append(time.perf_counter() - killed)
            out.respawned.append(out.back[-1] if respawned is None else respawned)

        deleting = time.perf_counter()
        answers = await asyncio.gather(*(http.delete(f"/api/v1/agents/{name}") for name in names))
        out.answers.update(response.status_code for response in answers)
        while True:  # 202: still being removed when the answer came
            page = await call("GET", "/api/v1/agents", params={"limit": count})
            out.listed_after = int(page["total"])
            if not out.listed_after or time.perf_counter() - deleting > API_TIMEOUT:
                break
            await asyncio.sleep(LIST_POLL)
        out.deleted = time.perf_counter() - deleting
    alive, out.zombies = _agent_processes(server_pid, out.pids)
    out.left = len(alive)


def _run_service(ctx: BenchContext, count: int, kills: int) -> _Service:
    out = _Service()
    data_dir = ctx.work_dir / "agents-service"
    settings = {"SHOPFLOOR_AGENT_READY_AFTER": "0"}
    try:
        with shopfloor_server(
            ctx.python, data_dir, services="api,agents", log_name="agents", settings=settings
        ) as server:
            try:
                org, user = create_engineer(server.url)
                agents_dir = data_dir / "agents" / org
                asyncio.run(
                    _service_figures(server.url, server.pid, agents_dir, user, count, kills, out)
                )
            finally:
                out.pids |= {p.pid for p in _agent_processes(server.pid, out.pids)[0]}
    finally:
        # Agents outlive the platform by design: what a failed run left is ended here.
        for process in _agent_processes(None, out.pids)[0]:
            with contextlib.suppress(psutil.Error):
                process.kill()
    return out


class AgentsScenario(Scenario, name="agents"):
    title = "Agents: 100 process agents to running, and SIGKILL to running again (runtime, API)"

    def run(self, ctx: BenchContext, result: ScenarioResult) -> None:
        count, kills = ctx.pick(10, 100), ctx.pick(3, 30)
        bare_ready, bare_back = asyncio.run(_bare_figures(count, kills))
        ready, back, alive = asyncio.run(_runtime_figures(ctx.work_dir / "agents", count, kills))
        # The same kills with the restart backoff out of the way: the supervision alone.
        _, quick_back, _ = asyncio.run(
            _runtime_figures(ctx.work_dir / "agents-nobackoff", 10, kills, backoff=0.001)
        )
        service = _run_service(ctx, count, kills)
        bare_anchor = Anchor(label=f"{count} bare `create_subprocess_exec`", value=bare_ready)
        result.figures.append(
            Figure(
                key="agents.start_all",
                label=f"runtime: {count} process agents applied until all `running`",
                value=ready,
                unit="s",
                anchor=bare_anchor,
                detail=f"{count / ready:,.0f} agents/s",
            )
        )
        series = (
            ("sigkill", "runtime: SIGKILL → running again", back,
             f"{kills} kills, one at a time; restart backoff included"),
            ("sigkill_nobackoff", "runtime: SIGKILL → running again, backoff 1 ms", quick_back,
             "the restart backoff set to 1 ms: what noticing and restarting costs"),
        )  # fmt: skip
        self._percentiles(result, series, bare_back)
        result.figures.append(
            Figure(
                key="agents.api_start_all",
                label=f"API: {count} agents POSTed until `GET /api/v1/agents` lists all `running`",
                value=service.ready,
                unit="s",
                anchor=bare_anchor,
                detail=f"{count / service.ready:,.0f} agents/s; the {count} POSTs, one after "
                f"the other, were answered after {service.posted:.2f} s; then "
                f"{service.polls} list requests",
            )
        )
        respawned = ", ".join(
            f"{name} {percentile(service.respawned, q) * 1000:,.0f} ms"
            for name, q in (("p50", 50), ("p99", 99))
        )
        api_series = (
            ("api_sigkill", "API: SIGKILL → `running` again with restarts + 1", service.back,
             f"{kills} kills, one at a time, {service.kill_polls} requests of the agent; "
             f"the new pid was in `process.json` (the runtime's restart) after {respawned}"),
        )  # fmt: skip
        self._percentiles(result, api_series, bare_back)
        answers = ", ".join(f"{n} answered {code}" for code, n in sorted(service.answers.items()))
        result.figures.append(
            Figure(
                key="agents.api_left",
                label="API: agent processes alive after DELETE of every agent",
                value=service.left,
                unit="processes",
                goal=Goal(kind="at_most", threshold=0),
                detail=f"{count} DELETEs sent together, {answers}; the list was empty "
                f"{service.deleted:.2f} s after they were sent; {service.zombies} zombie "
                f"processes; {len(service.pids)} agent pids seen in the run",
            )
        )
        result.notes.append(
            "API: `shopfloor serve --services api,agents`, SQLite, built-in CA, "
            "`SHOPFLOOR_AGENT_READY_AFTER=0`, reconcile interval and restart backoff at their "
            f"defaults; one HTTP request at a time, the list polled every "
            f"{LIST_POLL * 1000:.0f} ms, one agent every {AGENT_POLL * 1000:.0f} ms."
        )
        result.check("runtime: every agent ran", alive == count, f"{alive} of {count} running")
        result.check("runtime: every kill came back", len(back) == kills, f"{len(back)} of {kills}")
        result.check("times are positive", min(back) > 0 and ready > 0 and bare_ready > 0)
        result.check(
            "API: every kill came back",
            len(service.back) == kills and min(service.back, default=0) > 0,
            f"{len(service.back)} of {kills}",
        )
        result.check(
            "API: every DELETE answered 204 or 202",
            sum(service.answers.values()) == count and set(service.answers) <= {202, 204},
            answers,
        )
        result.check(
            "API: no agent listed after the DELETEs",
            service.listed_after == 0,
            f"{service.listed_after} listed",
        )

    @staticmethod
    def _percentiles(
        result: ScenarioResult,
        series: Sequence[tuple[str, str, list[float], str]],
        bare_back: list[float],
    ) -> None:
        for key, label, times, detail in series:
            for name, q in (("p50", 50), ("p99", 99)):
                result.figures.append(
                    Figure(
                        key=f"agents.{key}_{name}",
                        label=f"{label}, {name}",
                        value=percentile(times, q) * 1000,
                        unit="ms",
                        anchor=Anchor(
                            label=f"bare kill, wait, spawn again, {name}",
                            value=percentile(bare_back, q) * 1000,
                        ),
                        detail=detail,
                    )
                )
