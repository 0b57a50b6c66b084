"""Edge flows: 1,000 timer flows in one `shopfloor serve`, all on one cron second, start
and stop, and a message-triggered flow over MQTT, each beside a bare counterpart.

What runs where:

- the platform: the real `shopfloor serve --services api,flows,mqtt` in a process of
  its own, SQLite, a temporary data dir, the embedded MQTT broker on a free port;
  `SHOPFLOOR_FLOWS_RUNS_KEPT` 200 (so that `/runs` still holds every run of the
  measured windows when they are read), everything else at its default. Three such
  processes in a row, one per part: the timers (interval flows), the cron flows, the
  message flow; an organisation and an engineer made through the API in each;
- the flows, all made with `POST /api/v1/flows` and started and stopped with one
  `PATCH /api/v1/flows/commands` (`flow_ids`: all of them): each an `interval` trigger
  (1 s) → `set_variable` (`x = 1 + 1`) → `condition` (`variables.x == 2`); for the
  cron part the same tasks behind a `cron` trigger that fires every few seconds, all
  flows on the same second (cronsim reads a sixth field as seconds, first:
  `*/5 * * * * *` fires at :00, :05, :10 … of every minute);
- the delays: `GET /api/v1/flows/{id}/runs` of every flow (64 requests at a time) once
  the windows are over; a run's delay is its first task's `started` minus its
  `trigger.at` (the time the event was due). Every event due in a window counts: one
  whose run had not started when the runs were read is counted as missed, at the wait
  it had had by then (a lower bound, so a backlog shows in the percentiles);
- memory per flow: VmRSS of the server (`/proc/<pid>/status`) at the end of the first
  window, with every flow running, minus VmRSS before the first flow was made, / N;
- the timers' phases: started by one command (the figure of starting them all), every
  flow's timer would fire on the same instant of each second; so they are stopped and
  started again in 20 commands 50 ms apart, their phases spread over the second as the
  anchor's are (the cron part measures them all on one instant);
- one flow started and stopped, one command every 0.5 s, for a window while the others
  run; the others' delays in that window beside theirs in the window before (nothing
  toggled);
- the anchor of the timer figures: the same number of bare asyncio tasks (uvloop, as
  `shopfloor serve` runs) in a process of its own (`main(["timers", ...])` of this
  module), run before the platform starts: each sleeps to its next due time on a 1 s
  grid (phases spread evenly over the second), then all on the same wall-clock
  multiple of the cron period; wake minus due, memory per task (VmRSS with the tasks
  running minus before), the time to create them all and to cancel them all, and one
  task cancelled and made again every 0.5 s while the others run;
- the message flow: a thing publishes over MQTT (mosquitto_pub, QoS 1, a window of 20)
  numbered JSON readings to channel A; the flow (message trigger on A → `condition`
  → `transform` → `publish` to channel B as the flow) runs each; a `mosquitto_sub`
  (QoS 1, the same thing, connected to B) counts what arrives on B, by number: every
  message published must arrive once, with the value the transform computes. The
  flows' queue (`SHOPFLOOR_FLOWS_QUEUE_SIZE`) is set above the message count, so that
  the figure is the rate runs keep up with, not a queue's overflow. Its anchor: the
  bare amqtt broker of `bench/amqtt_anchor.py` (the amqtt the platform embeds) and a
  relay of aiomqtt in a process of its own (`main(["relay", ...])`) that subscribes A,
  evaluates the same three CEL expressions with the same library
  (`common-expression-language`), and publishes B at QoS 1, one message at a time as a
  flow runs its events; the same publisher, subscriber and message count.

Every wait is bounded: an engine that cannot keep up gives figures that say so (runs
missed, a command that did not end within its bound is reported as not measured),
and a server that is still busy when its part ends is killed.

With py-spy (`--no-profile` skips it) the timers' server is sampled for an extra,
unmeasured window after the measured ones, every flow running.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import math
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import httpx

from bench._mqtt import MAX_INFLIGHT, MqttTarget, publish_one
from bench._profile import profile_during
from bench._scenario import Anchor, BenchContext, Figure, Goal, Scenario, ScenarioResult
from bench._servers import (
    HOST,
    ServerProcess,
    amqtt_anchor_server,
    create_engineer,
    free_port,
    shopfloor_server,
    stop_counting,
)
from bench._stats import percentile

__all__ = ["FlowsScenario"]

ROOT = Path(__file__).resolve().parents[2]
SERVICES = "api,flows,mqtt"
FLOWS = "/api/v1/flows"
RUNS_KEPT = 200
KIB = 1024
#: Requests for `/runs` in flight at once while the runs are read: each waits behind
#: the server's busy threads, so many at once read 1,000 flows within the bound.
READERS = 64
#: The cron expression of every cron flow in full and quick mode (seconds first).
CRON_EVERY = {False: 5, True: 2}
#: One command to the toggled flow every this many seconds.
TOGGLE_EVERY = 0.5
PROFILE_RATE = 100
#: The message flow's expressions, and the anchor relay's: the same CEL.
CONDITION = "payload.t > -273.15"
TRANSFORM = "payload.t * 9.0 / 5.0 + 32.0"
PAYLOAD = "{'n': payload.n, 'f': variables.f}"
#: Node-RED 5.0.7's figures on a machine of this kind (docs/benchmarks.md, Edge flows).
MEMORY_GOAL = Goal(kind="below", threshold=330.0)
TIMER_P99_GOAL = Goal(kind="at_most", threshold=4.0)
CRON_P99_GOAL = Goal(kind="below", threshold=81.0)
STOP_ONE_GOAL = Goal(kind="below", threshold=120.0)
RATE_GOAL = Goal(kind="at_least", threshold=12_000.0)


@dataclass(frozen=True, slots=True)
class Plan:
    flows: int
    #: The measured window of the timers (and, after it, the window of toggling).
    window: float
    toggle_window: float
    cron_every: int
    cron_window: float
    profile_seconds: float
    #: Longest one `PATCH /flows/commands` of every flow, or the reading of the runs,
    #: may take before it is given up.
    bound: float
    #: The message flow: messages of the warm-up, seconds the measured run should take,
    #: and its bounds in messages.
    warm_messages: int
    message_seconds: float
    min_messages: int
    max_messages: int

    @classmethod
    def of(cls, ctx: BenchContext) -> Plan:
        return cls(
            flows=ctx.pick(100, 1000), window=ctx.pick(2.0, 12.0),
            toggle_window=ctx.pick(2.0, 8.0), cron_every=CRON_EVERY[ctx.quick],
            cron_window=ctx.pick(2.0, 10.0), profile_seconds=ctx.pick(1.0, 10.0),
            bound=ctx.pick(30.0, 30.0), warm_messages=ctx.pick(30, 200),
            message_seconds=ctx.pick(1.0, 10.0), min_messages=ctx.pick(50, 500),
            max_messages=ctx.pick(2_000, 50_000),
        )  # fmt: skip

    @property
    def cron(self) -> str:
        return f"*/{self.cron_every} * * * * *"


def _vmrss(pid: int | str = "self") -> int:
    """Resident memory of a process in bytes, as the kernel counts it (VmRSS)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * KIB
    raise RuntimeError(f"no VmRSS for process {pid}")


