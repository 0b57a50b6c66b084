"""End-to-end latency at a fixed rate: publish over HTTP → readable through the readers API.

The load generator (`bench.loadgen`, its own process) publishes at a fixed rate; every
`probe_every`-th message carries a unique name and is polled for on the readers API
right after its 202. The anchor is the publish round trip of the bare ASGI endpoint at
the same rate from the same generator: the floor that client, loopback and uvicorn set.

The goal is judged at 2,000 msg/s. A full run also measures a lower rate, without a
goal, to tell the latency of the pipeline itself from the queueing of an overload.
"""

from __future__ import annotations

from dataclasses import dataclass

from bench._scenario import Anchor, BenchContext, Figure, Goal, Scenario, ScenarioResult
from bench._servers import (
    Counts,
    Drain,
    anchor_server,
    create_plant,
    shopfloor_server,
    wait_drained,
)
from bench._stats import median, percentile
from bench.loadgen import LoadResult, publish_at_rate

__all__ = ["LatencyScenario"]

GOAL_P99_MS = 50.0
GOAL_RATE = 2000.0
LOWER_RATE = 500.0


@dataclass(frozen=True, slots=True)
class RateRun:
    rate: float
    bare: LoadResult
    load: LoadResult
    drain: Drain
    cpu_share: float  # server CPU seconds per second of the measured load


class LatencyScenario(Scenario, name="latency"):
    title = "End-to-end latency at a fixed rate"

    def run(self, ctx: BenchContext, result: ScenarioResult) -> None:
        seconds = ctx.pick(2.0, 30.0)
        probe_every = ctx.pick(10, 50)
        rates = ctx.pick([300.0], [GOAL_RATE, LOWER_RATE])
        for index, rate in enumerate(rates):
            run = self._at_rate(ctx, rate, seconds, probe_every)
            self._check(result, run, probe_every)
            self._report(result, run, probe_every, goal=index == 0)
        result.notes.append(
            f"{seconds:.0f} s per rate after a warm-up, 32 keep-alive publishing connections; "
            "probes poll the readers API every 2 ms over up to 8 connections with a thing "
            "key, timed from the moment the publish request is written. The polls are load "
            "on the server too; their number is given with each figure."
        )

    @staticmethod
    def _at_rate(ctx: BenchContext, rate: float, seconds: float, probe_every: int) -> RateRun:
        out = ctx.work_dir / "loadgen.json"
        warmup = ctx.pick(1.0, 3.0)
        with anchor_server(ctx.python, ctx.work_dir) as anchor:
            bare = publish_at_rate(
                ctx.python,
                port=anchor.port,
                path="/http/channels/a/messages",
                key="anchor-key",
                rate=rate,
                seconds=seconds,
                out=out,
            )
        data_dir = ctx.work_dir / f"latency-{rate:.0f}"
        with shopfloor_server(ctx.python, data_dir) as server:
            plant = create_plant(server.url)
            publish_at_rate(
                ctx.python,
                port=server.port,
                path=plant.publish_path,
                key=plant.key,
                rate=rate,
                seconds=warmup,
                out=out,
            )
            before = Counts.read(server.url)
            cpu = server.cpu_seconds()
            load = publish_at_rate(
                ctx.python,
                port=server.port,
                path=plant.publish_path,
                key=plant.key,
                rate=rate,
                seconds=seconds,
                out=out,
                probe_every=probe_every,
                read_path=plant.read_path,
            )
            cpu = server.cpu_seconds() - cpu
            drain = wait_drained(server.url, before)
        return RateRun(rate, bare, load, drain, cpu / max(load.send_seconds, 1e-9))

    @staticmethod
    def _check(result: ScenarioResult, run: RateRun, probe_every: int) -> None:
        at = f"{run.rate:,.0f} msg/s"
        for who, load in (("anchor", run.bare), ("Shopfloor", run.load)):
            result.check(
                f"{who} at {at}: the fixed rate was kept (≥ 90 %)",
                load.achieved_rate >= 0.9 * load.target_rate and load.unsent == 0,
                f"{load.achieved_rate:,.0f} msg/s, {load.unsent} unsent",
            )
        load = run.load
        expected = load.accepted // probe_every
        result.check(
            f"every probe became readable at {at}",
            load.probes_lost == 0 and len(load.probe_ms) >= max(1, expected - 1),
            f"{len(load.probe_ms)} probes readable, {load.probes_lost} timed out",
        )
        result.check(
            f"latencies are positive at {at}",
            min(load.probe_ms, default=0) > 0 and min(run.bare.rtt_ms, default=0) > 0,
        )
        result.check(
            f"stored == accepted at {at}",
            run.drain.drained and run.drain.stored == run.drain.accepted,
            f"accepted {run.drain.accepted}, stored {run.drain.stored}",
        )
        result.check(
            f"every publish answered 202 or 503 (busy) at {at}",
            set(load.statuses) <= {"202", "503"},
            f"statuses {load.statuses}",
        )

    @staticmethod
    def _report(result: ScenarioResult, run: RateRun, probe_every: int, *, goal: bool) -> None:
        load, bare, at = run.load, run.bare, f"{run.rate:,.0f} msg/s"
        anchor_p50 = Anchor(
            label="bare ASGI endpoint, publish round trip p50", value=median(bare.rtt_ms)
        )
        anchor_p99 = Anchor(
            label="bare ASGI endpoint, publish round trip p99", value=percentile(bare.rtt_ms, 99)
        )
        key = f"latency.{run.rate:.0f}"
        result.figures += [
            Figure(
                key=f"{key}.e2e_p99",
                label=f"publish → readable, p99 at {at}",
                value=percentile(load.probe_ms, 99),
                unit="ms",
                anchor=anchor_p99,
                goal=Goal(kind="below", threshold=GOAL_P99_MS) if goal else None,
                detail=f"{len(load.probe_ms)} probes (every {probe_every}th message), max "
                f"{max(load.probe_ms, default=float('nan')):,.1f} ms; {load.polls:,} reads "
                f"({load.polls / max(load.send_seconds, 1e-9):,.0f}/s) by the probes; "
                f"{load.achieved_rate:,.0f} msg/s achieved; server CPU {run.cpu_share:.0%} "
                "of a core",
            ),
            Figure(
                key=f"{key}.e2e_p50",
                label=f"publish → readable, p50 at {at}",
                value=median(load.probe_ms),
                unit="ms",
                anchor=anchor_p50,
            ),
            Figure(
                key=f"{key}.publish_p99",
                label=f"publish → 202, p99 at {at}",
                value=percentile(load.rtt_ms, 99),
                unit="ms",
                anchor=anchor_p99,
                detail=f"p50 {median(load.rtt_ms):.2f} ms; sender behind schedule p99 "
                f"{percentile(load.lag_ms, 99):.2f} ms (anchor run "
                f"{percentile(bare.lag_ms, 99):.2f} ms)",
            ),
        ]
