"""Fixed-rate publisher with end-to-end probes, run in its own process.

    python -m bench.loadgen --port 8000 --path /http/channels/C/messages --key K \
        --rate 2000 --seconds 30 --probe-every 50 --read-path /api/v1/channels/C/messages \
        --out result.json

Messages are sent on a fixed schedule (open loop) over keep-alive connections. Every
`probe-every`-th message carries a unique name; right after its 202 the probe polls the
readers API for that name until the record is readable, and the time from sending the
publish to that answer is the end-to-end latency. With `--probe-every 0` it only
publishes (and gives the publish round trip), which is how the anchor is measured.

The HTTP/1.1 client is written by hand on asyncio streams, with requests built once as
bytes: a general client (httpx, aiohttp) spends more CPU per request than the server
under test on the same two cores, and would be the bottleneck at 2,000 messages/s.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Protocol

__all__ = ["LoadResult", "ProbeCounts", "main", "poll_readable", "publish_at_rate"]

HOST = "127.0.0.1"


@dataclass
class LoadResult:
    target_rate: float
    seconds: float
    sent: int = 0
    accepted: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    send_seconds: float = 0.0
    rtt_ms: list[float] = field(default_factory=list)
    lag_ms: list[float] = field(default_factory=list)
    probe_ms: list[float] = field(default_factory=list)
    probes_lost: int = 0
    polls: int = 0
    unsent: int = 0
    reconnects: int = 0

    @property
    def achieved_rate(self) -> float:
        return self.sent / self.send_seconds if self.send_seconds else 0.0


class Connection:
    """One keep-alive HTTP/1.1 connection: one request at a time, Content-Length bodies.

    uvicorn closes connections idle for 5 s; a request that finds its connection closed
    is sent again once on a new one, as an HTTP client library would.
    """

    def __init__(self, port: int) -> None:
        self.port = port
        self.reconnects = 0
        self._streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    @classmethod
    async def open(cls, port: int) -> Connection:
        connection = cls(port)
        connection._streams = await asyncio.open_connection(HOST, port)
        return connection

    async def request(self, data: bytes) -> tuple[int, bytes]:
        try:
            return await self._exchange(data)
        except (asyncio.IncompleteReadError, ConnectionError):
            await self.close()
            self.reconnects += 1
            self._streams = await asyncio.open_connection(HOST, self.port)
            return await self._exchange(data)

    async def _exchange(self, data: bytes) -> tuple[int, bytes]:
        if self._streams is None:
            self._streams = await asyncio.open_connection(HOST, self.port)
        reader, writer = self._streams
        writer.write(data)
        head = await reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        body = await reader.readexactly(length) if length else b""
        return status, body

    async def close(self) -> None:
        if self._streams is not None:
            writer = self._streams[1]
            self._streams = None
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()


class ProbeCounts(Protocol):
    """Where `poll_readable` counts: a load result's probe fields."""

    probe_ms: list[float]
    probes_lost: int
    polls: int


async def poll_readable(
    readers: asyncio.Queue[Connection], query: bytes, sent: float, result: ProbeCounts, *,
    clock: Callable[[], float], give_up_after: float, interval: float,
) -> None:  # fmt: skip
    """Poll the readers API (`query`, on a connection of `readers`) until the probe sent
    at `sent` is readable (its latency counted) or `give_up_after` seconds (counted lost)."""
    connection = await readers.get()
    try:
        while True:
            status, body = await connection.request(query)
            now = clock()
            result.polls += 1
            if status == 200 and json.loads(body)["total"] >= 1:
                result.probe_ms.append((now - sent) * 1e3)
                return
            if now - sent > give_up_after:
                result.probes_lost += 1
                return
            await asyncio.sleep(interval)
    finally:
        readers.put_nowait(connection)


