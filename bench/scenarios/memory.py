"""Server memory (RSS): idle after start, peak under the HTTP load, and a soak over MQTT.

The server runs every service (api, http, mqtt with the embedded broker, writer), as
`shopfloor serve` does by default. The anchor is the bare ASGI app of the HTTP
scenario, idle and under the same wrk load: what Python and uvicorn alone hold (the
MQTT scenario gives the broker's own figures). The soak publishes over MQTT to the
embedded broker, one `mosquitto_pub` at QoS 1 paced at a steady, moderate rate, while
the readers API is read back a few times a second with the thing's key, so the readers
path runs too; RSS is sampled every few seconds.

Flat is judged on the second half of the soak, after the bus's de-duplication window
and the caches have filled: the slope of the least-squares line through those samples,
carried over one hour, may add at most `FLAT_PERCENT_PER_HOUR` of their mean. A leak
small enough to hide in ten minutes of noise still shows in that slope; a flat server's
slope is its noise, a few MB per hour.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from types import TracebackType
from typing import Self

import httpx

from bench._mqtt import MqttTarget, publish_paced
from bench._scenario import Anchor, BenchContext, Figure, Goal, Scenario, ScenarioResult
from bench._servers import (
    Counts,
    Plant,
    RssSampler,
    anchor_server,
    create_plant,
    free_port,
    shopfloor_server,
    wait_drained,
)
from bench._stats import least_squares_slope, median
from bench.scenarios.http import anchor_load, http_load

__all__ = ["MemoryScenario"]

MB = 1e6
IDLE_GOAL_MB = 150.0
PEAK_GOAL_MB = 300.0
FLAT_PERCENT_PER_HOUR = 10.0
SERVICES = "api,http,mqtt,writer"


READ_EVERY = 0.2  # seconds between two read-backs during the soak


def _idle_rss(pid_rss: RssSampler) -> float:
    return median([rss for _, rss in pid_rss.samples]) / MB


class ReadBack:
    """Reads the channel's latest records every `interval` s in a thread, counting answers."""

    def __init__(self, plant: Plant, interval: float) -> None:
        self._plant = plant
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="soak-read-back", daemon=True)
        self.statuses: Counter[int] = Counter()

    def _run(self) -> None:
        headers = {"Authorization": f"Thing {self._plant.key}"}
        with httpx.Client(base_url=self._plant.url, headers=headers, timeout=10) as http:
            while not self._stop.wait(self._interval):
                try:
                    status = http.get(self._plant.read_path, params={"limit": 10}).status_code
                except httpx.HTTPError:
                    status = 0  # no answer
                self.statuses[status] += 1

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()


class MemoryScenario(Scenario, name="memory"):
    title = "Server memory: idle, peak, soak"

    def run(self, ctx: BenchContext, result: ScenarioResult) -> None:
        settle = ctx.pick(1.0, 5.0)
        load_seconds = ctx.pick(2.0, 30.0)
        soak_seconds = ctx.pick(10.0, 600.0)
        soak_rate = ctx.pick(200.0, 500.0)
        sample_every = ctx.pick(0.5, 5.0)

        with anchor_server(ctx.python, ctx.work_dir) as anchor:
            anchor_idle = self._idle(anchor.pid, settle)
            anchor_peak = anchor_load(ctx, anchor, load_seconds).peak_rss
        mqtt_port = free_port()
        with shopfloor_server(
            ctx.python,
            ctx.work_dir / "memory-data",
            services=SERVICES,
            mqtt_port=mqtt_port,
        ) as server:
            idle = self._idle(server.pid, settle)
            plant = create_plant(server.url)
            load = http_load(ctx, server, plant, load_seconds)
            target = MqttTarget(
                port=mqtt_port,
                topic=f"channels/{plant.channel}/messages",
                username=plant.thing_id,
                password=plant.key,
            )
            before = Counts.read(server.url)
            with RssSampler(server.pid, sample_every) as soak, ReadBack(plant, READ_EVERY) as reads:
                paced = publish_paced(
                    target, rate=soak_rate, seconds=soak_seconds, work_dir=ctx.work_dir / "soak"
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
            "soak: stored == published over MQTT (QoS 1, one record per message)",
            not paced.failure and drain.stored == paced.published,
            f"published {paced.published:,}, stored {drain.stored:,}"
            + (f"; publisher: {paced.failure}" if paced.failure else ""),
        )
        result.check(
            "soak: the fixed rate was kept (≥ 90 %)",
            paced.achieved_rate >= 0.9 * soak_rate,
            f"{paced.achieved_rate:,.0f} msg/s of {soak_rate:,.0f}",
        )
        result.check(
            "soak: every read-back answered 200",
            sum(reads.statuses.values()) > 0 and set(reads.statuses) == {200},
            f"statuses {dict(sorted(reads.statuses.items()))}",
        )
        result.check(
            "soak: enough samples to judge a trend",
            len(half) >= 5,
            f"{len(samples)} samples, {len(half)} in the second half",
        )

        result.figures += [
            Figure(
                key="memory.idle_rss",
                label=f"RSS idle after start, services {SERVICES}",
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
                label=f"RSS max over a {_duration(soak_seconds)} soak at {soak_rate:,.0f} msg/s "
                "over MQTT (embedded broker)",
                value=max_mb,
                unit="MB",
                goal=Goal(kind="below", threshold=PEAK_GOAL_MB),
                detail=f"start {start_mb:.1f} MB, end {end_mb:.1f} MB, max {max_mb:.1f} MB; "
                f"{drain.stored:,} messages stored, published by one mosquitto_pub at QoS 1; "
                f"{sum(reads.statuses.values()):,} read-backs of the readers API",
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
            f"peak sampled every 0.1 s; soak sampled every {sample_every:g} s "
            f"({len(samples)} samples)."
        )

    @staticmethod
    def _idle(pid: int, settle: float) -> float:
        with RssSampler(pid, 0.2) as rss:
            time.sleep(settle)
        return _idle_rss(rss)


def _duration(seconds: float) -> str:
    return f"{seconds / 60:.0f} min" if seconds >= 120 else f"{seconds:.0f} s"
