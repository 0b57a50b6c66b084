"""MQTT load for the benchmarks: Mosquitto's C clients as publishers and subscriber.

The publishers are `mosquitto_pub -l` processes: each keeps one connection and sends
one message per line it reads, here from a file of identical SenML lines, at QoS 1
with a window of `MAX_INFLIGHT` unacknowledged messages. It exits 0 once its last
message was acknowledged, so a run's end is when the slowest publisher exits (a
publisher of more than `BATCH` messages is a few such processes in a row). C
clients, because a Python client spends more CPU per message than the broker under
test on the same two cores and would be what is measured.

The same publishers load Shopfloor and its anchors; an anchor's messages are counted
by one `mosquitto_sub` (QoS 1) whose output a thread reads, as they arrive.

MQTT 3.1.1 throughout: the embedded broker (amqtt) speaks nothing else, and using it
for Mosquitto mode too keeps the packets on the wire the same for all four runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import resource
import shutil
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Self

from bench._servers import HOST

__all__ = [
    "BATCH",
    "MAX_INFLIGHT",
    "MQTT_VERSION",
    "PAYLOAD",
    "Delivery",
    "MqttTarget",
    "PacedRun",
    "PublishRun",
    "Subscriber",
    "grant_anchor_client",
    "publish",
    "publish_one",
    "publish_paced",
]

PAYLOAD = '[{"n":"temp","u":"Cel","v":21.5}]'
MQTT_VERSION = "mqttv311"
#: QoS 1 messages a publisher may have unacknowledged (mosquitto_pub `-M`; its default
#: is 20). A device library keeps a window of this order too.
MAX_INFLIGHT = 20
#: Lines one mosquitto_pub process sends at most. It finds its last PUBACK by comparing
#: 16-bit message ids, read from the input faster than they are acknowledged: given more
#: than 65,535 lines it takes an earlier message's PUBACK for the last one, disconnects
#: early and still exits 0. A publisher longer than this runs one process per batch.
BATCH = 50_000
#: What the subscriber of an anchor is sent until it shows it is subscribed.
_READY = "bench-subscriber-ready"


def _client(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise RuntimeError(f"{name} is not installed (Debian package mosquitto-clients)")
    return path


@dataclass(frozen=True, slots=True, kw_only=True)
class MqttTarget:
    """Where clients connect, as whom, and the topic of the load."""

    port: int
    topic: str
    username: str
    password: str
    host: str = HOST

    def argv(self) -> list[str]:
        """The connection options shared by mosquitto_pub and mosquitto_sub."""
        return [
            *("-h", self.host, "-p", str(self.port), "-V", MQTT_VERSION),
            *("-u", self.username, "-P", self.password),
            # The brokers set TCP_NODELAY on their side; without it here too, Nagle's
            # algorithm would hold back small PUBLISHes waiting for the previous ACK.
            "--nodelay",
        ]


@dataclass(frozen=True, slots=True, kw_only=True)
class PublishRun:
    publishers: int
    messages: int  # messages the publishers were given
    published: int  # of them, acknowledged: in batches whose mosquitto_pub exited 0
    started: float  # time.monotonic() before the first publisher started
    ended: float  # when the last publisher was done
    failures: tuple[str, ...]  # one line per publisher that stopped early
    cpu_seconds: float  # user + system CPU of the publisher processes

    @property
    def seconds(self) -> float:
        return self.ended - self.started


def _lines(work_dir: Path, count: int) -> Path:
    path = work_dir / f"senml-{count}.txt"
    if not path.exists():
        work_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(f"{PAYLOAD}\n" * count)
    return path


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@dataclass(slots=True)
class _Publisher:
    """One publisher: a mosquitto_pub per batch of lines, one after the other."""

    argv: list[str]
    client_id: str
    batches: list[tuple[Path, int]]  # files of lines and their count, at most `BATCH`
    deadline: float
    work_dir: Path
    published: int = 0
    failure: str = ""

    def run(self) -> None:
        for number, (lines, count) in enumerate(self.batches):
            errors = self.work_dir / f"{self.client_id}-{number}.err"
            with lines.open("rb") as stdin, errors.open("wb") as stderr:
                process = subprocess.Popen(
                    [*self.argv, "-i", f"{self.client_id}-{number}"],
                    stdin=stdin,
                    stdout=subprocess.DEVNULL,
                    stderr=stderr,
                )
            try:
                code = process.wait(max(0.0, self.deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.failure = f"killed at the deadline: {_tail(errors)}"
                return
            finally:
                if process.poll() is None:
                    process.kill()
                    process.wait()
            if code != 0:
                self.failure = f"exit {code}: {_tail(errors)}"
                return
            self.published += count


def publish(
    target: MqttTarget, *, messages: int, publishers: int, work_dir: Path, timeout: float
) -> PublishRun:
    """`publishers` publishers in parallel, `messages` in all, at QoS 1.

    mosquitto_pub reconnects when its connection is lost (a broker refusing its
    protocol version, say) and would then never end; after `timeout` every publisher
    still running is killed and counted as failed.
    """
    per_publisher = max(1, messages // publishers)
    sizes = [BATCH] * (per_publisher // BATCH) + [per_publisher % BATCH]
    # Written before the publishers start, so that none reads a file being written.
    batches = [(_lines(work_dir, size), size) for size in sizes if size]
    run_id = uuid.uuid4().hex[:8]
    argv = [_client("mosquitto_pub"), *target.argv(), "-q", "1", "-M", str(MAX_INFLIGHT)]
    argv += ["-t", target.topic, "-l"]
    cpu = _children_cpu()
    started = time.monotonic()
    slots = [
        _Publisher(argv, f"bench-pub-{run_id}-{index}", batches, started + timeout, work_dir)
        for index in range(publishers)
    ]
    threads = [threading.Thread(target=slot.run, name="mqtt-publisher") for slot in slots]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    ended = time.monotonic()
    return PublishRun(
        publishers=publishers,
        messages=per_publisher * publishers,
        published=sum(slot.published for slot in slots),
        started=started,
        ended=ended,
        failures=tuple(slot.failure for slot in slots if slot.failure),
        cpu_seconds=_children_cpu() - cpu,
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class PacedRun:
    rate: float  # messages per second asked for
    messages: int  # lines handed to the publisher
    send_seconds: float  # from the first line handed over to the last
    failure: str  # empty when the publisher exited 0: every message acknowledged

    @property
    def achieved_rate(self) -> float:
        return self.messages / self.send_seconds if self.send_seconds > 0 else 0.0

    @property
    def published(self) -> int:
        return 0 if self.failure else self.messages


def publish_paced(
    target: MqttTarget, *, rate: float, seconds: float, work_dir: Path, timeout: float = 60.0
) -> PacedRun:
    """One mosquitto_pub sending `rate` messages/s for `seconds`, at QoS 1 (open loop).

    The lines are handed to its standard input on schedule, every 10 ms, and it
    publishes each as it reads it. When the schedule ends its input is closed; it
    exits once the last message was acknowledged, within `timeout`. One process may
    send more than `BATCH` lines here: it reads them as they come, so its messages
    awaiting a PUBACK are a handful, never 65,535 apart.
    """
    total = round(rate * seconds)
    line = f"{PAYLOAD}\n".encode()
    errors = work_dir / f"paced-{uuid.uuid4().hex[:8]}.err"
    work_dir.mkdir(parents=True, exist_ok=True)
    argv = [_client("mosquitto_pub"), *target.argv(), "-q", "1", "-M", str(MAX_INFLIGHT)]
    argv += ["-t", target.topic, "-i", f"bench-paced-{uuid.uuid4().hex[:8]}", "-l"]
    with errors.open("wb") as stderr:
        process = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=stderr
        )
    assert process.stdin is not None
    written = 0
    failure = ""
    started = time.monotonic()
    send_seconds = 0.0
    try:
        while written < total and process.poll() is None:
            due = min(total, int((time.monotonic() - started) * rate) + 1)
            if due > written:
                process.stdin.write(line * (due - written))
                process.stdin.flush()
                written = due
            time.sleep(0.01)
        send_seconds = time.monotonic() - started
        process.stdin.close()
        code = process.wait(timeout)
        if code != 0 or written < total:
            failure = f"exit {code} after {written:,} of {total:,} lines: {_tail(errors)}"
    except (BrokenPipeError, subprocess.TimeoutExpired) as exc:
        failure = f"{type(exc).__name__} after {written:,} of {total:,} lines: {_tail(errors)}"
    finally:
        if not process.stdin.closed:
            with contextlib.suppress(BrokenPipeError):
                process.stdin.close()
        if process.poll() is None:
            process.kill()
            process.wait()
    return PacedRun(rate=rate, messages=written, send_seconds=send_seconds, failure=failure)


def publish_one(target: MqttTarget, payload: str = PAYLOAD, *, timeout: float = 10.0) -> bool:
    """Publish one QoS 1 message; True once acknowledged, False if refused or not in time."""
    argv = [_client("mosquitto_pub"), *target.argv(), "-q", "1", "-t", target.topic]
    argv += ["-i", f"bench-one-{uuid.uuid4().hex[:8]}", "-m", payload]
    try:
        completed = subprocess.run(argv, capture_output=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return False
    return completed.returncode == 0


def _tail(path: Path) -> str:
    try:
        lines = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return " | ".join(lines[-3:]) or "(no output)"


@dataclass(frozen=True, slots=True)
class Delivery:
    received: int  # load messages the subscriber got since the count it started from
    last_at: float  # time.monotonic() when the last of them arrived
    complete: bool  # all that was expected arrived


class Subscriber:
    """One `mosquitto_sub` at QoS 1, counting the messages of the load as they arrive.

    A thread reads its output: one line per message, the payload. Load messages are
    `PAYLOAD`; entering the context publishes a marker until the subscriber shows it,
    so that no load message is sent before the subscription exists.
    """

    def __init__(self, target: MqttTarget, *, work_dir: Path, ready_timeout: float = 30.0) -> None:
        self._target = target
        self._errors = work_dir / f"sub-{uuid.uuid4().hex[:8]}.err"
        self._ready_timeout = ready_timeout
        self._process: subprocess.Popen[bytes] | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._received = 0
        self._markers = 0
        self._last_at = 0.0

    @property
    def received(self) -> int:
        with self._lock:
            return self._received

    def __enter__(self) -> Self:
        argv = [_client("mosquitto_sub"), *self._target.argv(), "-q", "1"]
        argv += ["-t", self._target.topic, "-i", f"bench-sub-{uuid.uuid4().hex[:8]}"]
        self._errors.parent.mkdir(parents=True, exist_ok=True)
        with self._errors.open("wb") as stderr:
            self._process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=stderr)
        assert self._process.stdout is not None
        self._thread = threading.Thread(
            target=self._count, args=(self._process.stdout,), name="mqtt-subscriber", daemon=True
        )
        self._thread.start()
        try:
            self._wait_subscribed()
        except BaseException:
            self._stop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop()

    def _stop(self) -> None:
        process = self._process
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._thread is not None:
            self._thread.join(10)
        if process is not None and process.stdout is not None:
            process.stdout.close()

    def _wait_subscribed(self) -> None:
        deadline = time.monotonic() + self._ready_timeout
        while time.monotonic() < deadline:
            process = self._process
            if process is None or process.poll() is not None:
                raise RuntimeError(f"mosquitto_sub exited: {_tail(self._errors)}")
            publish_one(self._target, _READY, timeout=5.0)
            with self._changed:
                if self._changed.wait_for(lambda: self._markers > 0, timeout=0.5):
                    return
        raise RuntimeError(f"mosquitto_sub not subscribed after {self._ready_timeout:.0f} s")

    def _count(self, stream: IO[bytes]) -> None:
        load, marker = f"{PAYLOAD}\n".encode(), f"{_READY}\n".encode()
        rest = b""
        # read1: whatever the pipe holds, at once; the payloads are never split across
        # counts since only complete lines are counted.
        reader = stream.read1 if hasattr(stream, "read1") else stream.read
        while chunk := reader(1 << 16):
            data = rest + chunk
            cut = data.rfind(b"\n") + 1
            complete, rest = data[:cut], data[cut:]
            if not complete:
                continue
            now = time.monotonic()
            with self._changed:
                self._received += complete.count(load)
                self._markers += complete.count(marker)
                self._last_at = now
                self._changed.notify_all()

    def wait_for(self, count: int, *, quiet: float, timeout: float) -> Delivery:
        """Wait until `count` load messages arrived in all (since the subscriber started).

        Gives up when nothing arrived for `quiet` seconds (messages were lost) or after
        `timeout`; `Delivery.received` is then what did arrive.
        """
        called = time.monotonic()
        deadline = called + timeout
        with self._changed:
            while self._received < count:
                give_up = min(deadline, max(self._last_at, called) + quiet)
                now = time.monotonic()
                if now >= give_up:
                    break
                self._changed.wait(give_up - now)
            return Delivery(self._received, self._last_at, self._received >= count)


async def _grant(admin_url: str, username: str, password: str, topic_filter: str) -> None:
    from shopfloor.adapters.mosquitto import Acl, DynsecClient

    acls = [
        Acl(kind, topic_filter, allow=True).to_json()
        for kind in ("publishClientSend", "subscribePattern", "publishClientReceive")
    ]
    async with DynsecClient.from_url(admin_url, timeout=10.0) as client:
        await client.run(
            [
                {"command": "createRole", "rolename": username, "acls": acls},
                {
                    "command": "createClient",
                    "username": username,
                    "password": password,
                    "roles": [{"rolename": username}],
                },
            ]
        )


def grant_anchor_client(admin_url: str, username: str, password: str, topic_filter: str) -> None:
    """A dynamic-security client that may publish and subscribe under `topic_filter`.

    The anchor's clients need one: the broker keeps Mosquitto mode's configuration,
    which refuses anonymous clients. It is not marked as Shopfloor's, so Shopfloor's
    reconciliation leaves it alone.
    """
    asyncio.run(_grant(admin_url, username, password, topic_filter))
