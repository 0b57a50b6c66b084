"""A fake of the Docker Engine HTTP API, Swarm subset, served on a loopback port.

`SwarmRuntime` has never been run against a real engine in this test suite: every
test drives it through the real `docker` SDK against this fake. What it models:

- `GET /_ping`, `GET /version` (API 1.43), `GET /info` (a single active manager),
  with or without the `/v1.xx` prefix the SDK adds;
- services: `POST /services/create`, `GET /services` (filters `id`, `name`, `label`
  as `k` or `k=v`, in list or `{value: true}` form), `GET /services/{id|name}`,
  `POST /services/{id}/update?version=N` (500 "update out of sequence" for a stale
  index, as dockerd answers), `DELETE /services/{id}`; one version index across all
  objects, bumped on each write, like the raft index;
- secrets: create (409 on a taken name), list (filters `id`, `name`, `label`),
  inspect, delete (404 unknown, 400 while a service references it); a service whose
  spec references an unknown secret is refused (404);
- tasks: `GET /tasks` (filters `service`, `id`, `desired-state`). A scheduler advances
  tasks lazily on each request: a new task is `starting` after 50 ms and `running`
  after 150 ms; images whose name contains `fail` end `failed` with exit code 3.
  A task that ends is given desired state `shutdown` and, if the restart condition
  allows it (`any`; `on-failure` for a failure), a new task takes its slot after the
  policy's delay (default here 100 ms, dockerd's is 5 s). A changed task template
  (image, env, secrets, `ForceUpdate`...) replaces each slot's task (stop-first);
  replicas 0 shuts every task down;
- logs: `GET /services/{id}/logs` in the multiplexed framing (8-byte header: stream
  type, 3 zero bytes, big-endian length), with `timestamps`, `tail`, `since`,
  `stdout`/`stderr` and `follow` (chunked, until the client or the server goes). A
  running task of a non-failing image has printed `hello from <name>` (the name from
  the service's `shopfloor.agent.key` label); a failing one has printed
  `exiting with status 3` on stderr.

What it does not model: nodes, networks, placement, health checks, image pulls or
digest pinning (dockerd appends `@sha256:...` to the image), update monitoring and
automatic rollback (`UpdateConfig.FailureAction` is stored, never acted on), task
history limits, configs, authentication, TLS, and the exact text of most errors.

    async with FakeDockerEngine() as engine: ...     # or engine.start() / engine.stop()
    engine.url  # "tcp://127.0.0.1:<port>"
"""

from __future__ import annotations

import base64
import itertools
import json
import re
import secrets
import struct
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

__all__ = ["FakeDockerEngine", "frame"]

API_VERSION = "1.43"
PENDING_STATES = ("new", "pending", "assigned", "accepted", "preparing", "starting")
ENDED_STATES = ("complete", "failed", "rejected", "shutdown")
DEFAULT_RESTART_DELAY = 0.1
STDOUT, STDERR = 1, 2


def frame(stream: int, payload: bytes) -> bytes:
    """One frame of Docker's multiplexed stream."""
    return struct.pack(">BxxxL", stream, len(payload)) + payload


