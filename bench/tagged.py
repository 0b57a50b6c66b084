"""Publishers that give every message a unique name, run in their own process.

    python -m bench.tagged --port 8001 --path /http/channels/C/messages --key K \
        --tag a --seconds 20 [--rate 1000 --probe-every 50 --read-port 8000 \
        --read-path /api/v1/channels/C/messages] --out result.json

Message `i` of a run is `[{"n": "<tag>-<i>", "v": i}]`, and the result lists every `i`
answered 202, so the store can be counted against it name by name: a name missing is a
lost message, a name stored twice a duplicate. `--rate 0` (the default) is a closed
loop, each connection sending its next message as soon as the last one is answered;
a rate is an open loop on a fixed schedule. With `--probe-every N`, every N-th message
accepted is polled for on the readers API of `--read-port` (another process in a split
deployment) until it is readable, which times publish → readable.

The HTTP/1.1 connection is `bench.loadgen`'s (requests as bytes on asyncio streams):
a general client would spend more CPU than the servers under test.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

from bench.loadgen import HOST, Connection, poll_readable

__all__ = ["TaggedResult", "main"]


@dataclass
class TaggedResult:
    tag: str
    sent: int = 0
    accepted: list[int] = field(default_factory=list)
    statuses: dict[str, int] = field(default_factory=dict)
    errors: int = 0  # requests whose connection broke twice: not answered, not resent
    send_seconds: float = 0.0
    rtt_ms: list[float] = field(default_factory=list)
    probe_ms: list[float] = field(default_factory=list)
    probes_lost: int = 0
    polls: int = 0
    cpu_seconds: float = 0.0  # the generator's own CPU time


@dataclass(frozen=True, slots=True, kw_only=True)
class Plan:
    port: int
    path: str
    key: str
    tag: str
    seconds: float
    rate: float
    connections: int
    probe_every: int
    read_port: int
    read_path: str
    readers: int = 4
    poll_interval: float = 0.002
    probe_timeout: float = 20.0


def _request(method: str, path: str, port: int, key: str, body: bytes = b"") -> bytes:
    head = f"{method} {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\nAuthorization: Thing {key}\r\n"
    if body:
        head += f"Content-Type: application/senml+json\r\nContent-Length: {len(body)}\r\n"
    return (head + "\r\n").encode() + body


async def run(plan: Plan) -> TaggedResult:
    result = TaggedResult(tag=plan.tag)
    statuses: Counter[int] = Counter()
    clock = time.perf_counter
    publishers = [await Connection.open(plan.port) for _ in range(plan.connections)]
    readers: asyncio.LifoQueue[Connection] = asyncio.LifoQueue()
    for _ in range(plan.readers if plan.probe_every else 0):
        readers.put_nowait(await Connection.open(plan.read_port))
    started = clock()
    end = started + plan.seconds
    indexes = itertools.count()
    queue: asyncio.Queue[int | None] = asyncio.Queue()

    async def probe(name: str, sent: float) -> None:
        query = _request("GET", f"{plan.read_path}?name={name}&limit=1", plan.read_port, plan.key)
        await poll_readable(
            readers, query, sent, result, clock=clock, give_up_after=plan.probe_timeout,
            interval=plan.poll_interval,
        )  # fmt: skip

    async def next_index() -> int | None:
        if plan.rate:
            return await queue.get()
        return next(indexes) if clock() < end else None

    async def publish(connection: Connection, probes: asyncio.TaskGroup) -> None:
        while (index := await next_index()) is not None:
            name = f"{plan.tag}-{index}"
            body = f'[{{"n":"{name}","v":{index}}}]'.encode()
            sent = clock()
            try:
                status, _ = await connection.request(
                    _request("POST", plan.path, plan.port, plan.key, body)
                )
            except (asyncio.IncompleteReadError, ConnectionError):
                result.errors += 1
                await connection.close()
                continue
            result.sent += 1
            result.rtt_ms.append((clock() - sent) * 1e3)
            statuses[status] += 1
            if status == 202:
                result.accepted.append(index)
                if plan.probe_every and index % plan.probe_every == 0:
                    probes.create_task(probe(name, sent))

    async def schedule() -> None:
        # Messages not sent by the end of the schedule are not sent late: bounded.
        for index in range(int(plan.rate * plan.seconds)):
            delay = started + index / plan.rate - clock()
            if delay > 0.001:
                await asyncio.sleep(delay)
            if clock() > end + 5.0:
                break
            queue.put_nowait(index)
        for _ in publishers:
            queue.put_nowait(None)

    try:
        async with asyncio.TaskGroup() as probes:
            async with asyncio.TaskGroup() as senders:
                if plan.rate:
                    senders.create_task(schedule(), name="schedule")
                for connection in publishers:
                    senders.create_task(publish(connection, probes), name="publish")
            result.send_seconds = clock() - started
    finally:
        pool = [readers.get_nowait() for _ in range(readers.qsize())]
        for connection in [*publishers, *pool]:
            await connection.close()
    result.statuses = {str(code): count for code, count in sorted(statuses.items())}
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Publishers with a unique name per message.")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", required=True, help="publish path")
    parser.add_argument("--key", required=True, help="thing key")
    parser.add_argument("--tag", required=True, help="prefix of the message names")
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--rate", type=float, default=0.0, help="messages/s; 0: closed loop")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--probe-every", type=int, default=0)
    parser.add_argument("--read-port", type=int, default=0, help="default: --port")
    parser.add_argument("--read-path", default="")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    if args.probe_every and not args.read_path:
        parser.error("--probe-every needs --read-path")
    plan = Plan(
        port=args.port,
        path=args.path,
        key=args.key,
        tag=args.tag,
        seconds=args.seconds,
        rate=args.rate,
        connections=args.connections,
        probe_every=args.probe_every,
        read_port=args.read_port or args.port,
        read_path=args.read_path,
    )
    try:
        import uvloop

        loop_factory = uvloop.new_event_loop
    except ImportError:  # pragma: no cover - uvloop comes with uvicorn[standard]
        loop_factory = None
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        result = runner.run(run(plan))
    result.cpu_seconds = time.process_time()
    args.out.write_text(json.dumps(asdict(result)))


if __name__ == "__main__":
    main()