def _post(path: str, port: int, key: str, body: bytes) -> bytes:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\nAuthorization: Thing {key}\r\n"
        f"Content-Type: application/senml+json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def _get(path: str, port: int, key: str) -> bytes:
    return (
        f"GET {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\nAuthorization: Thing {key}\r\n\r\n".encode()
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class Plan:
    port: int
    path: str
    key: str
    rate: float
    seconds: float
    probe_every: int
    read_path: str
    connections: int
    readers: int
    poll_interval: float
    probe_timeout: float


async def run(plan: Plan) -> LoadResult:
    result = LoadResult(target_rate=plan.rate, seconds=plan.seconds)
    statuses: Counter[int] = Counter()
    regular = _post(plan.path, plan.port, plan.key, b'[{"n":"load","v":1.5}]')
    total = int(plan.rate * plan.seconds)
    queue: asyncio.Queue[tuple[int, float] | None] = asyncio.Queue()
    publishers = [await Connection.open(plan.port) for _ in range(plan.connections)]
    # Last in, first out: the fewest connections stay busy and none idles into a close.
    readers: asyncio.LifoQueue[Connection] = asyncio.LifoQueue()
    for _ in range(plan.readers if plan.probe_every else 0):
        readers.put_nowait(await Connection.open(plan.port))
    clock = time.perf_counter  # uvloop's loop.time() only has millisecond resolution

    async def probe(name: str, sent: float) -> None:
        query = _get(f"{plan.read_path}?name={name}&limit=1", plan.port, plan.key)
        await poll_readable(
            readers, query, sent, result, clock=clock, give_up_after=plan.probe_timeout,
            interval=plan.poll_interval,
        )  # fmt: skip

    async def publish(connection: Connection, probes: asyncio.TaskGroup) -> None:
        while (item := await queue.get()) is not None:
            index, due = item
            is_probe = plan.probe_every and index % plan.probe_every == 0
            name = f"probe-{index:09d}"
            data = (
                _post(plan.path, plan.port, plan.key, f'[{{"n":"{name}","v":1}}]'.encode())
                if is_probe
                else regular
            )
            sent = clock()
            status, _ = await connection.request(data)
            answered = clock()
            result.sent += 1
            result.rtt_ms.append((answered - sent) * 1e3)
            result.lag_ms.append((sent - due) * 1e3)
            statuses[status] += 1
            if status == 202:
                result.accepted += 1
                if is_probe:
                    probes.create_task(probe(name, sent))

    async def schedule() -> None:
        start = clock()
        # Messages not sent by then are counted, not sent late: the run stays bounded.
        give_up = start + plan.seconds + 5.0
        for index in range(total):
            due = start + index / plan.rate
            delay = due - clock()
            if delay > 0.001:
                await asyncio.sleep(delay)
            if clock() > give_up:
                result.unsent = total - index
                break
            queue.put_nowait((index, due))
        for _ in publishers:
            queue.put_nowait(None)

    started = clock()
    try:
        async with asyncio.TaskGroup() as probes:
            async with asyncio.TaskGroup() as senders:
                senders.create_task(schedule(), name="schedule")
                for connection in publishers:
                    senders.create_task(publish(connection, probes), name="publish")
            result.send_seconds = clock() - started
    finally:
        pool = [readers.get_nowait() for _ in range(readers.qsize())]
        for connection in [*publishers, *pool]:
            result.reconnects += connection.reconnects
            await connection.close()
    result.statuses = {str(code): count for code, count in sorted(statuses.items())}
    return result


def publish_at_rate(
    python: str,
    *,
    port: int,
    path: str,
    key: str,
    rate: float,
    seconds: float,
    out: Path,
    probe_every: int = 0,
    read_path: str = "",
) -> LoadResult:
    """Run the load generator in its own process and return what it measured."""
    argv = [
        python,
        "-m",
        "bench.loadgen",
        "--port",
        str(port),
        "--path",
        path,
        # `=` form: a thing key may begin with "-", which argparse would take for an option.
        f"--key={key}",
        "--rate",
        str(rate),
        "--seconds",
        str(seconds),
        "--out",
        str(out),
        "--probe-every",
        str(probe_every),
        "--read-path",
        read_path,
    ]
    # Bounded: the generator gives up sending 5 s after its schedule and probes time out.
    completed = subprocess.run(
        argv, capture_output=True, text=True, timeout=seconds + 120, check=False
    )
    if completed.returncode != 0:
        raise RuntimeError(f"load generator failed: {completed.stderr[-2000:]}")
    data = json.loads(out.read_text())
    data.pop("wall_seconds", None)
    return LoadResult(**data)


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    # uvloop (installed with uvicorn[standard]) halves the client's CPU per request,
    # leaving more of the shared cores to the server under test.
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Fixed-rate publisher with end-to-end probes.")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", required=True, help="publish path")
    parser.add_argument("--key", required=True, help="thing key")
    parser.add_argument("--rate", type=float, required=True, help="messages per second")
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--probe-every", type=int, default=0)
    parser.add_argument("--read-path", default="")
    parser.add_argument("--connections", type=int, default=32)
    # Few reader connections: each poll is load on the server under test too.
    parser.add_argument("--readers", type=int, default=8)
    parser.add_argument("--poll-interval", type=float, default=0.002)
    parser.add_argument("--probe-timeout", type=float, default=10.0)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    if args.probe_every and not args.read_path:
        parser.error("--probe-every needs --read-path")
    plan = Plan(
        port=args.port,
        path=args.path,
        key=args.key,
        rate=args.rate,
        seconds=args.seconds,
        probe_every=args.probe_every,
        read_path=args.read_path,
        connections=args.connections,
        readers=args.readers,
        poll_interval=args.poll_interval,
        probe_timeout=args.probe_timeout,
    )
    begun = time.monotonic()
    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        result = runner.run(run(plan))
    args.out.write_text(json.dumps(asdict(result) | {"wall_seconds": time.monotonic() - begun}))
    sys.exit(0)


if __name__ == "__main__":
    main()