def _use_uvloop() -> None:
    with contextlib.suppress(ImportError):
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


# -- the anchor of the timers: bare asyncio tasks, in a process of their own ----------


async def _bare_timers(n: int, window: float, toggle_window: float, every: int) -> dict[str, Any]:
    """Everything the timer anchor measures, as JSON-ready data (times in seconds)."""
    loop = asyncio.get_running_loop()
    rss_before = _vmrss()
    #: (due, wake - due) of each task, by task; due in wall-clock seconds.
    delays: list[list[tuple[float, float]]] = [[] for _ in range(n)]
    started = 0
    everyone = asyncio.Event()

    async def ticker(index: int, phase: float, running: asyncio.Event | None = None) -> None:
        nonlocal started
        started += 1
        if started == n:
            everyone.set()
        if running is not None:
            running.set()
        mine = delays[index]
        due = time.time() + 1.0 + phase
        while True:
            await asyncio.sleep(max(0.0, due - time.time()))
            mine.append((due, time.time() - due))
            due = max(due + 1.0, time.time())

    began = time.perf_counter()
    tasks = [loop.create_task(ticker(i, i / n)) for i in range(n)]
    await everyone.wait()
    start_seconds = time.perf_counter() - began
    await asyncio.sleep(2.0)  # every task on its grid
    w0 = time.time()
    await asyncio.sleep(window)
    w1 = time.time()
    rss_after = _vmrss()
    # One task stopped and started, one command every TOGGLE_EVERY, while the others run.
    stops: list[float] = []
    starts: list[float] = []
    t0 = time.time()
    for step in itertools.count():
        if time.time() >= t0 + toggle_window:
            break
        began = time.perf_counter()
        if step % 2 == 0:
            tasks[0].cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await tasks[0]
            stops.append(time.perf_counter() - began)
        else:
            running = asyncio.Event()
            tasks[0] = loop.create_task(ticker(0, 0.0, running))
            await running.wait()
            starts.append(time.perf_counter() - began)
        await asyncio.sleep(max(0.0, t0 + (step + 1) * TOGGLE_EVERY - time.time()))
    t1 = time.time()
    began = time.perf_counter()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    stop_seconds = time.perf_counter() - began

    def within(a: float, b: float, skip_first: bool) -> list[float]:
        return [d for i, mine in enumerate(delays) if not (skip_first and i == 0)
                for due, d in mine if a <= due < b]  # fmt: skip

    interval = within(w0, w1, False)
    others_quiet, others_toggled = within(w0, w1, True), within(t0, t1, True)
    # All on the same second: the next multiples of `every` in wall-clock time.
    cron: list[float] = []

    async def on_the_second(until: float) -> None:
        while True:
            due = (math.floor(time.time() / every) + 1) * every
            if due >= until:
                return
            await asyncio.sleep(max(0.0, due - time.time()))
            cron.append(time.time() - due)

    until = (math.floor(time.time() / every) + 1) * every + every * max(1, round(window / every))
    bursts = [loop.create_task(on_the_second(until)) for _ in range(n)]
    await asyncio.gather(*bursts)
    return {
        "rss_before": rss_before, "rss_after": rss_after, "start_seconds": start_seconds,
        "stop_seconds": stop_seconds, "interval": interval, "window": w1 - w0,
        "others_quiet": others_quiet, "others_toggled": others_toggled,
        "stops": stops, "starts": starts, "cron": cron,
    }  # fmt: skip


# -- the anchor of the message flow: a relay of aiomqtt -------------------------------


async def _relay(port: int, topic_in: str, topic_out: str) -> None:
    import aiomqtt
    import cel

    condition, transform, payload = (cel.compile(s) for s in (CONDITION, TRANSFORM, PAYLOAD))
    relayed = 0
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    client_id = f"bench-relay-{uuid.uuid4().hex[:8]}"
    async with aiomqtt.Client(
        HOST, port, identifier=client_id, protocol=aiomqtt.ProtocolVersion.V311
    ) as client:
        await client.subscribe(topic_in, qos=1)

        async def pump() -> None:
            nonlocal relayed
            async for message in client.messages:
                body = message.payload
                data = json.loads(body if isinstance(body, (bytes, str)) else b"null")
                bindings: dict[str, Any] = {"payload": data, "variables": {}, "trigger": {}}
                if condition.execute(bindings) is not True:
                    continue
                bindings["variables"] = {"f": transform.execute(bindings)}
                out = json.dumps(payload.execute(bindings)).encode()
                await client.publish(topic_out, out, qos=1)
                relayed += 1

        pumping = asyncio.create_task(pump())
        print("ready", flush=True)
        await stop.wait()
        pumping.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await pumping
    print(f"checked {relayed}", flush=True)


