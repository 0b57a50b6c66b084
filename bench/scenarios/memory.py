"""Server memory (RSS): idle after start, peak under the HTTP load, and a soak.

The anchor is the bare ASGI app of the HTTP scenario, idle and under the same wrk load:
what Python and uvicorn alone hold. The soak publishes at a steady, moderate rate (with
probes reading back, so the readers path runs too) and samples RSS every few seconds.

Flat is judged on the second half of the soak, after the bus's de-duplication window
and the caches have filled: the slope of the least-squares line through those samples,
carried over one hour, may add at most `FLAT_PERCENT_PER_HOUR` of their mean. A leak
small enough to hide in ten minutes of noise still shows in that slope; a flat server's
slope is its noise, a few MB per hour.
"""

from __future__ import annotations

import time

from bench._scenario import Anchor, BenchContext, Figure, Goal, Scenario, ScenarioResult
from bench._servers import (
    Counts,
    RssSampler,
    anchor_server,
    create_plant,
    shopfloor_server,
    wait_drained,
)
from bench._stats import least_squares_slope, median
from bench.loadgen import publish_at_rate
from bench.scenarios.http import anchor_load, http_load

__all__ = ["MemoryScenario"]

MB = 1e6
IDLE_GOAL_MB = 150.0
PEAK_GOAL_MB = 300.0
FLAT_PERCENT_PER_HOUR = 10.0


def _idle_rss(pid_rss: RssSampler) -> float:
    return median([rss for _, rss in pid_rss.samples]) / MB


class MemoryScenario(Scenario, name="memory"):
    title = "Server memory: idle, peak, soak"

    def run(self, ctx: BenchContext, result: ScenarioResult) -> None:
        settle = ctx.pick(1.0, 5.0)
        load_seconds = ctx.pick(2.0, 30.0)
        soak_seconds = ctx.pick(20.0, 600.0)
        soak_rate = ctx.pick(200.0, 500.0)
        sample_every = ctx.pick(1.0, 5.0)

        with anchor_server(ctx.python, ctx.work_dir) as anchor:
            anchor_idle = self._idle(anchor.pid, settle)
            anchor_peak = anchor_load(ctx, anchor, load_seconds).peak_rss
        with shopfloor_server(ctx.python, ctx.work_dir / "memory-data") as server:
            idle = self._idle(server.pid, settle)
            plant = create_plant(server.url)
            load = http_load(ctx, server, plant, load_seconds)
            before = Counts.read(server.url)
            with RssSampler(server.pid, sample_every) as soak:
                publish_at_rate(
                    ctx.python,
                    port=server.port,
                    path=plant.publish_path,
                    key=plant.key,
                    rate=soak_rate,
                    seconds=soak_seconds,
                    out=ctx.work_dir / "soak.json",
                    probe_every=100,
                    read_path=plant.read_path,
                )
            drain = wait_drained(server.url, before)

        samples = [(t, rss / MB) for t, rss in soak.samples]
        half = [(t, mb) for t, mb in samples if t >= samples[-1][0] / 2]
        slope = least_squares_slope([t for t, _ in half], [mb for _, mb in half])  # MB/s
        half_mean = sum(mb for _, mb in half) / len(half)
        per_hour = 100 * slope * 3600 / half_mean
        flat = per_hour <= FLAT_PERCENT_PER_HOUR
        start_mb, end_mb = samples[0][1], samples[-1][1]
        max_mb = max(mb for _, mb in samples)

        result.check("idle and peak sampled", idle > 0 and load.peak_rss > 0)
        result.check(
            "the HTTP load stored what it was answered",
            load.drained and load.stored == load.accepted > 0,
            f"accepted {load.accepted}, stored {load.stored}",
        )
        result.check(
            "soak: stored == accepted",
            drain.drained and drain.stored == drain.accepted > 0,
            f"accepted {drain.accepted}, stored {drain.stored}",
        )
        result.check(
            "soak: enough samples to judge a trend",
            len(half) >= 5,
            f"{len(samples)} samples, {len(half)} in the second half",
        )

        result.figures += [
            Figure(
                key="memory.idle_rss",
                label="RSS idle after start",
                value=idle,
                unit="MB",
                anchor=Anchor(label="bare ASGI app idle", value=anchor_idle),
                goal=Goal(kind="below", threshold=IDLE_GOAL_MB),
            ),
            Figure(
                key="memory.peak_rss",
                label=f"RSS peak under the HTTP load ({load_seconds:.0f} s of wrk)",
                value=load.peak_rss / MB,
                unit="MB",
                anchor=Anchor(label="bare ASGI app, same load", value=anchor_peak / MB),
                goal=Goal(kind="below", threshold=PEAK_GOAL_MB),
            ),
            Figure(
                key="memory.soak_max_rss",
                label=f"RSS max over a {_duration(soak_seconds)} soak at {soak_rate:,.0f} msg/s",
                value=max_mb,
                unit="MB",
                goal=Goal(kind="below", threshold=PEAK_GOAL_MB),
                detail=f"start {start_mb:.1f} MB, end {end_mb:.1f} MB, max {max_mb:.1f} MB; "
                f"{drain.accepted:,} messages stored",
            ),
            Figure(
                key="memory.soak_trend",
                label="soak: RSS trend over the second half, per hour",
                value=per_hour,
                unit="% of RSS",
                goal=Goal(kind="at_most", threshold=FLAT_PERCENT_PER_HOUR),
                detail=f"{slope * 3600:+.1f} MB/h (fitted line), {'flat' if flat else 'not flat'}; "
                f"flat means at most {FLAT_PERCENT_PER_HOUR:g} % of the mean RSS per hour",
            ),
        ]
        result.notes.append(
            f"RSS by psutil; idle = median of samples over {settle:.0f} s after /health is ok; "
            f"peak sampled every 0.1 s; soak sampled every {sample_every:.0f} s "
            f"({len(samples)} samples)."
        )

    @staticmethod
    def _idle(pid: int, settle: float) -> float:
        with RssSampler(pid, 0.2) as rss:
            time.sleep(settle)
        return _idle_rss(rss)


def _duration(seconds: float) -> str:
    return f"{seconds / 60:.0f} min" if seconds >= 120 else f"{seconds:.0f} s"
