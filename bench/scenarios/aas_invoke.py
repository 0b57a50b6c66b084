"""AAS Operations over HTTP (`/invoke`), through a Manager and a Core, over memory, NATS
and Kafka, beside a bare request/reply over the same broker.

What runs where, the same for every transport:

- the platform: the real `shopfloor serve` in a process of its own, services
  `api,aas,bench_core`, its aas service on the transport under test
  (`SHOPFLOOR_AAS_TRANSPORT_URL`), SQLite for its tables. `bench_core` is the plug-in
  capability of `bench.aas_core_plugin`, loaded through `SHOPFLOOR_CAPABILITIES`;
- the shell (`bench.aas_press`: one submodel, one Operation `Controls.start`, input
  `speed`, output `rpm`) is uploaded with `POST /api/v1/aas/environments` and given a
  Manager with `POST /api/v1/aas/managers`, by an engineer of a new organisation;
- the Core (`shopfloor.aas.Core`, `rpm = speed * 100` at once, counting its calls): for
  NATS and Kafka in a third process (`main(["core"])` of this module), on the
  `core` configuration the Manager's answer gives; for memory inside the platform's
  process (`POST /bench/core` of the plug-in), since a `memory://` transport exists only
  in the process that made it;
- the caller: httpx in the runner's process, keep-alive, an engineer's token, each
  answer checked (`Completed`, `rpm` = 100 * the `speed` sent);
- NATS: the running server (`SHOPFLOOR_BENCH_NATS`, default 127.0.0.1:4222); Kafka: a
  Tansu broker (memory storage) started for the run (`bench._servers.tansu_broker`),
  the transport's `fetch_wait_ms` and the anchor's `fetch_max_wait_ms` 10 ms (Tansu
  answers a fetch only when that wait runs out: at Kafka's 500 ms both measure it).

Measured per transport: N sequential invokes after a warm-up (p50, p99), then
interactions/s with C callers invoking at once for a fixed time, and the CPU the
platform's process used per invoke. The anchor is measured first, while the platform
(and the Core) idle; the processes start together, so that their imports overlap.

The anchors, in the same run, same N, C and time, the requester in the runner's process
and the responder in a process of its own (`main(["respond", ...])`), the records the
bytes of a real Manager request and Core response (`shopfloor.aas.protocol.encode`):

- NATS: the transport's own primitives bare, in nats-py: a JetStream publish (awaiting
  the ack) to one subject of a stream, an ordered push consumer on the other side, the
  reply published the same way to the stream's second subject, read by an ordered
  consumer; one task per request on the responder, as the Core runs each request;
- Kafka: bare aiokafka: a producer (`acks="all"`) to partition 0 of a fresh
  two-partition topic, the responder reading partition 0 by `assign()` and producing
  to partition 1, which the requester reads by `assign()`;
- memory: there is no broker, so the floor is HTTP: the bare ASGI endpoint of
  `bench.anchor` (uvicorn as `shopfloor serve` runs it) answering a POST of the same
  body, through the same httpx client.

With py-spy (`--no-profile` skips it) the platform's process is sampled during an extra,
unmeasured concurrent run over NATS.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import nats
import nats.js.errors
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from nats.aio.msg import Msg
from nats.js.api import DeliverPolicy, StreamConfig

from bench._profile import profile_during
from bench._scenario import Anchor, BenchContext, Figure, Scenario, ScenarioResult
from bench._servers import (
    ServerProcess,
    anchor_server,
    create_engineer,
    shopfloor_server,
    stop_counting,
    tansu_broker,
)
from bench._stats import percentile
from bench.aas_press import AAS_ID, OPERATION, SUBMODEL_ID, environment_json, press_core
from shopfloor.aas.part2 import encode_id
from shopfloor.aas.protocol import MessageKind, Request, Response, ResponseStatus, Side, message_key
from shopfloor.aas.protocol import encode as encode_message
from shopfloor.aas.transports import NatsTransport

__all__ = ["AasInvokeScenario"]

TRANSPORTS = ("memory", "nats", "kafka")
NATS_SERVER = os.environ.get("SHOPFLOOR_BENCH_NATS", "127.0.0.1:4222")
#: The Kafka transport's `fetch_wait_ms`, and the anchor's `fetch_max_wait_ms`: Tansu
#: holds every fetch for that long, so at Kafka's default (500 ms) a hop waits 250 ms on
#: average and the figure is the broker's wait, for Shopfloor and the anchor alike.
KAFKA_FETCH_WAIT_MS = 10
ROOT = Path(__file__).resolve().parents[2]
INVOKE = (
    f"/aas/api/v3.0/submodels/{encode_id(SUBMODEL_ID)}/submodel-elements/{OPERATION}/invoke/$value"
)
#: Header of the NATS transport that carries a record's key.
KEY_HEADER = "Aas-Key"
REQUEST_KEY = message_key(Side.MANAGER, MessageKind.REQUEST)
RESPONSE_KEY = message_key(Side.CORE, MessageKind.RESPONSE)
PROFILE_RATE = 200
TIMEOUT = 30.0


def _body(speed: int) -> bytes:
    return json.dumps({"inputArguments": {"speed": speed}}).encode()


def _records() -> tuple[bytes, bytes]:
    """A Manager's request and the Core's response of one `Controls.start`, encoded."""
    common: dict[str, Any] = {
        "interaction_id": 1_000_001,
        "service_id": OPERATION,
        "service_type": "AssetRelatedService",
        # Fixed, so that every process encodes the same bytes (the replies are compared).
        "timestamp": 1_780_000_000.0,
    }
    parameters = {
        "submodel_id": SUBMODEL_ID,
        "path": OPERATION,
        "input_arguments": {"speed": 500},
        "inoutput_arguments": {},
    }
    request = Request(**common, parameters=parameters, timeout=TIMEOUT)
    result = {"output_arguments": {"rpm": 50_000}, "inoutput_arguments": {}}
    response = Response(**common, status=ResponseStatus.COMPLETED, result=result)
    return encode_message(request), encode_message(response)


# -- processes of their own ----------------------------------------------------------------


async def _until_terminated(ready: str = "ready") -> None:
    """Tell the runner (the first line out), then wait for SIGTERM."""
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    print(ready, flush=True)
    await stop.wait()


async def _serve_core(transport_url: str, topic: str) -> None:
    made = press_core(topic, transport_url)
    async with made.core:
        await made.core.wait_running(within=60)
        await _until_terminated()
    print(f"checked {made.handled}", flush=True)


class _Tasks:
    """One task per request, as the Core runs them; all awaited at the end."""

    def __init__(self) -> None:
        self.running: set[asyncio.Task[None]] = set()

    def start(self, work: Awaitable[None]) -> None:
        task = asyncio.ensure_future(work)
        self.running.add(task)
        task.add_done_callback(self.running.discard)

    async def finish(self) -> None:
        await asyncio.gather(*self.running, return_exceptions=True)


async def _respond_nats(stream: str, prefix: str) -> None:
    _, reply = _records()
    answered = 0
    nc = await nats.connect(servers=[f"nats://{NATS_SERVER}"], name="bench-aas-anchor")
    js = nc.jetstream()
    tasks = _Tasks()

    async def answer(msg: Msg) -> None:
        nonlocal answered
        key = (msg.headers or {})[KEY_HEADER].replace(REQUEST_KEY, RESPONSE_KEY)
        await js.publish(f"{prefix}.1", reply, stream=stream, headers={KEY_HEADER: key})
        answered += 1

    subscription = await js.subscribe(
        f"{prefix}.0", stream=stream, ordered_consumer=True, deliver_policy=DeliverPolicy.ALL
    )

    async def pump() -> None:
        async for msg in subscription.messages:
            tasks.start(answer(msg))

    pumping = asyncio.create_task(pump())
    try:
        await _until_terminated()
    finally:
        pumping.cancel()
        await tasks.finish()
        await subscription.unsubscribe()
        await nc.close()
    print(f"checked {answered}", flush=True)


async def _respond_kafka(servers: str, topic: str) -> None:
    _, reply = _records()
    answered = 0
    producer = AIOKafkaProducer(bootstrap_servers=servers, acks="all")
    consumer = AIOKafkaConsumer(
        bootstrap_servers=servers, group_id=None, enable_auto_commit=False,
        auto_offset_reset="earliest", fetch_max_wait_ms=KAFKA_FETCH_WAIT_MS,
    )  # fmt: skip
    tasks = _Tasks()

    async def answer(key: bytes) -> None:
        nonlocal answered
        key = key.replace(REQUEST_KEY.encode(), RESPONSE_KEY.encode())
        await producer.send_and_wait(topic, value=reply, key=key, partition=1)
        answered += 1

    async def pump() -> None:
        partition = TopicPartition(topic, 0)
        consumer.assign([partition])
        await consumer.seek_to_beginning(partition)
        while True:
            batches = await consumer.getmany(partition, timeout_ms=500)
            for message in batches.get(partition, []):
                tasks.start(answer(message.key or b""))

    await producer.start()
    await consumer.start()
    pumping = asyncio.create_task(pump())
    try:
        await _until_terminated()
    finally:
        pumping.cancel()
        await tasks.finish()
        await consumer.stop()
        await producer.stop()
    print(f"checked {answered}", flush=True)


_SERVE = "import sys; from bench.scenarios.aas_invoke import main; main(sys.argv[1:])"


def _start(python: str, *args: str, stdin: bool = False) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [python, "-c", _SERVE, *args],
        stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )


def _ready(process: subprocess.Popen[str], name: str) -> None:
    assert process.stdout is not None
    line = process.stdout.readline()
    if line.strip() != "ready":
        raise RuntimeError(f"the {name} did not start: {line!r}")


# -- measuring -----------------------------------------------------------------------------

#: One call: whether its answer was right (an exception is a wrong answer too).
Call = Callable[[], Awaitable[bool]]


@dataclass
class Measured:
    latencies: list[float]
    made: int
    took: float
    #: Calls of every phase (warm-up, sequential, concurrent).
    total: int
    wrong: int
    first_wrong: str = ""

    @property
    def rate(self) -> float:
        return self.made / self.took if self.took else 0.0


class _Tally:
    def __init__(self, call: Call) -> None:
        self._call = call
        self.total = 0
        self.wrong = 0
        self.first_wrong = ""

    async def __call__(self) -> None:
        self.total += 1
        try:
            ok = await self._call()
        except Exception as exc:
            ok, why = False, f"{type(exc).__name__}: {exc}"
        else:
            why = "a wrong answer"
        if not ok:
            self.wrong += 1
            self.first_wrong = self.first_wrong or why


async def _concurrently(tally: _Tally, callers: int, seconds: float) -> tuple[int, float]:
    made = 0
    deadline = time.perf_counter() + seconds

    async def caller() -> None:
        nonlocal made
        while time.perf_counter() < deadline:
            await tally()
            made += 1

    started = time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(callers)))
    return made, time.perf_counter() - started


async def _measure(call: Call, shape: Shape) -> Measured:
    tally = _Tally(call)
    for _ in range(shape.warm_up):
        await tally()
    latencies: list[float] = []
    enough = time.perf_counter() + shape.sequential_seconds
    for _ in range(shape.count):
        if time.perf_counter() > enough:
            break  # a slow transport gets fewer sequential calls, not a longer run
        started = time.perf_counter()
        await tally()
        latencies.append(time.perf_counter() - started)
    made, took = await _concurrently(tally, shape.callers, shape.seconds)
    return Measured(latencies, made, took, tally.total, tally.wrong, tally.first_wrong)


@dataclass(frozen=True, slots=True)
class Shape:
    warm_up: int
    #: Sequential calls, or as many as `sequential_seconds` allow if fewer.
    count: int
    sequential_seconds: float
    callers: int
    #: The concurrent phase.
    seconds: float


class Invoker:
    """`/invoke` of `Controls.start` over HTTP, each answer checked."""

    def __init__(self, url: str, headers: dict[str, str], callers: int) -> None:
        limits = httpx.Limits(max_connections=callers, max_keepalive_connections=callers)
        self.http = httpx.AsyncClient(
            base_url=url,
            headers={**headers, "content-type": "application/json"},
            timeout=TIMEOUT,
            limits=limits,
        )
        self._speeds = itertools.cycle(range(1, 1000))

    async def __call__(self) -> bool:
        speed = next(self._speeds)
        response = await self.http.post(INVOKE, content=_body(speed))
        if response.status_code != 200:
            return False
        body = response.json()
        return bool(
            body.get("executionState") == "Completed"
            and body.get("outputArguments") == {"rpm": speed * 100}
        )


async def _invoke(url: str, headers: dict[str, str], shape: Shape) -> Measured:
    invoker = Invoker(url, headers, shape.callers)
    async with invoker.http:
        return await _measure(invoker, shape)


async def _invoke_load(
    url: str, headers: dict[str, str], callers: int, seconds: float
) -> tuple[int, int]:
    """An unmeasured concurrent run (while py-spy samples): (calls, wrong answers)."""
    invoker = Invoker(url, headers, callers)
    async with invoker.http:
        tally = _Tally(invoker)
        await _concurrently(tally, callers, seconds)
    return tally.total, tally.wrong


async def _bare_http(url: str, shape: Shape) -> Measured:
    body = _body(500)
    async with httpx.AsyncClient(base_url=url, timeout=TIMEOUT) as http:

        async def call() -> bool:
            answer = await http.post(
                "/", content=body, headers={"content-type": "application/json"}
            )
            return answer.status_code == 202

        return await _measure(call, shape)


class _Replies:
    """Futures of requests in flight, by key, resolved as the replies come."""

    def __init__(self) -> None:
        self.waiting: dict[str, asyncio.Future[bytes]] = {}
        self._ids = itertools.count(1)

    def expect(self) -> tuple[str, asyncio.Future[bytes]]:
        n = next(self._ids)
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self.waiting[f"{RESPONSE_KEY}:{n}"] = future
        return f"{REQUEST_KEY}:{n}", future

    def resolve(self, key: str, value: bytes) -> None:
        future = self.waiting.pop(key, None)
        if future is not None and not future.done():
            future.set_result(value)


async def _bare_nats(stream: str, prefix: str, shape: Shape) -> Measured:
    request, reply = _records()
    replies = _Replies()
    nc = await nats.connect(servers=[f"nats://{NATS_SERVER}"], name="bench-aas-anchor")
    js = nc.jetstream()
    subscription = await js.subscribe(
        f"{prefix}.1", stream=stream, ordered_consumer=True, deliver_policy=DeliverPolicy.ALL
    )

    async def pump() -> None:
        async for msg in subscription.messages:
            replies.resolve((msg.headers or {}).get(KEY_HEADER, ""), msg.data)

    async def call() -> bool:
        key, future = replies.expect()
        await js.publish(f"{prefix}.0", request, stream=stream, headers={KEY_HEADER: key})
        return await asyncio.wait_for(future, TIMEOUT) == reply

    pumping = asyncio.create_task(pump())
    try:
        return await _measure(call, shape)
    finally:
        pumping.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await pumping
        await subscription.unsubscribe()
        await nc.close()


async def _bare_kafka(servers: str, topic: str, shape: Shape) -> Measured:
    request, reply = _records()
    replies = _Replies()
    producer = AIOKafkaProducer(bootstrap_servers=servers, acks="all")
    consumer = AIOKafkaConsumer(
        bootstrap_servers=servers, group_id=None, enable_auto_commit=False,
        auto_offset_reset="earliest", fetch_max_wait_ms=KAFKA_FETCH_WAIT_MS,
    )  # fmt: skip
    partition = TopicPartition(topic, 1)

    async def pump() -> None:
        while True:
            batches = await consumer.getmany(partition, timeout_ms=500)
            for message in batches.get(partition, []):
                replies.resolve((message.key or b"").decode(), message.value or b"")

    async def call() -> bool:
        key, future = replies.expect()
        await producer.send_and_wait(topic, value=request, key=key.encode(), partition=0)
        return await asyncio.wait_for(future, TIMEOUT) == reply

    await producer.start()
    await consumer.start()
    consumer.assign([partition])
    await consumer.seek_to_beginning(partition)
    pumping = asyncio.create_task(pump())
    try:
        return await _measure(call, shape)
    finally:
        pumping.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await pumping
        await consumer.stop()
        await producer.stop()


# -- brokers -------------------------------------------------------------------------------


async def _create_stream(stream: str, prefix: str) -> None:
    nc = await nats.connect(servers=[f"nats://{NATS_SERVER}"])
    try:
        await nc.jetstream().add_stream(
            StreamConfig(name=stream, subjects=[f"{prefix}.0", f"{prefix}.1"])
        )
    finally:
        await nc.close()


async def _delete_streams(streams: list[str]) -> None:
    nc = await nats.connect(servers=[f"nats://{NATS_SERVER}"])
    try:
        js = nc.jetstream()
        for stream in streams:
            with contextlib.suppress(nats.js.errors.NotFoundError):
                await js.delete_stream(stream)
    finally:
        await nc.close()


async def _create_topic(servers: str, topic: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=servers)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)])
    finally:
        await admin.close()


# -- the scenario --------------------------------------------------------------------------

LABELS = {
    "memory": "memory transport (Core in the platform's process)",
    "nats": "NATS JetStream (Core in its own process)",
    "kafka": "Kafka on Tansu (Core in its own process)",
}
ANCHORS = {
    "memory": "bare ASGI endpoint, POST of the same body",
    "nats": "bare nats-py JetStream request/reply, two processes",
    "kafka": "bare aiokafka request/reply (partition 0 → 1), two processes",
}


@dataclass
class _Run:
    ours: Measured
    bare: Measured
    handled: int
    answered: int
    #: CPU time (all threads) of the platform's process per invoke, in seconds.
    cpu_per_call: float
    profile_calls: int = 0
    profile_wrong: int = 0


class AasInvokeScenario(Scenario, name="aas_invoke"):
    title = "AAS `/invoke` through a Manager and a Core over memory, NATS and Kafka"

    def run(self, ctx: BenchContext, result: ScenarioResult) -> None:
        shape = Shape(
            warm_up=ctx.pick(5, 50), count=ctx.pick(100, 2000),
            sequential_seconds=ctx.pick(1.0, 60.0), callers=8, seconds=ctx.pick(1.0, 15.0),
        )  # fmt: skip
        suffix = uuid.uuid4().hex[:10]
        streams: list[str] = []
        runs: dict[str, _Run] = {}
        try:
            with tansu_broker() as kafka:
                urls = {
                    "memory": f"memory://bench{suffix}",
                    "nats": f"nats://{NATS_SERVER}?prefix=b{suffix}&stream_prefix=B{suffix}",
                    "kafka": f"kafka://{kafka}?fetch_wait_ms={KAFKA_FETCH_WAIT_MS}",
                }
                for kind in TRANSPORTS:
                    runs[kind] = self._transport(
                        ctx, result, kind, urls[kind], kafka, suffix, shape, streams
                    )
        finally:
            if streams:
                asyncio.run(_delete_streams(streams))
        for kind, measured in runs.items():
            self._report(result, kind, measured, shape)
        result.notes.append(
            f"Per transport: {shape.count:,} invokes one after the other (fewer if they "
            f"take over {shape.sequential_seconds:.0f} s) after {shape.warm_up} of warm-up, "
            f"then {shape.callers} callers at once for {shape.seconds:.0f} s; the same for "
            "each anchor. The invoke's body is "
            f"`{_body(5).decode()}`; the anchors' records are a Manager's request "
            f"({len(_records()[0])} bytes) and a Core's response ({len(_records()[1])} "
            "bytes) as the protocol encodes them. The platform, the Core (NATS, Kafka), "
            "the anchors' responders, the brokers and the caller share the machine."
        )

    def _transport(
        self,
        ctx: BenchContext,
        result: ScenarioResult,
        kind: str,
        url: str,
        kafka: str,
        suffix: str,
        shape: Shape,
        streams: list[str],
    ) -> _Run:
        work = ctx.work_dir / f"aas-{kind}"
        prefix = f"b{suffix}.anchor"
        stream, topic = f"B{suffix}_anchor", f"bench-anchor-{suffix}"
        responder = None
        if kind == "nats":
            streams.append(stream)
            asyncio.run(_create_stream(stream, prefix))
            responder = _start(ctx.python, "respond", "nats", stream, prefix)
        elif kind == "kafka":
            asyncio.run(_create_topic(kafka, topic))
            responder = _start(ctx.python, "respond", "kafka", kafka, topic)
        settings = {
            "SHOPFLOOR_AAS_TRANSPORT_URL": url,
            "SHOPFLOOR_CAPABILITIES": "bench.aas_core_plugin",
            "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
        }
        # The Core's process starts with the others and imports meanwhile; it is told its
        # transport and topic once the platform gave the shell a Manager.
        core = None if kind == "memory" else _start(ctx.python, "core", stdin=True)
        answered = handled = -1
        cpu_per_call = 0.0
        profiled = (0, 0)
        try:
            with shopfloor_server(
                ctx.python, work / "data", services="api,aas,bench_core",
                log_name=f"aas-{kind}", settings=settings,
            ) as server:  # fmt: skip
                headers, manager = _shop(server.url)
                if kind == "nats":
                    streams.append(NatsTransport.from_url(url).stream(manager["topic"]))
                # The anchor first, the platform (and its Core) idle meanwhile.
                if core is None:
                    _call(server.url, "POST", "/bench/core", headers, {"topic": manager["topic"]})
                    with anchor_server(ctx.python, work) as bare_server:
                        bare = asyncio.run(_bare_http(bare_server.url, shape))
                    answered = bare.total
                else:
                    assert core.stdin is not None and responder is not None
                    core.stdin.write(f"{manager['core']['transport_url']} {manager['topic']}\n")
                    core.stdin.flush()
                    _ready(core, f"{kind} Core")
                    _ready(responder, f"{kind} anchor's responder")
                    if kind == "nats":
                        bare = asyncio.run(_bare_nats(stream, prefix, shape))
                    else:
                        bare = asyncio.run(_bare_kafka(kafka, topic, shape))
                    answered = stop_counting(responder, timeout=30)
                cpu = server.cpu_seconds()
                ours = asyncio.run(_invoke(server.url, headers, shape))
                cpu_per_call = (server.cpu_seconds() - cpu) / max(ours.total, 1)
                if kind == "nats" and ctx.profile:
                    profiled = self._profile(ctx, server, headers, shape, result)
                if core is None:
                    handled = int(_call(server.url, "GET", "/bench/core", headers)["handled"])
                else:
                    handled, core = stop_counting(core, timeout=30), None
        finally:
            if responder is not None and responder.poll() is None:
                stop_counting(responder, timeout=30)
            if core is not None:
                stop_counting(core, timeout=30)
        return _Run(ours, bare, handled, answered, cpu_per_call, *profiled)

    def _profile(
        self,
        ctx: BenchContext,
        server: ServerProcess,
        headers: dict[str, str],
        shape: Shape,
        result: ScenarioResult,
    ) -> tuple[int, int]:
        """A separate, unmeasured run with py-spy on the platform (sampling slows it)."""
        seconds = ctx.pick(1.0, 10.0)
        raw = Path(ctx.artifacts_dir or ctx.work_dir) / "aas-invoke-nats-profile.txt"
        made, profile, errors = profile_during(
            server.pid, seconds, raw,
            lambda: asyncio.run(_invoke_load(server.url, headers, shape.callers, seconds)),
            rate=PROFILE_RATE,
        )  # fmt: skip
        if profile is None:
            result.check("py-spy recorded the platform (NATS)", False, errors)
            return made
        result.profile = profile
        result.check(
            "py-spy recorded the platform (NATS)",
            result.profile.samples > 0,
            f"{result.profile.samples} samples",
        )
        return made

    def _report(self, result: ScenarioResult, kind: str, run: _Run, shape: Shape) -> None:
        ours, bare = run.ours, run.bare
        for name, q in (("p50", 50), ("p99", 99)):
            result.figures.append(
                Figure(
                    key=f"aas_invoke.{kind}_{name}",
                    label=f"`/invoke` round trip, {LABELS[kind]}, {name}",
                    value=percentile(ours.latencies, q) * 1000,
                    unit="ms",
                    anchor=Anchor(
                        label=f"{ANCHORS[kind]}, {name}",
                        value=percentile(bare.latencies, q) * 1000,
                    ),
                    detail=f"{len(ours.latencies):,} invokes one after the other, the "
                    f"anchor {len(bare.latencies):,}"
                    if name == "p50"
                    else "",
                )
            )
        result.figures.append(
            Figure(
                key=f"aas_invoke.{kind}_per_second",
                label=f"`/invoke` interactions/s, {LABELS[kind]}, {shape.callers} callers",
                value=ours.rate,
                unit="interactions/s",
                anchor=Anchor(label=f"{ANCHORS[kind]}, round trips/s", value=bare.rate),
                detail=f"{ours.made:,} invokes in {ours.took:.1f} s; the anchor "
                f"{bare.made:,} in {bare.took:.1f} s; the platform's process used "
                f"{run.cpu_per_call * 1000:.1f} ms of CPU per invoke (all its threads, "
                "every phase" + (", its Core included)" if kind == "memory" else ")"),
            )
        )
        wrong = ours.wrong + run.profile_wrong
        result.check(
            f"{kind}: every invoke Completed with rpm = 100 * speed",
            wrong == 0,
            f"{wrong} of {ours.total + run.profile_calls:,} wrong" + (
                f", the first: {ours.first_wrong}" if ours.first_wrong else ""
            ),
        )  # fmt: skip
        sent = ours.total + run.profile_calls
        result.check(
            f"the Core handled every invoke exactly once: {kind}",
            run.handled == sent,
            f"{run.handled:,} handled of {sent:,} sent",
        )
        result.check(
            f"the anchor answered every request: {kind}",
            bare.wrong == 0 and run.answered == bare.total,
            f"{run.answered:,} answered of {bare.total:,}, {bare.wrong} wrong",
        )
        result.check(
            f"latencies are positive: {kind}",
            min(ours.latencies) > 0 and min(bare.latencies) > 0,
        )


def _call(
    url: str, method: str, path: str, headers: dict[str, str], body: Any = None
) -> dict[str, Any]:
    response = httpx.request(method, url + path, headers=headers, json=body, timeout=TIMEOUT)
    if response.status_code >= 300:
        raise RuntimeError(f"{method} {path}: {response.status_code} {response.text}")
    found: dict[str, Any] = response.json() if response.content else {}
    return found


def _shop(url: str) -> tuple[dict[str, str], dict[str, Any]]:
    """An engineer's headers, the shell stored, and its Manager (the API's answer)."""
    _, headers = create_engineer(url, "Bench Press Shop")
    uploaded = httpx.post(
        f"{url}/api/v1/aas/environments",
        content=environment_json(),
        headers={**headers, "content-type": "application/json"},
        timeout=TIMEOUT,
    )
    if uploaded.status_code != 201:
        raise RuntimeError(f"upload: {uploaded.status_code} {uploaded.text}")
    return headers, _call(url, "POST", "/api/v1/aas/managers", headers, {"aas_id": AAS_ID})


def main(argv: list[str]) -> None:
    if argv == ["core"]:
        transport_url, topic = sys.stdin.readline().split()
        asyncio.run(_serve_core(transport_url, topic))
    elif argv[:2] == ["respond", "nats"] and len(argv) == 4:
        asyncio.run(_respond_nats(argv[2], argv[3]))
    elif argv[:2] == ["respond", "kafka"] and len(argv) == 4:
        asyncio.run(_respond_kafka(argv[2], argv[3]))
    else:
        sys.exit(
            "usage: main(['core']) (then 'TRANSPORT_URL TOPIC' on stdin), main(['respond', "
            "'nats', STREAM, PREFIX]) or main(['respond', 'kafka', SERVERS, TOPIC])"
        )