_MAIN = "import sys; from bench.scenarios.flows import main; main(sys.argv[1:])"


def _start(python: str, *args: str) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    return subprocess.Popen(
        [python, "-c", _MAIN, *args], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        text=True, cwd=ROOT, env=env,
    )  # fmt: skip


def main(argv: list[str]) -> None:
    _use_uvloop()
    if len(argv) == 5 and argv[0] == "timers":
        n, window, toggle_window, every = int(argv[1]), float(argv[2]), float(argv[3]), int(argv[4])
        print(json.dumps(asyncio.run(_bare_timers(n, window, toggle_window, every))), flush=True)
    elif len(argv) == 4 and argv[0] == "relay":
        asyncio.run(_relay(int(argv[1]), argv[2], argv[3]))
    else:
        sys.exit("usage: main(['timers', N, WINDOW, TOGGLE_WINDOW, CRON_EVERY]) or "
                 "main(['relay', PORT, TOPIC_IN, TOPIC_OUT])")  # fmt: skip


# -- the platform: flows, commands, runs ----------------------------------------------


def _timer_flow(flow_id: str, trigger: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": flow_id, "name": f"bench {flow_id}", "triggers": [trigger],
        "tasks": [
            {"id": "count", "type": "set_variable",
             "parameters": {"name": "x", "value": "1 + 1"}, "next": ["check"]},
            {"id": "check", "type": "condition", "parameters": {"expression": "variables.x == 2"}},
        ],
    }  # fmt: skip


