"""The split deployment on NATS JetStream and PostgreSQL, beside one process on the same.

Split: six `shopfloor serve --services ...` processes sharing one data dir, one stream
and one database: `api` (registry, readers), `http` twice (each its own port), `mqtt`
(the embedded broker, idle here: only the HTTP load is measured) and `writer` twice
(one durable JetStream consumer shared). The anchor is one process running the same
services (`api,http,mqtt,writer`) on the same backends. Each gets a fresh database
and a stream of its own (its own subject prefix), both removed afterwards.

The same load for both, from two publisher processes (`bench.tagged`): every message
has a unique name, so stored rows are counted against the 202 answers name by name.

1. stored records/s: a closed loop of 2 x 16 connections, one publisher per adapter
   process (both on the one adapter of the anchor);
2. publish → readable at a fixed rate, every N-th message polled for on the readers
   API of the `api` process;
3. split only: the closed loop again while one writer is SIGKILLed a third of the way
   in and started again; everything answered 202 must be stored exactly once.

CPU is read per process (ours, nats-server, every PostgreSQL process, the
publishers) over each phase, which tells where the two cores went.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import subprocess
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]  # asyncpg ships no type information
import nats
import psutil  # type: ignore[import-untyped]  # psutil ships no type information

from bench._scenario import Anchor, BenchContext, Figure, Scenario, ScenarioResult
from bench._servers import Plant, ServerProcess, create_plant, free_port, metric, shopfloor_server
from bench._stats import median, percentile
from bench.tagged import TaggedResult

__all__ = ["SplitScenario"]

logger = logging.getLogger("bench.split")

NATS_URL = "nats://127.0.0.1:4222"
SERVICES = "api,http,mqtt,writer"
#: The split: process name → its `--services`.
SPLIT = {
    "api": "api",
    "http-1": "http",
    "http-2": "http",
    "mqtt": "mqtt",
    "writer-1": "writer",
    "writer-2": "writer",
}
CONNECTIONS = 16  # per publisher process
# Redelivery after a SIGKILL waits for the ack wait (30 s by default): a few seconds keep
# the run short; it changes when, not whether, the killed writer's messages come back.
ACK_WAIT = 5
QUICK_ACK_WAIT = 2


@dataclass(frozen=True, slots=True)
class Backends:
    """A fresh database and a JetStream stream of one deployment."""

    database_url: str
    bus_url: str

    def settings(self) -> dict[str, str]:
        return {
            "SHOPFLOOR_BUS_URL": self.bus_url,
            "SHOPFLOOR_DATABASE_URL": self.database_url,
        }


@contextmanager
def backends(admin_url: str, ack_wait: int) -> Iterator[Backends]:
    """A new database on the server of `admin_url` and a stream name; both removed after."""
    token = uuid.uuid4().hex[:10]
    database, stream = f"sf_bench_split_{token}", f"BENCHSPLIT{token.upper()}"
    asyncio.run(_execute(admin_url, f'CREATE DATABASE "{database}"'))
    try:
        yield Backends(
            database_url=f"{admin_url.rsplit('/', 1)[0]}/{database}",
            bus_url=f"{NATS_URL}?stream={stream}&prefix={stream.lower()}&ack_wait={ack_wait}",
        )
    finally:
        try:
            asyncio.run(_delete_stream(stream))
        finally:
            asyncio.run(_execute(admin_url, f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))


async def _execute(url: str, statement: str) -> None:
    connection = await asyncpg.connect(url)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


async def _delete_stream(stream: str) -> None:
    client = await nats.connect(NATS_URL)
    try:
        js = client.jetstream()
        # NotFound: no process got as far as creating it.
        with contextlib.suppress(nats.js.errors.NotFoundError):
            await js.delete_stream(stream)
    finally:
        await client.close()


async def _redelivered(bus_url: str) -> int:
    """Deliveries of the writers' durable consumer beyond one per message of the stream
    (the consumer's delivery sequence counts every delivery, the stream's each message)."""
    stream = bus_url.split("stream=", 1)[1].split("&", 1)[0]
    client = await nats.connect(NATS_URL)
    try:
        info = await client.jetstream().consumer_info(stream, "writer")
        assert info.delivered is not None
        return int(info.delivered.consumer_seq or 0) - int(info.delivered.stream_seq or 0)
    finally:
        await client.close()


@dataclass
class Deployment:
    """The processes of one deployment by name, and how to start one more."""

    label: str
    database_url: str
    processes: dict[str, ServerProcess]
    plant: Plant
    start: Callable[[str, str], ServerProcess]
    readers: ServerProcess  # the process whose readers API the probes poll
    adapters: list[ServerProcess]  # where each of the two publishers sends


@dataclass(frozen=True, slots=True)
class Stored:
    """Rows of one phase in the store, counted by the unique names of its messages."""

    names: Counter[str]
    last_stored_at: float  # time.time() when the count reached its last value
    drained: bool


@dataclass
class Phase:
    """One load phase: what the publishers saw, what was stored, what CPU it took."""

    tag: str
    results: list[TaggedResult]
    seconds: float  # wall time of the publishers' load
    cpu: dict[str, float]  # CPU seconds per process (or group) during the load
    stored: Stored | None = None
    started_at: float = 0.0  # time.time() when the first publisher started

    @property
    def accepted(self) -> set[str]:
        return {f"{r.tag}-{i}" for r in self.results for i in r.accepted}

    @property
    def accepted_count(self) -> int:
        return sum(len(r.accepted) for r in self.results)

    def probe_ms(self) -> list[float]:
        return [v for r in self.results for v in r.probe_ms]

    def rtt_ms(self) -> list[float]:
        return [v for r in self.results for v in r.rtt_ms]

    @property
    def errors(self) -> int:
        return sum(r.errors for r in self.results)

    @property
    def probes_lost(self) -> int:
        return sum(r.probes_lost for r in self.results)

    def statuses(self) -> dict[str, int]:
        counts: Counter[str] = Counter()
        for r in self.results:
            counts.update(r.statuses)
        return dict(counts)

    @property
    def stored_per_second(self) -> float:
        assert self.stored is not None
        seconds = self.stored.last_stored_at - self.started_at
        return len(self.stored.names) / seconds if seconds > 0 else 0.0

    def cpu_share(self, name: str) -> float:
        return self.cpu.get(name, 0.0) / self.seconds if self.seconds else 0.0


class CpuMeter:
    """CPU seconds of named processes, of nats-server and of every PostgreSQL process."""

    def __init__(self, processes: Mapping[str, ServerProcess]) -> None:
        self.processes = dict(processes)

    def read(self) -> dict[str, dict[int, float]]:
        groups: dict[str, dict[int, float]] = {"nats-server": {}, "postgres": {}}
        for name, server in self.processes.items():
            groups[name] = _cpu({server.pid})
        groups["machine"] = {0: _busy_seconds()}
        pids: dict[str, set[int]] = {"nats-server": set(), "postgres": set()}
        for process in psutil.process_iter(["name"]):
            if process.info["name"] in pids:
                pids[process.info["name"]].add(process.pid)
        for group, members in pids.items():
            groups[group] = _cpu(members)
        return groups

    @staticmethod
    def spent(
        before: dict[str, dict[int, float]], after: dict[str, dict[int, float]]
    ) -> dict[str, float]:
        """Per group, CPU seconds between two readings (processes born since count whole)."""
        return {
            group: sum(t - before.get(group, {}).get(pid, 0.0) for pid, t in times.items())
            for group, times in after.items()
        }


def _busy_seconds() -> float:
    """CPU seconds the whole machine spent not idle, every core and process."""
    times = psutil.cpu_times()
    # Linux counts guest time inside user and nice already.
    left_out = ("idle", "iowait", "guest", "guest_nice")
    return float(sum(times) - sum(getattr(times, name, 0.0) for name in left_out))


def _cpu(pids: set[int]) -> dict[int, float]:
    times: dict[int, float] = {}
    for pid in pids:
        try:
            cpu = psutil.Process(pid).cpu_times()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        times[pid] = float(cpu.user + cpu.system)
    return times


class SplitScenario(Scenario, name="split"):
    title = "Split deployment on NATS JetStream and PostgreSQL"

    def run(self, ctx: BenchContext, result: ScenarioResult) -> None:
        seconds = ctx.pick(1.5, 20.0)
        kill_seconds = ctx.pick(3.0, 20.0)
        warmup = ctx.pick(0.5, 3.0)
        rate = ctx.pick(200.0, 500.0)  # messages/s in all, for the latency
        probe_every = ctx.pick(10, 50)
        ack_wait = ctx.pick(QUICK_ACK_WAIT, ACK_WAIT)
        # Quick: no restart (a start costs seconds of CPU); the survivor takes it all.
        restart = not ctx.quick
        with backends(ctx.postgres_url, ack_wait) as single_backends, ExitStack() as stack:
            single = self._single(ctx, stack, single_backends)
            self._warm_up(ctx, single, warmup)
            single_load = self._load(ctx, single, "s", seconds)
            single_latency = self._load(ctx, single, "sl", seconds, rate, probe_every)
            logger.info("single process: stopping")
        with backends(ctx.postgres_url, ack_wait) as split_backends, ExitStack() as stack:
            split = self._split(ctx, stack, split_backends)
            self._warm_up(ctx, split, warmup)
            split_load = self._load(ctx, split, "p", seconds)
            split_latency = self._load(ctx, split, "pl", seconds, rate, probe_every)
            kill = self._kill_run(ctx, split, kill_seconds, restart=restart)
            redelivered = asyncio.run(_redelivered(split_backends.bus_url))
            logger.info("split: stopping")
        self._check(result, "single process", single_load, single_latency)
        self._check(result, "split", split_load, split_latency)
        self._check_kill(result, kill, redelivered)
        self._report(
            result, single_load, single_latency, split_load, split_latency, kill, rate, ack_wait
        )
        result.notes.append(
            f"{CONNECTIONS} keep-alive connections per publisher process, 2 publishers; "
            f"after a {warmup:.1f} s warm-up per deployment: {seconds:.1f} s of closed-loop "
            f"load, {seconds:.1f} s at {rate:,.0f} msg/s (probes: every {probe_every}th "
            "message, polled every 2 ms over 4 connections per publisher), then for the "
            f"split {kill_seconds:.0f} s of closed-loop load with the kill"
            + (" and the restart" if restart else " (no restart in quick mode)")
            + f"; bus URL option `ack_wait={ack_wait}`."
        )

    # -- deployments --------------------------------------------------------------

    def _starter(
        self, ctx: BenchContext, stack: ExitStack, backends: Backends, data_dir: Path
    ) -> Callable[[str, str], ServerProcess]:
        lock = threading.Lock()

        def start(name: str, services: str) -> ServerProcess:
            """Start and wait until healthy; safe to call from several threads at once."""
            serving = shopfloor_server(
                ctx.python,
                data_dir,
                services=services,
                timeseries_url=backends.database_url,
                log_name=f"split-{name}",
                mqtt_port=free_port() if "mqtt" in services else None,
                settings=backends.settings(),
            )
            server = serving.__enter__()
            with lock:
                stack.push(serving.__exit__)
            return server

        return start

    def _single(self, ctx: BenchContext, stack: ExitStack, backends: Backends) -> Deployment:
        start = self._starter(ctx, stack, backends, ctx.work_dir / "split-single" / "data")
        server = start("single", SERVICES)
        logger.info("single process: healthy")
        return Deployment(
            label="single process",
            database_url=backends.database_url,
            processes={"single": server},
            plant=create_plant(server.url),
            start=start,
            readers=server,
            adapters=[server, server],
        )

    def _split(self, ctx: BenchContext, stack: ExitStack, backends: Backends) -> Deployment:
        start = self._starter(ctx, stack, backends, ctx.work_dir / "split-split" / "data")
        # The api process first: it migrates, creates the first admin and writes the data
        # dir's secrets once; the others then start together (a start is seconds of CPU).
        processes = {"api": start("api", SPLIT["api"])}
        rest = {name: services for name, services in SPLIT.items() if name != "api"}
        with ThreadPoolExecutor(len(rest)) as pool:
            started = {name: pool.submit(start, name, svc) for name, svc in rest.items()}
        processes |= {name: future.result() for name, future in started.items()}
        logger.info("split: %d processes healthy", len(processes))
        return Deployment(
            label="split",
            database_url=backends.database_url,
            processes=processes,
            plant=create_plant(processes["api"].url),
            start=start,
            readers=processes["api"],
            adapters=[processes["http-1"], processes["http-2"]],
        )

    # -- load -----------------------------------------------------------------------

    def _publishers(
        self,
        ctx: BenchContext,
        deployment: Deployment,
        tag: str,
        seconds: float,
        rate: float = 0.0,
        probe_every: int = 0,
    ) -> list[tuple[subprocess.Popen[bytes], Path]]:
        plant = deployment.plant
        started = []
        for index, adapter in enumerate(deployment.adapters, 1):
            out = ctx.work_dir / f"tagged-{tag}{index}.json"
            argv = [ctx.python, "-m", "bench.tagged", "--port", str(adapter.port)]
            argv += ["--path", plant.publish_path, f"--key={plant.key}"]
            argv += ["--tag", f"{tag}{index}", "--seconds", str(seconds)]
            argv += ["--rate", str(rate / len(deployment.adapters))]
            argv += ["--connections", str(CONNECTIONS), "--out", str(out)]
            if probe_every:
                argv += ["--probe-every", str(probe_every)]
                argv += ["--read-port", str(deployment.readers.port)]
                argv += ["--read-path", plant.read_path]
            started.append((subprocess.Popen(argv, stderr=subprocess.PIPE), out))
        return started

    @staticmethod
    def _collect(
        publishers: list[tuple[subprocess.Popen[bytes], Path]], timeout: float
    ) -> list[TaggedResult]:
        results = []
        for process, out in publishers:
            try:
                _, stderr = process.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                _, stderr = process.communicate()
            if process.returncode != 0:
                raise RuntimeError(f"publisher failed: {stderr.decode()[-2000:]}")
            results.append(TaggedResult(**json.loads(out.read_text())))
        return results

    def _warm_up(self, ctx: BenchContext, deployment: Deployment, seconds: float) -> None:
        """Unmeasured load: thing keys cached in every adapter, connections and pools open."""
        self._collect(self._publishers(ctx, deployment, "w", seconds), seconds + 60)

    def _load(
        self,
        ctx: BenchContext,
        deployment: Deployment,
        tag: str,
        seconds: float,
        rate: float = 0.0,
        probe_every: int = 0,
        during: Callable[[float], None] | None = None,
    ) -> Phase:
        """The measured load; `during(started)` runs while it goes on."""
        logger.info("%s: phase %s (%.1f s, rate %s)", deployment.label, tag, seconds, rate or "-")
        meter = CpuMeter(deployment.processes)
        before = meter.read()
        started_at, started = time.time(), time.monotonic()
        publishers = self._publishers(ctx, deployment, tag, seconds, rate, probe_every)
        if during is not None:
            during(started)
        results = self._collect(publishers, seconds + 120)
        # The publishers' own send time: `during` may outlast them (a restart).
        elapsed = max(r.send_seconds for r in results)
        meter.processes = dict(deployment.processes)  # with a restarted writer
        cpu = CpuMeter.spent(before, meter.read())
        cpu["publishers"] = sum(r.cpu_seconds for r in results)
        phase = Phase(tag, results, elapsed, cpu, started_at=started_at)
        expected = phase.accepted_count
        phase.stored = asyncio.run(_wait_stored(deployment, tag, expected))
        return phase

    def _kill_run(
        self, ctx: BenchContext, split: Deployment, seconds: float, *, restart: bool
    ) -> KillRun:
        kill = KillRun()

        def kill_and_restart(started: float) -> None:
            time.sleep(max(0.0, started + seconds / 3 - time.monotonic()))
            victim = split.processes["writer-1"]
            kill.stored_before = metric(victim.url, "shopfloor_writer_records_total")
            victim.process.send_signal(signal.SIGKILL)
            kill.killed_at = time.monotonic() - started
            kill.exit_code = victim.process.wait(10)
            del split.processes["writer-1"]
            if restart:
                split.processes["writer-1b"] = split.start("writer-1b", "writer")
                kill.restarted_at = time.monotonic() - started

        kill.phase = self._load(ctx, split, "k", seconds, during=kill_and_restart)
        if restart:
            kill.stored_by_replacement = metric(
                split.processes["writer-1b"].url, "shopfloor_writer_records_total"
            )
        return kill

    # -- checks and figures -----------------------------------------------------

    @staticmethod
    def _check(result: ScenarioResult, who: str, load: Phase, latency: Phase) -> None:
        for phase, what in ((load, "closed loop"), (latency, "fixed rate")):
            stored = phase.stored
            assert stored is not None
            accepted = phase.accepted
            result.check(
                f"{who}, {what}: stored == accepted, one row per message",
                stored.drained
                and set(stored.names) == accepted
                and all(n == 1 for n in stored.names.values())
                and len(accepted) > 0,
                f"accepted {len(accepted)}, stored {sum(stored.names.values())} rows of "
                f"{len(stored.names)} names",
            )
            result.check(
                f"{who}, {what}: every publish answered 202, no broken connection",
                set(phase.statuses()) == {"202"} and phase.errors == 0,
                f"statuses {phase.statuses()}, {phase.errors} broken",
            )
        probes = latency.probe_ms()
        expected = latency.accepted_count // max(1, _probe_every(latency))
        result.check(
            f"{who}: every probe became readable",
            latency.probes_lost == 0 and len(probes) >= max(1, expected - 2),
            f"{len(probes)} probes readable, {latency.probes_lost} timed out",
        )

    @staticmethod
    def _check_kill(result: ScenarioResult, kill: KillRun, redelivered: int) -> None:
        phase = kill.phase
        assert phase is not None and phase.stored is not None
        accepted, names = phase.accepted, phase.stored.names
        lost = len(accepted - set(names))
        duplicated = sum(n - 1 for n in names.values())
        unexpected = len(set(names) - accepted)
        kill.lost, kill.duplicated = lost, duplicated
        result.check(
            "writer SIGKILLed mid-run: 0 lost, 0 duplicated",
            phase.stored.drained and lost == 0 and duplicated == 0 and unexpected == 0,
            f"accepted {len(accepted)}; lost {lost}, duplicated {duplicated}, stored without "
            f"a 202 {unexpected}",
        )
        result.check(
            # Redeliveries are reported, not required: a writer between two batches holds
            # nothing, and which moment the kill finds is luck.
            "the writer was killed while storing (SIGKILL, records stored before it)",
            kill.exit_code == -signal.SIGKILL and kill.stored_before > 0,
            f"exit {kill.exit_code}, {kill.stored_before:.0f} records stored by it before, "
            f"{redelivered} deliveries redelivered",
        )
        result.check(
            "every publish answered 202 across the kill",
            set(phase.statuses()) == {"202"} and phase.errors == 0,
            f"statuses {phase.statuses()}, {phase.errors} broken",
        )

    def _report(
        self,
        result: ScenarioResult,
        single: Phase,
        single_latency: Phase,
        split: Phase,
        split_latency: Phase,
        kill: KillRun,
        rate: float,
        ack_wait: int,
    ) -> None:
        anchor_rate = Anchor(
            label="one process, same services and backends, records/s",
            value=single.stored_per_second,
        )
        single_cores = sum(single.cpu_share(n) for n in single.cpu if n not in _NOT_OURS)
        split_cores = sum(split.cpu_share(n) for n in split.cpu if n not in _NOT_OURS)
        assert kill.phase is not None
        result.figures += [
            Figure(
                key="split.stored_rate",
                label="split deployment (api, 2 http, mqtt, 2 writer), stored records/s "
                "(NATS JetStream, PostgreSQL)",
                value=split.stored_per_second,
                unit="records/s",
                anchor=anchor_rate,
                detail=f"{split.accepted_count:,} messages in {split.seconds:.1f} s "
                f"(anchor {single.accepted_count:,}); CPU: {_cpu_detail(split)}; "
                f"anchor: {_cpu_detail(single)}",
            ),
            Figure(
                key="split.kill_stored_rate",
                label="split deployment, stored records/s with one writer SIGKILLed and restarted",
                value=kill.phase.stored_per_second,
                unit="records/s",
                anchor=anchor_rate,
                detail=f"{kill.phase.accepted_count:,} messages accepted, {kill.lost} lost, "
                f"{kill.duplicated} duplicated; killed at {kill.killed_at:.1f} s of "
                f"{kill.phase.seconds:.1f} s"
                + (
                    f", a new writer healthy at {kill.restarted_at:.1f} s (it stored "
                    f"{kill.stored_by_replacement:,.0f} records)"
                    if kill.restarted_at
                    else ""
                )
                + f"; the last record stored {_after_load(kill.phase):.1f} s after the load "
                f"ended (the killed writer's unacknowledged messages come back after "
                f"`ack_wait` = {ack_wait} s)",
            ),
            Figure(
                key="split.cpu_per_krecords",
                label="split deployment, cores used per 1,000 stored records/s "
                "(our processes, NATS, PostgreSQL)",
                value=split_cores / (split.stored_per_second / 1000),
                unit="cores",
                anchor=Anchor(
                    label="one process, same load",
                    value=single_cores / (single.stored_per_second / 1000),
                ),
                detail=f"{split_cores:.2f} cores at {split.stored_per_second:,.0f} records/s; "
                f"anchor {single_cores:.2f} at {single.stored_per_second:,.0f}; the "
                f"publishers used {split.cpu_share('publishers'):.2f} (anchor "
                f"{single.cpu_share('publishers'):.2f})",
            ),
        ]
        for q in (99, 50):
            result.figures.append(
                Figure(
                    key=f"split.e2e_p{q}",
                    label=f"split deployment, publish → readable p{q} at {rate:,.0f} msg/s",
                    value=percentile(split_latency.probe_ms(), q),
                    unit="ms",
                    anchor=Anchor(
                        label=f"one process, same rate, p{q}",
                        value=percentile(single_latency.probe_ms(), q),
                    ),
                    detail=(
                        f"{len(split_latency.probe_ms())} probes, max "
                        f"{max(split_latency.probe_ms()):,.1f} ms (anchor "
                        f"{max(single_latency.probe_ms()):,.1f}); publish → 202 p99 "
                        f"{percentile(split_latency.rtt_ms(), 99):.2f} ms (anchor "
                        f"{percentile(single_latency.rtt_ms(), 99):.2f}); CPU: "
                        f"{_cpu_detail(split_latency)}"
                    )
                    if q == 99
                    else f"publish → 202 p50 {median(split_latency.rtt_ms()):.2f} ms "
                    f"(anchor {median(single_latency.rtt_ms()):.2f})",
                )
            )
        result.notes.append(_one_more_core(single, split))


@dataclass
class KillRun:
    phase: Phase | None = None
    killed_at: float = 0.0
    restarted_at: float = 0.0
    exit_code: int | None = None
    stored_before: float = 0.0
    stored_by_replacement: float = 0.0
    lost: int = 0
    duplicated: int = 0


def _probe_every(phase: Phase) -> int:
    probes = len(phase.probe_ms()) + phase.probes_lost
    return round(phase.accepted_count / probes) if probes else 1


def _after_load(phase: Phase) -> float:
    assert phase.stored is not None
    return phase.stored.last_stored_at - phase.started_at - phase.seconds


_NOT_OURS = ("publishers", "machine")  # CPU groups outside the deployment


def _cpu_detail(phase: Phase) -> str:
    shares = sorted(((phase.cpu_share(n), n) for n in phase.cpu if n != "machine"), reverse=True)
    return ", ".join(f"{name} {share:.0%}" for share, name in shares)


def _one_more_core(single: Phase, split: Phase) -> str:
    """What a third core would add, read from the CPU each process used on two."""
    cores = psutil.cpu_count() or 2
    ours = ("publishers", "machine")
    single_own = single.cpu_share("single")
    single_all = sum(single.cpu_share(n) for n in single.cpu if n not in ours)
    split_all = sum(split.cpu_share(n) for n in split.cpu if n not in ours)
    busiest = max((n for n in split.cpu if n not in (*ours, "nats-server", "postgres")),
                  key=split.cpu_share)  # fmt: skip
    per_core = split.stored_per_second / split_all if split_all else 0.0
    if single_own >= 0.9:
        single_bound = (
            "bound by its one event loop: another core would give it only what NATS, "
            "PostgreSQL and the publishers now take from its core"
        )
    else:
        single_bound = (
            "below a core: it waited for CPU the machine did not give it or for NATS and "
            "PostgreSQL round trips, and one event loop cannot use more than one core"
        )
    return (
        f"Where the {cores} cores went, closed loop: the machine was busy "
        f"{split.cpu_share('machine'):.0%} of one core (split) and "
        f"{single.cpu_share('machine'):.0%} (single) counting every process on it, others "
        f"included; publishers {split.cpu_share('publishers'):.0%} and "
        f"{single.cpu_share('publishers'):.0%}. The single process took "
        f"{single_own:.0%} of a core ({single_all:.0%} with NATS and PostgreSQL), "
        f"{single_bound}. The split took {split_all:.0%} with NATS and PostgreSQL for "
        f"{split.stored_per_second:,.0f} records/s, {per_core:,.0f} records/s per core; its "
        f"busiest process ({busiest}) {split.cpu_share(busiest):.0%} of a core, so nothing of "
        f"it is bound by one core and, if the work scales as measured, one more core adds "
        f"about {per_core:,.0f} records/s to it (an estimate from the CPU measured, not a "
        f"measurement on three cores; nothing is pinned to a core here)."
    )


async def _wait_stored(
    deployment: Deployment, tag: str, expected: int, *, within: float = ACK_WAIT + 90.0
) -> Stored:
    """Poll the store until the phase's rows stop changing at `expected` or more."""
    plant = deployment.plant
    like = f"{tag}_-%"  # the names of publishers `<tag>1` and `<tag>2`
    connection = await asyncpg.connect(deployment.database_url)
    try:
        count = "SELECT count(*) FROM messages WHERE channel = $1 AND name LIKE $2"
        deadline = time.monotonic() + within
        last, last_at, agreed_at = -1, time.time(), None
        while True:
            now_count = int(await connection.fetchval(count, plant.channel, like))
            now = time.time()
            if now_count != last:
                last, last_at, agreed_at = now_count, now, None
            if now_count >= expected:
                agreed_at = agreed_at or now
                if now - agreed_at >= 0.3:
                    break
            if time.monotonic() > deadline:
                break
            await asyncio.sleep(0.05)
        rows = await connection.fetch(
            "SELECT name FROM messages WHERE channel = $1 AND name LIKE $2", plant.channel, like
        )
    finally:
        await connection.close()
    return Stored(Counter(row["name"] for row in rows), last_at, last >= expected)
