"""Stored records/s through the HTTP adapter, against a bare ASGI endpoint on the same stack.

Both servers get the same closed-loop load from wrk: keep-alive connections posting one
SenML record per message. For Shopfloor the figure is records the writer stored (its
own counter) over the time from the first request to the last record stored, drain
included; for the anchor it is requests answered per second, since it stores nothing.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from bench._profile import profile_during
from bench._scenario import Anchor, BenchContext, Figure, Goal, Scenario, ScenarioResult
from bench._servers import (
    Counts,
    Plant,
    RssSampler,
    ServerProcess,
    anchor_server,
    create_plant,
    shopfloor_server,
    wait_drained,
)
from bench._wrk import WrkResult, run_wrk

__all__ = [
    "BODY",
    "CONNECTIONS",
    "AnchorLoad",
    "HttpLoad",
    "HttpScenario",
    "anchor_load",
    "http_load",
]

BODY = '[{"n":"temp","u":"Cel","v":21.5}]'
CONNECTIONS = 16
# One wrk thread: on a two-core machine the other core is the server's.
WRK_THREADS = 1
GOAL = Goal(kind="ratio_at_least", threshold=0.6)
PROFILE_RATE = 200


@dataclass(frozen=True, slots=True)
class HttpLoad:
    wrk: WrkResult
    accepted: int
    stored: int
    seconds: float  # first request → last record stored
    drained: bool
    peak_rss: int
    cpu_share: float  # server CPU seconds per second of load (1.0 = one core)

    @property
    def stored_per_second(self) -> float:
        return self.stored / self.seconds if self.seconds else 0.0


def _wrk(
    ctx: BenchContext, server: ServerProcess, path: str, key: str, seconds: float
) -> WrkResult:
    return run_wrk(
        f"{server.url}{path}",
        authorization=f"Thing {key}",
        body=BODY,
        seconds=seconds,
        connections=CONNECTIONS,
        threads=WRK_THREADS,
        script_dir=ctx.work_dir,
    )


def http_load(ctx: BenchContext, server: ServerProcess, plant: Plant, seconds: float) -> HttpLoad:
    """wrk against Shopfloor's HTTP adapter, waiting until the writer stored everything."""
    before = Counts.read(server.url)
    with RssSampler(server.pid, 0.1) as rss:
        cpu = server.cpu_seconds()
        started = time.monotonic()
        wrk = _wrk(ctx, server, plant.publish_path, plant.key, seconds)
        cpu = server.cpu_seconds() - cpu
        drain = wait_drained(server.url, before)
    return HttpLoad(
        wrk=wrk,
        accepted=drain.accepted,
        stored=drain.stored,
        seconds=drain.last_stored_at - started,
        drained=drain.drained,
        peak_rss=rss.peak,
        cpu_share=cpu / wrk.seconds,
    )


@dataclass(frozen=True, slots=True)
class AnchorLoad:
    wrk: WrkResult
    peak_rss: int
    cpu_share: float


def anchor_load(ctx: BenchContext, server: ServerProcess, seconds: float) -> AnchorLoad:
    """The same wrk load against the bare endpoint."""
    with RssSampler(server.pid, 0.1) as rss:
        cpu = server.cpu_seconds()
        wrk = _wrk(ctx, server, "/http/channels/anchor/messages", "anchor-key", seconds)
        cpu = server.cpu_seconds() - cpu
    return AnchorLoad(wrk, rss.peak, cpu / wrk.seconds)


class HttpScenario(Scenario, name="http"):
    title = "HTTP adapter: stored records/s"

    def run(self, ctx: BenchContext, result: ScenarioResult) -> None:
        seconds = ctx.pick(2.0, 30.0)
        warmup = ctx.pick(1.0, 3.0)
        with anchor_server(ctx.python, ctx.work_dir) as anchor:
            anchor_load(ctx, anchor, warmup)
            bare = anchor_load(ctx, anchor, seconds)
        anchor_wrk = bare.wrk
        with shopfloor_server(ctx.python, ctx.work_dir / "http-data") as server:
            plant = create_plant(server.url)
            # Warm-up: the thing-key cache, SQLite pages, the writer's first batches.
            http_load(ctx, server, plant, warmup)
            load = http_load(ctx, server, plant, seconds)
            if ctx.profile:
                self._profile(ctx, server, plant, ctx.pick(2.0, 15.0), result)

        result.check(
            "anchor: every request answered 2xx",
            anchor_wrk.errors == 0 and anchor_wrk.non_2xx == 0 and anchor_wrk.requests > 0,
            f"{anchor_wrk.requests} requests, {anchor_wrk.non_2xx} non-2xx, "
            f"{anchor_wrk.errors} socket errors",
        )
        result.check(
            "no socket errors against Shopfloor",
            load.wrk.errors == 0,
            f"{load.wrk.errors} socket errors",
        )
        result.check(
            "stored == accepted (one record per message)",
            load.drained and load.stored == load.accepted and load.stored > 0,
            f"accepted {load.accepted}, stored {load.stored}",
        )
        result.check(
            "the server accepted at least what wrk saw answered 2xx",
            load.accepted >= load.wrk.ok_requests,
            f"server {load.accepted}, wrk {load.wrk.ok_requests}",
        )
        load_detail = (
            f"{load.accepted:,} messages accepted in {load.wrk.seconds:.1f} s of load, the last "
            f"one stored {load.seconds - load.wrk.seconds:.2f} s after the load ended; "
            f"{load.wrk.non_2xx:,} answered other than 2xx"
        )
        anchor_label = "bare ASGI endpoint, requests/s"
        result.figures += [
            Figure(
                key="http.stored_rate",
                label="HTTP adapter, stored records/s (embedded SQLite, memory bus)",
                value=load.stored_per_second,
                unit="records/s",
                anchor=Anchor(label=anchor_label, value=anchor_wrk.ok_per_second),
                goal=GOAL,
                detail=load_detail,
            ),
            Figure(
                key="http.accept_rate",
                label="HTTP adapter, 202 answers/s seen by wrk",
                value=load.wrk.ok_per_second,
                unit="requests/s",
                anchor=Anchor(label=anchor_label, value=anchor_wrk.ok_per_second),
                detail=f"wrk latency p50 {load.wrk.p50_ms:.1f} ms, p99 {load.wrk.p99_ms:.1f} ms "
                f"(anchor {anchor_wrk.p50_ms:.1f} / {anchor_wrk.p99_ms:.1f} ms); server CPU "
                f"{load.cpu_share:.0%} of a core (anchor {bare.cpu_share:.0%})",
            ),
        ]
        result.notes.append(
            f"wrk: {WRK_THREADS} thread, {CONNECTIONS} keep-alive connections, "
            f"{seconds:.0f} s per side after a {warmup:.0f} s warm-up; body `{BODY}`."
        )

    def _profile(
        self,
        ctx: BenchContext,
        server: ServerProcess,
        plant: Plant,
        seconds: float,
        result: ScenarioResult,
    ) -> None:
        """A separate, unmeasured run with py-spy attached (sampling slows the server)."""
        out_dir = ctx.artifacts_dir or ctx.work_dir
        raw = Path(out_dir) / "http-profile.txt"
        _, profile, errors = profile_during(
            server.pid, seconds, raw, lambda: http_load(ctx, server, plant, seconds),
            rate=PROFILE_RATE,
        )  # fmt: skip
        if profile is None:
            result.check("py-spy recorded the server", False, errors)
            return
        result.profile = profile
        result.check(
            "py-spy recorded the server",
            result.profile.samples > 0,
            f"{result.profile.samples} samples",
        )