def _stamp(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


@dataclass
class Command:
    """One `PATCH /flows/commands`: how long it took (inf if not within its bound) and
    how many flows it changed."""

    seconds: float
    ok: int
    note: str = ""

    @property
    def finished(self) -> bool:
        return math.isfinite(self.seconds)


def _command(http: httpx.Client, command: str, flow_ids: list[str], bound: float) -> Command:
    began = time.perf_counter()
    try:
        response = http.patch(
            f"{FLOWS}/commands", json={"command": command, "flow_ids": flow_ids}, timeout=bound
        )
    except httpx.TimeoutException:
        return Command(math.inf, 0, f"no answer within {bound:.0f} s{_states(http, flow_ids)}")
    seconds = time.perf_counter() - began
    if response.status_code != 200:
        return Command(seconds, 0, f"{response.status_code} {response.text[:200]}")
    results = response.json()["results"]
    ok = sum(1 for r in results if r["ok"])
    first_error = next((r["error"] for r in results if not r["ok"]), None)
    return Command(seconds, ok, f"first refusal: {first_error}" if first_error else "")


def _states(http: httpx.Client, flow_ids: list[str]) -> str:
    """The states of `flow_ids` now, as `/flows/status` says (it may be slow too)."""
    try:
        response = http.get(f"{FLOWS}/status", timeout=15)
    except httpx.TimeoutException:
        return "; `/flows/status` did not answer within 15 s either"
    wanted = set(flow_ids)
    states: dict[str, int] = {}
    for flow in response.json()["flows"]:
        if flow["flow_id"] in wanted:
            states[flow["state"]] = states.get(flow["state"], 0) + 1
    return "; then " + ", ".join(f"{n:,} {state}" for state, n in sorted(states.items()))


def _first_runs(runs: Runs, flows: int, sent_at: float) -> str:
    """When the flows had started, from their runs: the first event of an interval flow
    is due 1 s after its start, and its events run in order."""
    firsts = [
        min(_stamp(r["trigger"]["at"]) for r in flow) for flow in runs.by_flow.values() if flow
    ]
    if not firsts:
        return "; no flow ran"
    last = max(firsts) - 1.0 - sent_at
    if len(firsts) < flows:
        return f"; {len(firsts):,} of {flows:,} flows had run when the runs were read"
    return (
        f"; every flow had run when the runs were read, the last started about "
        f"{last:.1f} s after the `PATCH` was sent (its first event due 1 s later)"
    )


def _create_flows(http: httpx.Client, docs: list[dict[str, Any]]) -> float:
    began = time.perf_counter()
    for doc in docs:
        response = http.post(FLOWS, json=doc, timeout=60)
        if response.status_code != 201:
            raise RuntimeError(f"POST {FLOWS}: {response.status_code} {response.text[:300]}")
    return time.perf_counter() - began


@dataclass
class Runs:
    """The runs of every flow as `/runs` answered, and when they were read."""

    by_flow: dict[str, list[dict[str, Any]]]
    read_at: float
    unread: int


async def _read_runs_async(url: str, headers: dict[str, str], ids: list[str], bound: float) -> Runs:
    found: dict[str, list[dict[str, Any]]] = {}
    queue = list(reversed(ids))
    deadline = time.monotonic() + bound
    read_at = time.time()
    limits = httpx.Limits(max_connections=READERS, max_keepalive_connections=READERS)
    async with httpx.AsyncClient(
        base_url=url, headers=headers, timeout=bound, limits=limits
    ) as http:

        async def reader() -> None:
            while queue and time.monotonic() < deadline:
                flow_id = queue.pop()
                try:
                    response = await http.get(f"{FLOWS}/{flow_id}/runs")
                except httpx.TimeoutException:
                    return
                if response.status_code == 200:
                    found[flow_id] = response.json()["runs"]

        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(bound + 5):
                await asyncio.gather(*(reader() for _ in range(READERS)))
    return Runs(found, read_at, len(ids) - len(found))


def _read_runs(url: str, headers: dict[str, str], ids: list[str], bound: float) -> Runs:
    return asyncio.run(_read_runs_async(url, headers, ids, bound))


@dataclass
class Delays:
    """Trigger → first task of every event due in a window, in seconds (an event whose
    run had not started when read counts at its wait so far, and as missed)."""

    values: list[float] = field(default_factory=list)
    due: int = 0
    missed: int = 0

    def add(self, other: Delays) -> None:
        self.values += other.values
        self.due += other.due
        self.missed += other.missed

    def p(self, q: float) -> float:
        return percentile(self.values, q) * 1000


def _delays(
    runs: list[dict[str, Any]], dues: Sequence[float], a: float, b: float, read_at: float
) -> Delays:
    """The delays of one flow's events due in [a, b): those of its runs triggered then
    (`trigger.at`) whose first task started; `dues` are the times events were due then,
    and each due event without such a run is missed, counted at its wait so far."""
    found = Delays(due=len(dues))
    ats: list[float] = []
    for run in runs:
        at = _stamp(run["trigger"]["at"])
        if a <= at < b and run["tasks"]:
            ats.append(at)
            found.values.append(_stamp(run["tasks"][0]["started"]) - at)
    # The dues no run matched (within 2 ms: an interval's `at` is measured), the latest
    # first: the shortest waits, so that the lower bound stays one.
    unmatched = [due for due in dues if not any(abs(due - at) < 0.002 for at in ats)]
    found.missed = max(0, len(dues) - len(ats))
    for due in sorted(unmatched, reverse=True)[: found.missed]:
        found.values.append(max(0.0, read_at - due))
    found.due = max(found.due, len(ats))
    return found


def _interval_dues(runs: list[dict[str, Any]], a: float, b: float) -> list[float]:
    """The due times in [a, b) of a flow on a 1 s grid, its phase read from its runs."""
    if not runs:
        return [a + 0.5 + k for k in range(round(b - a))]
    ref = _stamp(runs[0]["trigger"]["at"])
    first = ref + math.ceil(a - ref)
    return [first + k for k in range(round(b - a) + 1) if first + k < b]


def _started_between(runs: dict[str, list[dict[str, Any]]], a: float, b: float) -> int:
    return sum(1 for flow in runs.values() for run in flow
               if run["tasks"] and a <= _stamp(run["tasks"][0]["started"]) < b)  # fmt: skip


def _server_settings(extra: dict[str, str] | None = None) -> dict[str, str]:
    return {"SHOPFLOOR_FLOWS_RUNS_KEPT": str(RUNS_KEPT), **(extra or {})}


def _finish(server: ServerProcess, stopped: Command) -> None:
    """A server whose flows did not all stop is killed: its SIGTERM would wait on them."""
    if not stopped.finished and server.process.poll() is None:
        server.process.kill()
        server.process.wait()


@dataclass
class TimerRun:
    flows: int
    created_seconds: float
    rss_before: int
    rss_after: int
    runs_held: float
    #: Flows running when the memory was read (their first event due 1 s after start).
    running_then: int
    start: Command
    stop: Command
    window: float
    all_quiet: Delays
    others_quiet: Delays
    others_toggled: Delays
    achieved: float
    stops: list[float]
    starts: list[float]
    toggle_failures: list[str]
    unread: int
    dropped: int


def _toggle(
    http: httpx.Client, flow_id: str, seconds: float, bound: float
) -> tuple[list[float], list[float], list[str], float, float]:
    """Stop and start one flow, one command every TOGGLE_EVERY, for `seconds`; it is
    running again at the end. (stop times, start times, failures, window start, end)."""
    stops: list[float] = []
    starts: list[float] = []
    failures: list[str] = []
    t0 = time.time()
    step = 0
    while time.time() < t0 + seconds or step % 2 == 1:
        command = "stop" if step % 2 == 0 else "start"
        done = _command(http, command, [flow_id], bound)
        if done.ok != 1:
            failures.append(f"{command}: {done.note}")
        (stops if command == "stop" else starts).append(done.seconds)
        step += 1
        time.sleep(max(0.0, t0 + step * TOGGLE_EVERY - time.time()))
    return stops, starts, failures, t0, time.time()


def _timers(ctx: BenchContext, plan: Plan, result: ScenarioResult) -> TimerRun:
    ids = [f"timer-{i:04d}" for i in range(plan.flows)]
    trigger = {"type": "interval", "parameters": {"seconds": 1}}
    with shopfloor_server(
        ctx.python, ctx.work_dir / "flows-timers" / "data", services=SERVICES,
        mqtt_port=free_port(), log_name="flows-timers", settings=_server_settings(),
    ) as server:  # fmt: skip
        _, headers = create_engineer(server.url, "Bench Flows Timers")
        stopped = Command(math.inf, 0, "not sent")
        try:
            with httpx.Client(base_url=server.url, headers=headers, timeout=60) as http:
                time.sleep(1.0)
                rss_before = _vmrss(server.pid)
                created = _create_flows(http, [_timer_flow(i, trigger) for i in ids])
                sent_at = time.time()
                start = _command(http, "start", ids, plan.bound)
                # Started by one command, every flow's timer has the same phase: each
                # second is a burst (what the cron part measures). The anchor's tasks have
                # their phases spread over the second; so have the flows measured here:
                # stopped, then started again in PHASES commands, one every 1/PHASES s.
                _command(http, "stop", ids, plan.bound)
                _start_spread(http, ids, plan.bound)
                time.sleep(2.0)  # the last flows started reach their first event
                w0 = time.time()
                time.sleep(plan.window)
                w1 = time.time()
                rss_after = _vmrss(server.pid)
                stops, starts, failures, t0, t1 = _toggle(
                    http, ids[0], plan.toggle_window, plan.bound
                )
                # Not in quick mode: 100 flows keep the loop busy about 0.2 % of the
                # time, so one second of GIL samples is often none at all.
                if ctx.profile and not ctx.quick:
                    _profile(ctx, server, plan, result)
                runs = _read_runs(server.url, headers, ids, plan.bound)
                dropped = _dropped(http, plan.bound)
                stopped = _command(http, "stop", ids, plan.bound)
        finally:
            _finish(server, stopped)
    if not start.finished:
        start.note += _first_runs(runs, plan.flows, sent_at)
    all_quiet, others_quiet, others_toggled = Delays(), Delays(), Delays()
    firsts = [
        min(_stamp(r["trigger"]["at"]) for r in flow) for flow in runs.by_flow.values() if flow
    ]
    running_then = sum(1 for first in firsts if first - 1.0 < w1)
    held = [sum(1 for r in flow if r["tasks"] and _stamp(r["tasks"][0]["started"]) < w1)
            for flow in runs.by_flow.values()]  # fmt: skip
    for flow_id, flow in runs.by_flow.items():
        quiet = _delays(flow, _interval_dues(flow, w0, w1), w0, w1, runs.read_at)
        all_quiet.add(quiet)
        if flow_id != ids[0]:
            others_quiet.add(quiet)
            others_toggled.add(_delays(flow, _interval_dues(flow, t0, t1), t0, t1, runs.read_at))
    return TimerRun(
        flows=plan.flows, created_seconds=created, rss_before=rss_before, rss_after=rss_after,
        runs_held=sum(held) / max(len(held), 1), running_then=running_then, start=start,
        stop=stopped, window=w1 - w0,
        all_quiet=all_quiet, others_quiet=others_quiet, others_toggled=others_toggled,
        achieved=_started_between(runs.by_flow, w0, w1) / (w1 - w0), stops=stops,
        starts=starts, toggle_failures=failures, unread=runs.unread, dropped=dropped,
    )  # fmt: skip


#: The commands the timers' flows are started in, for their phases to spread.
PHASES = 20


def _start_spread(http: httpx.Client, ids: list[str], bound: float) -> None:
    began = time.monotonic()
    for k in range(PHASES):
        _command(http, "start", ids[k::PHASES], bound)
        time.sleep(max(0.0, began + (k + 1) / PHASES - time.monotonic()))


def _dropped(http: httpx.Client, bound: float) -> int:
    """Events the flows dropped (queue full), from `/flows/status`; -1 if it did not answer."""
    try:
        response = http.get(f"{FLOWS}/status", timeout=bound)
    except httpx.TimeoutException:
        return -1
    return sum(flow["counters"]["dropped"] for flow in response.json()["flows"])


def _profile(ctx: BenchContext, server: ServerProcess, plan: Plan, result: ScenarioResult) -> None:
    raw = Path(ctx.artifacts_dir or ctx.work_dir) / "flows-timers-profile.txt"
    _, profile, errors = profile_during(
        server.pid, plan.profile_seconds, raw, lambda: time.sleep(plan.profile_seconds),
        rate=PROFILE_RATE,
    )  # fmt: skip
    if profile is None:
        result.check("py-spy recorded the platform (timers)", False, errors)
        return
    result.profile = profile
    result.check(
        "py-spy recorded the platform (timers)", profile.samples > 0, f"{profile.samples} samples"
    )


@dataclass
class CronRun:
    start: Command
    stop: Command
    delays: Delays
    bursts: int
    unread: int


def _cron(ctx: BenchContext, plan: Plan) -> CronRun:
    ids = [f"cron-{i:04d}" for i in range(plan.flows)]
    trigger = {"type": "cron", "parameters": {"expression": plan.cron}}
    every = plan.cron_every
    with shopfloor_server(
        ctx.python, ctx.work_dir / "flows-cron" / "data", services=SERVICES,
        mqtt_port=free_port(), log_name="flows-cron", settings=_server_settings(),
    ) as server:  # fmt: skip
        _, headers = create_engineer(server.url, "Bench Flows Cron")
        stopped = Command(math.inf, 0, "not sent")
        try:
            with httpx.Client(base_url=server.url, headers=headers, timeout=60) as http:
                _create_flows(http, [_timer_flow(i, trigger) for i in ids])
                start = _command(http, "start", ids, plan.bound)
                # The window: the bursts due from the next whole period on; the runs are
                # read just before the burst after the last (each has its period to end).
                first = (math.floor(time.time() / every) + 1) * every
                bursts = max(1, round(plan.cron_window / every))
                dues = [first + k * every for k in range(bursts)]
                time.sleep(max(0.0, dues[-1] + every - 0.5 - time.time()))
                runs = _read_runs(server.url, headers, ids, plan.bound)
                stopped = _command(http, "stop", ids, plan.bound)
        finally:
            _finish(server, stopped)
    delays = Delays()
    for flow in runs.by_flow.values():
        delays.add(_delays(flow, dues, dues[0] - 0.5, dues[-1] + 0.5, runs.read_at))
    return CronRun(start, stopped, delays, bursts, runs.unread)


# -- the message flow over MQTT -------------------------------------------------------


def _reading(n: int) -> tuple[str, float]:
    """Message `n` as published, and the `f` the transform makes of it."""
    t = 20.0 + (n % 100) / 10
    return json.dumps({"n": n, "t": t}), t * 9.0 / 5.0 + 32.0


class _Counter:
    """A `mosquitto_sub` at QoS 1 counting, by number, the messages that arrive; entering
    publishes a marker on its topic until it arrives (the subscription then exists)."""

    def __init__(self, target: MqttTarget, marker: MqttTarget) -> None:
        self._target, self._marker = target, marker
        self._process: subprocess.Popen[bytes] | None = None
        self._thread: threading.Thread | None = None
        self._changed = threading.Condition()
        self.seen: dict[int, int] = {}
        self.wrong: list[str] = []
        self.markers = 0
        self.last_at = 0.0

    def __enter__(self) -> _Counter:
        argv = ["mosquitto_sub", *self._target.argv(), "-q", "1", "-t", self._target.topic]
        argv += ["-i", f"bench-flows-sub-{uuid.uuid4().hex[:8]}"]
        self._process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        assert self._process.stdout is not None
        self._thread = threading.Thread(
            target=self._count, args=(self._process.stdout,), daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 30
        while True:
            publish_one(self._marker, '{"ready": 1}', timeout=5.0)
            with self._changed:
                if self._changed.wait_for(lambda: self.markers > 0, timeout=0.5):
                    return self
            if time.monotonic() > deadline or self._process.poll() is not None:
                self.__exit__()
                raise RuntimeError("mosquitto_sub was not subscribed within 30 s")

    def __exit__(self, *_exc: object) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            self._process.wait(10)
        if self._thread is not None:
            self._thread.join(10)
        if self._process is not None and self._process.stdout is not None:
            self._process.stdout.close()

    def _count(self, stream: IO[bytes]) -> None:
        for line in stream:
            try:
                data = json.loads(line)
            except ValueError:
                data = None
            now = time.monotonic()
            with self._changed:
                if isinstance(data, dict) and "ready" in data:
                    self.markers += 1
                elif isinstance(data, dict) and isinstance(data.get("n"), int):
                    n = data["n"]
                    self.seen[n] = self.seen.get(n, 0) + 1
                    if abs(float(data.get("f", math.nan)) - _reading(n)[1]) > 1e-9:
                        self.wrong.append(line.decode(errors="replace")[:100])
                else:
                    self.wrong.append(line.decode(errors="replace")[:100])
                self.last_at = now
                self._changed.notify_all()

    def wait(self, numbers: range, *, quiet: float, timeout: float) -> None:
        called = time.monotonic()
        deadline = called + timeout
        with self._changed:
            while sum(1 for n in numbers if n in self.seen) < len(numbers):
                give_up = min(deadline, max(self.last_at, called) + quiet)
                if time.monotonic() >= give_up:
                    return
                self._changed.wait(min(0.2, give_up - time.monotonic()))


@dataclass
class MessageLoad:
    sent: int
    published: bool
    arrived: int
    twice: int
    seconds: float
    failure: str = ""

    @property
    def rate(self) -> float:
        return self.arrived / self.seconds if self.seconds > 0 else 0.0

    @property
    def complete(self) -> bool:
        return self.published and self.arrived == self.sent and self.twice == 0


def _send(target: MqttTarget, counter: _Counter, numbers: range, work: Path) -> MessageLoad:
    """Publish `numbers` (one mosquitto_pub, QoS 1) and wait until each arrived."""
    work.mkdir(parents=True, exist_ok=True)
    lines = work / f"readings-{numbers.start}-{numbers.stop}.txt"
    lines.write_text("".join(_reading(n)[0] + "\n" for n in numbers))
    argv = ["mosquitto_pub", *target.argv(), "-q", "1", "-M", str(MAX_INFLIGHT)]
    argv += ["-t", target.topic, "-i", f"bench-flows-pub-{uuid.uuid4().hex[:8]}", "-l"]
    timeout = 60.0 + len(numbers) / 20
    began = time.monotonic()
    with lines.open("rb") as stdin:
        process = subprocess.Popen(
            argv, stdin=stdin, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
    try:
        _, errors = process.communicate(timeout=timeout)
        failure = (
            ""
            if process.returncode == 0
            else f"mosquitto_pub exit {process.returncode}: {errors[-200:]!r}"
        )
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        failure = f"mosquitto_pub not done within {timeout:.0f} s"
    counter.wait(numbers, quiet=10.0, timeout=timeout)
    with counter._changed:
        arrived = sum(1 for n in numbers if n in counter.seen)
        twice = sum(1 for n in numbers if counter.seen.get(n, 0) > 1)
        last = counter.last_at
    return MessageLoad(len(numbers), not failure, arrived, twice, max(last - began, 1e-9), failure)


@dataclass
class MessageRun:
    flow: MessageLoad
    bare: MessageLoad
    warm: int
    wrong: list[str]
    bare_wrong: list[str]
    counters: dict[str, int]
    relayed: int


def _api(http: httpx.Client, method: str, path: str, body: Any = None) -> dict[str, Any]:
    response = http.request(method, path, json=body)
    if response.status_code >= 300:
        raise RuntimeError(f"{method} {path}: {response.status_code} {response.text[:300]}")
    found: dict[str, Any] = response.json() if response.content else {}
    return found


def _message_flow(ctx: BenchContext, plan: Plan) -> MessageRun:
    work = ctx.work_dir / "flows-messages"
    port = free_port()
    queue = str(plan.max_messages + plan.warm_messages + 100)
    with shopfloor_server(
        ctx.python, work / "data", services=SERVICES, mqtt_port=port, log_name="flows-messages",
        settings=_server_settings({"SHOPFLOOR_FLOWS_QUEUE_SIZE": queue}),
    ) as server:  # fmt: skip
        _, headers = create_engineer(server.url, "Bench Flows Messages")
        with httpx.Client(base_url=server.url, headers=headers, timeout=60) as http:
            thing = _api(http, "POST", "/api/v1/things", {"name": "bench-oven"})
            a = _api(http, "POST", "/api/v1/channels", {"name": "bench-in"})["id"]
            b = _api(http, "POST", "/api/v1/channels", {"name": "bench-out"})["id"]
            for channel in (a, b):
                _api(http, "PUT", f"/api/v1/channels/{channel}/things/{thing['id']}")
            doc = {
                "id": "relay", "name": "bench relay A → B",
                "triggers": [{"type": "message", "parameters": {"channel_id": a}}],
                "tasks": [
                    {"id": "check", "type": "condition",
                     "parameters": {"expression": CONDITION}, "next": ["convert"]},
                    {"id": "convert", "type": "transform",
                     "parameters": {"set": {"f": TRANSFORM}}, "next": ["publish"]},
                    {"id": "publish", "type": "publish",
                     "parameters": {"channel_id": b, "payload": PAYLOAD}},
                ],
            }  # fmt: skip
            _api(http, "POST", FLOWS, doc)
            started = _command(http, "start", ["relay"], 30)
            if started.ok != 1:
                raise RuntimeError(f"the message flow did not start: {started.note}")
            into, out = (
                MqttTarget(port=port, topic=f"channels/{c}/messages", username=thing["id"],
                           password=thing["key"])
                for c in (a, b)
            )  # fmt: skip
            with _Counter(out, out) as counter:
                warm = _send(into, counter, range(plan.warm_messages), work)
                messages = min(
                    plan.max_messages,
                    max(plan.min_messages, round(warm.rate * plan.message_seconds)),
                )
                numbers = range(plan.warm_messages, plan.warm_messages + messages)
                flow = _send(into, counter, numbers, work)
                wrong = list(counter.wrong)
            counters = _api(http, "GET", f"{FLOWS}/relay/status")["counters"]
    with amqtt_anchor_server(ctx.python, work) as broker:
        relay = _start(ctx.python, "relay", str(broker.port), "bench/a", "bench/b")
        relayed = -1
        try:
            assert relay.stdout is not None
            if relay.stdout.readline().strip() != "ready":
                raise RuntimeError("the anchor's relay did not start")
            anonymous = secrets.token_urlsafe(12)  # amqtt's anonymous access takes any
            into, out = (
                MqttTarget(port=broker.port, topic=t, username="bench-anchor", password=anonymous)
                for t in ("bench/a", "bench/b")
            )
            with _Counter(out, out) as counter:
                _send(into, counter, range(plan.warm_messages), work / "bare")
                bare = _send(into, counter, numbers, work / "bare")
                bare_wrong = list(counter.wrong)
        finally:
            relayed = stop_counting(relay, timeout=30)
    return MessageRun(flow, bare, plan.warm_messages, wrong, bare_wrong, counters, relayed)


# -- the scenario -----------------------------------------------------------------------


def _bare(ctx: BenchContext, plan: Plan) -> dict[str, Any]:
    process = _start(
        ctx.python, "timers", str(plan.flows), str(plan.window), str(plan.toggle_window),
        str(plan.cron_every),
    )  # fmt: skip
    try:
        out, _ = process.communicate(timeout=plan.window * 3 + plan.toggle_window + 120)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    if process.returncode != 0:
        raise RuntimeError(f"the timer anchor failed with {process.returncode}")
    found: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return found


def _ms(values: list[float], q: float) -> float:
    return percentile(values, q) * 1000


def _seconds(command: Command) -> str:
    if command.finished:
        return f"{command.seconds:.2f} s, {command.ok:,} flows changed"
    return f"not finished: {command.note}"


class FlowsScenario(Scenario, name="flows"):
    title = "Edge flows: 1,000 timers, one cron second, start/stop, a message flow over MQTT"

    def run(self, ctx: BenchContext, result: ScenarioResult) -> None:
        plan = Plan.of(ctx)
        bare = _bare(ctx, plan)
        timers = _timers(ctx, plan, result)
        cron = _cron(ctx, plan)
        messages = _message_flow(ctx, plan)
        self._report_timers(result, plan, timers, bare)
        self._report_cron(result, plan, cron, bare)
        self._report_commands(result, plan, timers, cron, bare)
        self._report_messages(result, messages)
        result.notes.append(
            f"{plan.flows:,} flows per part; windows: timers {plan.window:.0f} s, toggling "
            f"{plan.toggle_window:.0f} s, cron {plan.cron_window:.0f} s (`{plan.cron}`); each "
            f"`PATCH /flows/commands` of every flow and the reading of the runs bounded at "
            f"{plan.bound:.0f} s. The platform, its clients and the anchors share the machine; "
            "the anchor of the timers ran first, alone."
        )

    def _report_timers(
        self, result: ScenarioResult, plan: Plan, run: TimerRun, bare: dict[str, Any]
    ) -> None:
        # Per flow running then: on an engine that has not started every flow by then,
        # the documents of those waiting are counted in the memory of those running.
        per_flow = (run.rss_after - run.rss_before) / max(run.running_then, 1) / KIB
        bare_per_task = (bare["rss_after"] - bare["rss_before"]) / plan.flows / KIB
        result.figures.append(Figure(
            key="flows.memory_per_flow", label=f"memory per running flow ({run.flows:,} flows)",
            value=per_flow, unit="KiB", goal=MEMORY_GOAL,
            anchor=Anchor(label="bare asyncio task on a timer", value=bare_per_task),
            detail=f"VmRSS {run.rss_before / 2**20:.1f} MiB before the first flow, "
            f"{run.rss_after / 2**20:.1f} MiB with {run.flows:,} flows made and "
            f"{run.running_then:,} of them running (started by then), each holding "
            f"{run.runs_held:.1f} run records on average then; making the {run.flows:,} flows "
            f"(`POST`, one after the other) took {run.created_seconds:.1f} s",
        ))  # fmt: skip
        quiet = run.all_quiet
        for name, q in (("p50", 50), ("p99", 99)):
            result.figures.append(Figure(
                key=f"flows.timer_{name}",
                label=f"interval (1 s) trigger → first task, {run.flows:,} flows, {name}",
                value=quiet.p(q), unit="ms", goal=TIMER_P99_GOAL if name == "p99" else None,
                anchor=Anchor(label=f"bare asyncio sleep to a 1 s grid, wake - due, {name}",
                              value=_ms(bare["interval"], q)),
                detail=f"{quiet.due:,} events due in {run.window:.1f} s, {quiet.missed:,} of "
                "them not started when the runs were read (counted at their wait so far); "
                f"the anchor {len(bare['interval']):,} wakes" if name == "p50" else "",
            ))  # fmt: skip
        expected = run.flows / 1.0
        result.figures.append(Figure(
            key="flows.timer_runs_per_second",
            label=f"runs started per second, {run.flows:,} flows every 1 s",
            value=run.achieved, unit="runs/s",
            anchor=Anchor(
                label="bare timer wakes per second", value=len(bare["interval"]) / bare["window"]
            ),
            detail=f"expected {expected:,.0f} runs/s; {quiet.missed:,} of {quiet.due:,} events due "
            f"in the window missed (not started when read), {run.dropped:,} events dropped "
            "(a full queue, or waiting when the toggled flow stopped; -1: not known)",
        ))  # fmt: skip
        result.check(
            "timers: the runs of every flow were read", run.unread == 0,
            f"{run.unread} of {run.flows} not read within {plan.bound:.0f} s",
        )  # fmt: skip
        lowest = min(quiet.values, default=-1.0)
        result.check(
            "timers: no run started before its trigger was due", lowest >= 0,
            f"lowest delay {lowest * 1000:.3f} ms",
        )  # fmt: skip
        result.check(
            "timer anchor: every task woke in the window",
            len(bare["interval"]) >= plan.flows * (round(bare["window"]) - 1),
            f"{len(bare['interval']):,} wakes in {bare['window']:.1f} s",
        )  # fmt: skip

    def _report_cron(
        self, result: ScenarioResult, plan: Plan, run: CronRun, bare: dict[str, Any]
    ) -> None:
        for name, q in (("p50", 50), ("p99", 99)):
            result.figures.append(Figure(
                key=f"flows.cron_{name}",
                label=f"cron trigger → first task, {plan.flows:,} flows on one second, {name}",
                value=run.delays.p(q), unit="ms", goal=CRON_P99_GOAL if name == "p99" else None,
                anchor=Anchor(label=f"bare asyncio tasks woken on one second, {name}",
                              value=_ms(bare["cron"], q)),
                detail=f"`{plan.cron}`: {run.bursts} seconds with all {plan.flows:,} due, "
                f"{run.delays.due:,} events, {run.delays.missed:,} not started when read "
                f"({plan.cron_every - 0.5:.1f} s after the last); starting them: "
                f"{_seconds(run.start)}; stopping them: {_seconds(run.stop)}"
                if name == "p50" else "",
            ))  # fmt: skip
        result.check(
            "cron: the runs of every flow were read", run.unread == 0,
            f"{run.unread} of {plan.flows} not read within {plan.bound:.0f} s",
        )  # fmt: skip

    def _report_commands(
        self, result: ScenarioResult, plan: Plan, timers: TimerRun, cron: CronRun,
        bare: dict[str, Any],
    ) -> None:  # fmt: skip
        for key, verb, command, anchor, what in (
            ("start_all", "start", timers.start, bare["start_seconds"], "create every task"),
            ("stop_all", "stop", timers.stop, bare["stop_seconds"], "cancel every task"),
        ):
            result.figures.append(Figure(
                key=f"flows.{key}",
                label=f"{verb} {plan.flows:,} flows with one `PATCH /flows/commands`",
                value=command.seconds, unit="s",
                anchor=Anchor(label=f"bare: {what}", value=anchor),
                detail=_seconds(command) + ("" if command.finished else
                                            " (the server was killed at the end)"),
            ))  # fmt: skip
        for key, label, values, anchor, goal in (
            ("stop_one", "stop one flow while the others run", timers.stops, bare["stops"],
             STOP_ONE_GOAL),
            ("start_one", "start one flow while the others run", timers.starts, bare["starts"],
             None),
        ):  # fmt: skip
            finite = [v for v in values if math.isfinite(v)]
            slowest = max(finite, default=math.nan) * 1000
            unanswered = len(values) - len(finite)
            result.figures.append(Figure(
                key=f"flows.{key}", label=f"{label}, p50", value=_ms(values, 50), unit="ms",
                goal=goal, anchor=Anchor(label="bare: cancel one task and await it"
                                         if key == "stop_one" else "bare: create one task",
                                         value=_ms(anchor, 50)),
                detail=f"{len(values)} commands, slowest {slowest:.0f} ms"
                + (f", {unanswered} not answered" if unanswered else ""),
            ))  # fmt: skip
        result.check(
            "toggling: every command to the one flow was applied", not timers.toggle_failures,
            "; ".join(timers.toggle_failures[:3]),
        )  # fmt: skip
        quiet, toggled = timers.others_quiet.p(99), timers.others_toggled.p(99)
        bare_quiet, bare_toggled = _ms(bare["others_quiet"], 99), _ms(bare["others_toggled"], 99)
        for key, label, value, anchor, delays in (
            ("others_p99_quiet", "nothing else happening", quiet, bare_quiet, timers.others_quiet),
            ("others_p99_toggled", f"one flow stopped/started every {TOGGLE_EVERY} s", toggled,
             bare_toggled, timers.others_toggled),
        ):  # fmt: skip
            result.figures.append(Figure(
                key=f"flows.{key}",
                label=f"the other {plan.flows - 1:,} flows' trigger → first task p99, {label}",
                value=value, unit="ms", anchor=Anchor(label="bare tasks, the same", value=anchor),
                detail=f"{delays.due:,} events, {delays.missed:,} missed"
                + (f"; toggled / quiet {toggled / quiet:.2f}x, bare "
                   f"{bare_toggled / bare_quiet:.2f}x"
                   if key == "others_p99_toggled" and quiet and bare_quiet else ""),
            ))  # fmt: skip

    def _report_messages(self, result: ScenarioResult, run: MessageRun) -> None:
        flow, bare = run.flow, run.bare
        result.figures.append(Figure(
            key="flows.message_rate",
            label="message flow: MQTT in → condition → transform → publish → MQTT out",
            value=flow.rate, unit="msg/s", goal=RATE_GOAL,
            anchor=Anchor(label="bare aiomqtt relay (same CEL) on bare amqtt", value=bare.rate),
            detail=f"{flow.sent:,} messages after {run.warm} of warm-up, the last arrived "
            f"{flow.seconds:.1f} s after the first was sent; the anchor {bare.sent:,} in "
            f"{bare.seconds:.2f} s; the flow's counters {run.counters}",
        ))  # fmt: skip
        for name, load, wrong in (
            ("message flow", flow, run.wrong),
            ("relay anchor", bare, run.bare_wrong),
        ):
            result.check(
                f"{name}: every message published arrived once", load.complete,
                f"{load.arrived:,} of {load.sent:,} arrived, {load.twice} twice"
                + (f"; {load.failure}" if load.failure else ""),
            )  # fmt: skip
            result.check(
                f"{name}: every message arrived with the transform's value", not wrong,
                "; ".join(wrong[:3]),
            )  # fmt: skip
        result.check(
            "message flow: no run failed or was dropped",
            run.counters.get("failed", -1) == 0 and run.counters.get("dropped", -1) == 0,
            str(run.counters),
        )