def rfc3339(moment: float) -> str:
    """RFC 3339 with nanoseconds, as the engine writes times."""
    whole = datetime.fromtimestamp(int(moment), UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{whole}.{round((moment % 1) * 1e9):09d}Z"


def new_id() -> str:
    return secrets.token_hex(13)[:25]


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class Task:
    id: str
    service_id: str
    slot: int
    spec: dict[str, Any]
    created: float
    index: int
    state: str = "new"
    desired: str = "running"
    timestamp: float = 0.0
    exit_code: int | None = None
    err: str = ""
    started: float | None = None
    logs: list[tuple[float, int, str]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        status: dict[str, Any] = {
            "Timestamp": rfc3339(self.timestamp or self.created),
            "State": self.state,
            "Message": self.state,
        }
        if self.err:
            status["Err"] = self.err
        if self.exit_code is not None:
            status["ContainerStatus"] = {"ExitCode": self.exit_code}
        return {
            "ID": self.id,
            "Version": {"Index": self.index},
            "CreatedAt": rfc3339(self.created),
            "UpdatedAt": rfc3339(self.timestamp or self.created),
            "Spec": self.spec,
            "ServiceID": self.service_id,
            "Slot": self.slot,
            "Status": status,
            "DesiredState": self.desired,
        }


@dataclass
class Service:
    id: str
    spec: dict[str, Any]
    index: int
    created: float
    updated: float
    previous: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "ID": self.id,
            "Version": {"Index": self.index},
            "CreatedAt": rfc3339(self.created),
            "UpdatedAt": rfc3339(self.updated),
            "Spec": self.spec,
            "Endpoint": {"Spec": {}},
        }
        if self.previous is not None:
            body["PreviousSpec"] = self.previous
        return body

    @property
    def replicas(self) -> int:
        return int(self.spec.get("Mode", {}).get("Replicated", {}).get("Replicas", 1))


@dataclass
class Secret:
    id: str
    name: str
    labels: dict[str, str]
    data: bytes
    index: int
    created: float

    def to_json(self) -> dict[str, Any]:
        return {
            "ID": self.id,
            "Version": {"Index": self.index},
            "CreatedAt": rfc3339(self.created),
            "UpdatedAt": rfc3339(self.created),
            "Spec": {"Name": self.name, "Labels": self.labels},
        }


def _filters(query: dict[str, list[str]]) -> dict[str, list[str]]:
    raw = query.get("filters", ["{}"])[0]
    parsed = json.loads(raw) if raw else {}
    return {k: list(v) if isinstance(v, list) else list(v.keys()) for k, v in parsed.items()}


def _labels_match(labels: dict[str, str], wanted: list[str]) -> bool:
    for item in wanted:
        name, sep, value = item.partition("=")
        if name not in labels or (sep and labels[name] != value):
            return False
    return True


def _secret_ids(spec: dict[str, Any]) -> list[str]:
    refs = spec.get("TaskTemplate", {}).get("ContainerSpec", {}).get("Secrets") or []
    return [ref["SecretID"] for ref in refs]


class Engine:
    """The in-memory state and its scheduler; every method runs under `lock`."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.index = itertools.count(10)
        self.services: dict[str, Service] = {}
        self.tasks: dict[str, Task] = {}
        self.secrets: dict[str, Secret] = {}
        self.requests: list[tuple[str, str, dict[str, list[str]], Any]] = []
        self.stale_next_update: set[str] = set()  # a concurrent writer, once, per service
        self.images: dict[str, dict[str, str]] = {}  # images present: name → labels

    # -- the scheduler -------------------------------------------------------------

    def tick(self, now: float | None = None) -> None:
        now = time.time() if now is None else now
        for task in list(self.tasks.values()):
            if task.desired != "running" or task.state not in PENDING_STATES:
                continue
            age = now - task.created
            image = task.spec.get("ContainerSpec", {}).get("Image", "")
            if age >= 0.15:
                if "fail" in image:
                    self._end(task, now, "failed", 3, "task: non-zero exit (3)")
                else:
                    task.state, task.timestamp, task.started = "running", now, now
                    task.logs.append((now, STDOUT, f"hello from {self._agent_name(task)}"))
            elif age >= 0.05 and task.state == "new":
                task.state, task.timestamp = "starting", now

    def _agent_name(self, task: Task) -> str:
        service = self.services.get(task.service_id)
        key = (service.spec.get("Labels") or {}).get("shopfloor.agent.key", "") if service else ""
        return key.rsplit("/", 1)[-1] or "agent"

    def _end(self, task: Task, now: float, state: str, code: int, err: str) -> None:
        if code:
            task.logs.append((now, STDERR, f"exiting with status {code}"))
        task.state, task.timestamp, task.exit_code, task.err = state, now, code, err
        task.desired = "shutdown"
        service = self.services.get(task.service_id)
        if service is None:
            return
        policy = service.spec.get("TaskTemplate", {}).get("RestartPolicy") or {}
        condition = policy.get("Condition", "any")
        if condition == "any" or (condition == "on-failure" and code != 0):
            delay = policy.get("Delay")
            start = now + (delay / 1e9 if delay is not None else DEFAULT_RESTART_DELAY)
            self._new_task(service, task.slot, start)

    def _new_task(self, service: Service, slot: int, created: float | None = None) -> None:
        task = Task(
            id=new_id(),
            service_id=service.id,
            slot=slot,
            spec=json.loads(json.dumps(service.spec.get("TaskTemplate", {}))),
            created=time.time() if created is None else created,
            index=next(self.index),
        )
        self.tasks[task.id] = task

    def _shutdown(self, task: Task) -> None:
        if task.desired == "running":
            task.desired = "shutdown"
            if task.state not in ENDED_STATES:
                task.state, task.timestamp = "shutdown", time.time()

    def _converge(self, service: Service, template_changed: bool) -> None:
        live = [t for t in self.tasks.values() if t.service_id == service.id]
        by_slot: dict[int, Task] = {}
        for task in sorted(live, key=lambda t: t.index):
            by_slot[task.slot] = task
        for slot, task in by_slot.items():
            if slot > service.replicas or template_changed:
                self._shutdown(task)
        # Like swarmkit's reconciler, on each service change a slot without a task
        # meant to run (never had one, scaled down, or ended for good) gets a new one.
        for slot in range(1, service.replicas + 1):
            task = by_slot.get(slot)
            if task is None or task.desired != "running" or template_changed:
                self._new_task(service, slot)

    # -- objects -------------------------------------------------------------------

    def service(self, ref: str) -> Service:
        for service in self.services.values():
            if ref in (service.id, service.spec.get("Name")):
                return service
        raise ApiError(404, f"service {ref} not found")

    def _check_secrets(self, spec: dict[str, Any]) -> None:
        for secret_id in _secret_ids(spec):
            if secret_id not in self.secrets:
                raise ApiError(404, f"secret {secret_id} not found")

    def create_service(self, spec: dict[str, Any]) -> dict[str, Any]:
        name = spec.get("Name") or ""
        if not name or not spec.get("TaskTemplate", {}).get("ContainerSpec", {}).get("Image"):
            raise ApiError(400, "a service needs a name and an image")
        if any(s.spec.get("Name") == name for s in self.services.values()):
            raise ApiError(409, f"rpc error: code = AlreadyExists desc = name conflicts: {name}")
        self._check_secrets(spec)
        now = time.time()
        service = Service(new_id(), spec, next(self.index), now, now)
        self.services[service.id] = service
        self._converge(service, template_changed=False)
        return {"ID": service.id}

    def update_service(self, ref: str, version: int, spec: dict[str, Any]) -> dict[str, Any]:
        service = self.service(ref)
        if service.id in self.stale_next_update:
            self.stale_next_update.discard(service.id)
            service.index = next(self.index)
        if version != service.index:
            raise ApiError(500, "rpc error: code = Unknown desc = update out of sequence")
        self._check_secrets(spec)
        changed = spec.get("TaskTemplate") != service.spec.get("TaskTemplate")
        service.previous, service.spec = service.spec, spec
        service.index, service.updated = next(self.index), time.time()
        self._converge(service, template_changed=changed)
        return {}

    def remove_service(self, ref: str) -> None:
        service = self.service(ref)
        del self.services[service.id]
        for task in [t for t in self.tasks.values() if t.service_id == service.id]:
            del self.tasks[task.id]

    def list_services(self, filters: dict[str, list[str]]) -> list[dict[str, Any]]:
        found = []
        for service in self.services.values():
            labels = service.spec.get("Labels") or {}
            if "id" in filters and not any(service.id.startswith(i) for i in filters["id"]):
                continue
            if "name" in filters and service.spec.get("Name") not in filters["name"]:
                continue
            if "label" in filters and not _labels_match(labels, filters["label"]):
                continue
            found.append(service.to_json())
        return found

    def list_tasks(self, filters: dict[str, list[str]]) -> list[dict[str, Any]]:
        ids = set()
        for ref in filters.get("service", []):
            try:
                ids.add(self.service(ref).id)
            except ApiError:
                continue
        found = []
        for task in sorted(self.tasks.values(), key=lambda t: t.index):
            if "service" in filters and task.service_id not in ids:
                continue
            if "id" in filters and task.id not in filters["id"]:
                continue
            if "desired-state" in filters and task.desired not in filters["desired-state"]:
                continue
            if task.created > time.time():
                continue  # a restart still waiting for its delay
            found.append(task.to_json())
        return found

    def create_secret(self, body: dict[str, Any]) -> dict[str, Any]:
        name = body.get("Name") or ""
        if not re.fullmatch(r"[a-zA-Z0-9]+(?:[a-zA-Z0-9-_.]*[a-zA-Z0-9])?", name) or len(name) > 64:
            raise ApiError(400, f"invalid secret name {name!r}")
        if any(s.name == name for s in self.secrets.values()):
            raise ApiError(409, f"rpc error: code = AlreadyExists desc = secret {name} exists")
        secret = Secret(
            new_id(),
            name,
            dict(body.get("Labels") or {}),
            base64.b64decode(body.get("Data") or ""),
            next(self.index),
            time.time(),
        )
        self.secrets[secret.id] = secret
        return {"ID": secret.id}

    def secret(self, ref: str) -> Secret:
        for secret in self.secrets.values():
            if ref in (secret.id, secret.name):
                return secret
        raise ApiError(404, f"secret {ref} not found")

    def remove_secret(self, ref: str) -> None:
        secret = self.secret(ref)
        users = [s.spec["Name"] for s in self.services.values() if secret.id in _secret_ids(s.spec)]
        if users:
            raise ApiError(
                400,
                f"rpc error: code = InvalidArgument desc = secret '{secret.name}' is in use "
                f"by the following service: {', '.join(users)}",
            )
        del self.secrets[secret.id]

    def list_secrets(self, filters: dict[str, list[str]]) -> list[dict[str, Any]]:
        found = []
        for secret in self.secrets.values():
            if "id" in filters and secret.id not in filters["id"]:
                continue
            if "name" in filters and secret.name not in filters["name"]:
                continue
            if "label" in filters and not _labels_match(secret.labels, filters["label"]):
                continue
            found.append(secret.to_json())
        return found

    def image(self, name: str) -> dict[str, Any]:
        """`GET /images/{name}/json`, as much as the runtime reads of it."""
        if name not in self.images:
            raise ApiError(404, f"No such image: {name}")
        return {"Id": f"sha256:{new_id()}", "RepoTags": [name],
                "Config": {"Labels": dict(self.images[name])}}  # fmt: skip

    def log_entries(
        self, service: Service, query: dict[str, list[str]]
    ) -> list[tuple[float, int, str]]:
        """The service's output the query selects (streams, `since`), oldest first."""
        streams = {STDOUT} if _flag(query, "stdout") else set()
        streams |= {STDERR} if _flag(query, "stderr") else set()
        since = float(query.get("since", ["0"])[0] or 0)
        return sorted(
            (moment, stream, text)
            for task in self.tasks.values()
            if task.service_id == service.id
            for moment, stream, text in task.logs
            if stream in streams and moment > since
        )


def _flag(query: dict[str, list[str]], name: str) -> bool:
    return query.get(name, ["0"])[0].lower() in ("1", "true")


def _frames(entries: list[tuple[float, int, str]], timestamps: bool) -> bytes:
    return b"".join(
        frame(stream, f"{rfc3339(moment) + ' ' if timestamps else ''}{text}\n".encode())
        for moment, stream, text in entries
    )


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def do_HEAD(self) -> None:
        self._handle("HEAD")

    def _reply(self, status: int, body: Any, content_type: str = "application/json") -> None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Api-Version", API_VERSION)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _handle(self, method: str) -> None:
        url = urlsplit(self.path)
        path = re.sub(r"^/v1\.\d+", "", url.path)
        query = parse_qs(url.query)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        body = json.loads(raw) if raw else None
        engine = self.server.engine
        try:
            with engine.lock:
                engine.requests.append((method, path, query, body))
                engine.tick()
                if method == "GET" and re.fullmatch(r"/services/[^/]+/logs", path):
                    service = engine.service(path.split("/")[2])
                else:
                    status, result = self._route(engine, method, path, query, body)
            if method == "GET" and re.fullmatch(r"/services/[^/]+/logs", path):
                self._stream_logs(service, query)
                return
        except ApiError as error:
            self._reply(error.status, {"message": error.message})
            return
        if result is None:
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif isinstance(result, str):
            self._reply(status, result.encode(), "text/plain")
        else:
            self._reply(status, result)

    def _route(
        self,
        engine: Engine,
        method: str,
        path: str,
        query: dict[str, list[str]],
        body: Any,
    ) -> tuple[int, Any]:
        parts = path.strip("/").split("/")
        filters = _filters(query)
        match method, parts:
            case (("GET" | "HEAD"), ["_ping"]):
                return 200, "OK"
            case "GET", ["version"]:
                return 200, {
                    "ApiVersion": API_VERSION,
                    "MinAPIVersion": "1.12",
                    "Version": "24.0.0-fake",
                    "Os": "linux",
                    "Arch": "amd64",
                }
            case "GET", ["info"]:
                return 200, {
                    "ID": "fake",
                    "Name": "fake-engine",
                    "Swarm": {"LocalNodeState": "active", "ControlAvailable": True},
                }
            case "POST", ["services", "create"]:
                return 201, engine.create_service(body or {})
            case "GET", ["services"]:
                return 200, engine.list_services(filters)
            case "GET", ["services", ref]:
                return 200, engine.service(ref).to_json()
            case "POST", ["services", ref, "update"]:
                version = int(query.get("version", ["-1"])[0])
                return 200, engine.update_service(ref, version, body or {})
            case "DELETE", ["services", ref]:
                engine.remove_service(ref)
                return 200, None
            case "GET", ["tasks"]:
                return 200, engine.list_tasks(filters)
            case "POST", ["secrets", "create"]:
                return 201, engine.create_secret(body or {})
            case "GET", ["secrets"]:
                return 200, engine.list_secrets(filters)
            case "GET", ["secrets", ref]:
                return 200, engine.secret(ref).to_json()
            case "DELETE", ["secrets", ref]:
                engine.remove_secret(ref)
                return 204, None
            case "GET", ["images", *name, "json"]:
                return 200, engine.image("/".join(name))
        raise ApiError(404, f"page not found: {method} {path}")

    def _stream_logs(self, service: Service, query: dict[str, list[str]]) -> None:
        engine = self.server.engine
        with engine.lock:
            entries = engine.log_entries(service, query)
        seen = set(entries)
        tail = query.get("tail", ["all"])[0]
        if tail != "all":
            entries = entries[-int(tail) :] if int(tail) > 0 else []
        self.send_response(200)
        self.send_header("Content-Type", "application/vnd.docker.multiplexed-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        try:
            self._chunk(_frames(entries, _flag(query, "timestamps")))
            while _flag(query, "follow") and not self.server.stopping.is_set():
                time.sleep(0.05)
                with engine.lock:
                    engine.tick()
                    if service.id not in engine.services:
                        break
                    new = [e for e in engine.log_entries(service, query) if e not in seen]
                seen.update(new)
                self._chunk(_frames(new, _flag(query, "timestamps")))
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _chunk(self, data: bytes) -> None:
        if not data:
            return  # an empty chunk would end the body
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    engine: Engine
    stopping: threading.Event


class FakeDockerEngine:
    """The fake engine on a free loopback port, served from a thread."""

    def __init__(self) -> None:
        self.engine = Engine()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.engine = self.engine
        self._server.stopping = threading.Event()
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="fake-docker", daemon=True
        )

    @property
    def url(self) -> str:
        return f"tcp://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> FakeDockerEngine:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()
