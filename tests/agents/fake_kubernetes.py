"""A fake of the Kubernetes HTTP API, small and in memory, for the Kubernetes runtime's tests.

It serves, on a free loopback port, the subset of the API that `KubernetesRuntime`
calls through the official client, with the shapes the API reference gives:

- `apps/v1` Deployments: create (409 `AlreadyExists`), read, list (`labelSelector`
  with `k=v`, `k==v`, `k!=v`, `k`, `!k`), replace (409 `Conflict` on a stale
  `metadata.resourceVersion`), patch (`application/merge-patch+json`,
  `application/strategic-merge-patch+json` — merged like a merge patch, which is
  what strategic merge does for the maps we patch; lists keyed by `name`, as for
  containers and env, are not merged by key but replaced — and
  `application/json-patch+json` with `add`/`replace`/`remove`), delete;
  `metadata.resourceVersion`, `uid`, `creationTimestamp` and `generation` (bumped
  when `spec` changes) are kept as the API server keeps them.
- `v1` Secrets: the same verbs. `v1` Pods: list, read, and `pods/{name}/log`
  (`tailLines`, `sinceSeconds`, `sinceTime`, `timestamps`, `follow`).
- Errors are `Status` objects: `{"kind": "Status", "status": "Failure",
  "reason": "NotFound", "code": 404, ...}`; names that are not DNS-1123 subdomains and
  label values that are not valid labels are refused with 422 `Invalid`.

It simulates the controllers, with shortcuts: no ReplicaSets (pods are owned by their
Deployment directly and labelled with a `pod-template-hash` of the template); each
Deployment gets `spec.replicas` pods of its current template; a changed template
replaces all the old pods at once (a rollout, without surge or readiness gates);
deleting a Deployment deletes its pods at once, whatever the propagation policy. A
pod is `Pending` (container waiting, `ContainerCreating`) for a short tick, then its
container starts: an image whose name contains `fail` terminates at once with exit
code 3, waits in `CrashLoopBackOff` (with `lastState.terminated`) for a short, growing
back-off and starts again, `restartCount` growing; any other image runs, is ready and
prints `hello from <container name>` once. Deployment `status` (`replicas`,
`readyReplicas`, `updatedReplicas`, `availableReplicas`, `observedGeneration`) follows.

It does not model: authentication or RBAC, namespaces as objects (any namespace
exists), watches, field selectors, server-side apply, defaulting of pod specs,
scheduling, image pulls, probes, Services, mounting Secret volumes (a Secret change
has no visible effect on a pod, as with the kubelet's refresh, which is not
observable through the API either), or the Deployment's progress conditions.
`KubernetesRuntime` has been run only against this fake, never against a real cluster.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

__all__ = ["FakeKubernetes"]

START_DELAY = 0.15  # Pending before a container starts
CRASH_SHOWN = 0.05  # how long a crashed container shows as terminated before back-off
BACKOFF_BASE, BACKOFF_CAP = 0.1, 0.8
TICK = 0.03

_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$")
_LABEL_NAME = re.compile(r"^([a-z0-9.-]{1,253}/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _status(code: int, reason: str, message: str, **details: Any) -> dict[str, Any]:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "details": details,
        "code": code,
    }


class ApiError(Exception):
    def __init__(self, status: dict[str, Any]) -> None:
        super().__init__(status["message"])
        self.status = status


def _not_found(kind: str, name: str) -> ApiError:
    group = "apps" if kind == "deployments" else ""
    return ApiError(
        _status(404, "NotFound", f'{kind} "{name}" not found', name=name, group=group, kind=kind)
    )


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def json_patch(target: Any, operations: list[dict[str, Any]]) -> Any:
    """RFC 6902, the `add`, `replace` and `remove` operations."""
    doc = copy.deepcopy(target)
    for op in operations:
        parts = [p.replace("~1", "/").replace("~0", "~") for p in op["path"].split("/")[1:]]
        parent = doc
        for part in parts[:-1]:
            parent = parent[int(part)] if isinstance(parent, list) else parent[part]
        last = parts[-1]
        if op["op"] in ("add", "replace"):
            if isinstance(parent, list):
                if last == "-":
                    parent.append(op["value"])
                elif op["op"] == "add":
                    parent.insert(int(last), op["value"])
                else:
                    parent[int(last)] = op["value"]
            else:
                if op["op"] == "replace" and last not in parent:
                    raise ApiError(_status(422, "Invalid", f"replace: missing path {op['path']}"))
                parent[last] = op["value"]
        elif op["op"] == "test":
            found = parent[int(last)] if isinstance(parent, list) else parent.get(last)
            if found != op["value"]:
                raise ApiError(_status(422, "Invalid", f"test failed at {op['path']}"))
        elif op["op"] == "remove":
            del parent[int(last) if isinstance(parent, list) else last]
        else:
            raise ApiError(_status(422, "Invalid", f"unsupported json patch op {op['op']}"))
    return doc


def selector_matches(selector: str, labels: dict[str, str]) -> bool:
    for term in filter(None, (t.strip() for t in selector.split(","))):
        if "!=" in term:
            key, value = term.split("!=", 1)
            if labels.get(key) == value:
                return False
        elif "=" in term:
            key, value = term.replace("==", "=").split("=", 1)
            if labels.get(key) != value:
                return False
        elif term.startswith("!"):
            if term[1:] in labels:
                return False
        elif term not in labels:
            return False
    return True


def template_hash(template: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest()[:10]


@dataclass
class _Container:
    """The simulated life of one pod's (first) container."""

    name: str
    image: str
    created: float
    started_at: str | None = None
    crashed_at: float | None = None  # monotonic, while terminated or backing off
    restarts: int = 0
    last_exit: dict[str, Any] | None = None
    logs: list[tuple[datetime, str]] = field(default_factory=list)

    @property
    def fails(self) -> bool:
        return "fail" in self.image


class FakeKubernetes:
    """The fake API server: `with FakeKubernetes() as kube: kube.url`."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._objects: dict[str, dict[tuple[str, str], dict[str, Any]]] = {
            "deployments": {},
            "secrets": {},
            "pods": {},
        }
        self._containers: dict[tuple[str, str], _Container] = {}
        self._versions = itertools.count(1)
        self._ips = itertools.count(2)
        self._stopping = threading.Event()
        self.requests: list[tuple[str, str, str]] = []  # (method, path, content type)
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _serve(self, method: str) -> None:
                fake._handle(self, method)

            def do_GET(self) -> None:
                self._serve("GET")

            def do_POST(self) -> None:
                self._serve("POST")

            def do_PUT(self) -> None:
                self._serve("PUT")

            def do_PATCH(self) -> None:
                self._serve("PATCH")

            def do_DELETE(self) -> None:
                self._serve("DELETE")

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._threads = [
            threading.Thread(target=self._server.serve_forever, name="fake-kube-http", daemon=True),
            threading.Thread(target=self._controllers, name="fake-kube-controllers", daemon=True),
        ]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> FakeKubernetes:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
        for thread in self._threads:
            thread.join(timeout=5)

    # -- what tests look at directly ---------------------------------------------------

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        with self._lock:
            found = self._objects[kind].get((namespace, name))
            return copy.deepcopy(found) if found is not None else None

    def items(self, kind: str, namespace: str) -> list[dict[str, Any]]:
        with self._lock:
            return [
                copy.deepcopy(o) for (ns, _), o in self._objects[kind].items() if ns == namespace
            ]

    # -- HTTP --------------------------------------------------------------------------

    def _handle(self, request: BaseHTTPRequestHandler, method: str) -> None:
        url = urlsplit(request.path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        length = int(request.headers.get("Content-Length") or 0)
        raw = request.rfile.read(length) if length else b""
        content_type = (request.headers.get("Content-Type") or "").split(";")[0]
        with self._lock:
            self.requests.append((method, url.path, content_type))
        try:
            body = json.loads(raw) if raw else None
            route = self._route(url.path)
            if route is None:
                raise ApiError(
                    _status(404, "NotFound", "the server could not find the requested resource")
                )
            kind, namespace, name, sub = route
            if sub == "log":
                self._log(request, namespace, name, query)
                return
            code, answer = self._dispatch(method, kind, namespace, name, body, query, content_type)
        except ApiError as error:
            code, answer = error.status["code"], error.status
        except (ValueError, KeyError, IndexError, TypeError) as error:
            code, answer = 400, _status(400, "BadRequest", f"bad request: {error}")
        data = json.dumps(answer).encode()
        request.send_response(code)
        request.send_header("Content-Type", "application/json")
        request.send_header("Content-Length", str(len(data)))
        request.end_headers()
        request.wfile.write(data)

    @staticmethod
    def _route(path: str) -> tuple[str, str, str | None, str | None] | None:
        m = re.fullmatch(
            r"/(?:apis/apps/v1/namespaces/([^/]+)/(deployments)"
            r"|api/v1/namespaces/([^/]+)/(secrets|pods))(?:/([^/]+))?(?:/(log))?",
            path,
        )
        if m is None:
            return None
        namespace, kind = (m[1], m[2]) if m[2] else (m[3], m[4])
        if m[6] and kind != "pods":
            return None
        return kind, namespace, m[5], m[6]

    def _dispatch(
        self,
        method: str,
        kind: str,
        namespace: str,
        name: str | None,
        body: Any,
        query: dict[str, str],
        content_type: str,
    ) -> tuple[int, dict[str, Any]]:
        store = self._objects[kind]
        with self._lock:
            if name is None and method == "GET":
                selector = query.get("labelSelector", "")
                items = [
                    copy.deepcopy(o)
                    for (ns, _), o in sorted(store.items())
                    if ns == namespace
                    and selector_matches(selector, o["metadata"].get("labels", {}))
                ]
                list_kind = {"deployments": "DeploymentList", "secrets": "SecretList"}
                return 200, {
                    "kind": list_kind.get(kind, "PodList"),
                    "apiVersion": "apps/v1" if kind == "deployments" else "v1",
                    "metadata": {"resourceVersion": str(next(self._versions))},
                    "items": items,
                }
            if name is None and method == "POST":
                if kind == "pods":
                    raise ApiError(
                        _status(405, "MethodNotAllowed", "pods are made by controllers here")
                    )
                name = body.get("metadata", {}).get("name", "")
                if (namespace, name) in store:
                    raise ApiError(
                        _status(
                            409,
                            "AlreadyExists",
                            f'{kind} "{name}" already exists',
                            name=name,
                            kind=kind,
                        )
                    )
                obj = self._admit(kind, namespace, body, None)
                store[(namespace, name)] = obj
                return 201, copy.deepcopy(obj)
            if name is None:
                raise ApiError(_status(405, "MethodNotAllowed", f"{method} on a collection"))
            current = store.get((namespace, name))
            if current is None:
                raise _not_found(kind, name)
            if method == "GET":
                return 200, copy.deepcopy(current)
            if kind == "pods":
                raise ApiError(_status(405, "MethodNotAllowed", "the fake's pods are read-only"))
            if method == "DELETE":
                del store[(namespace, name)]
                if kind == "deployments":
                    self._delete_pods(namespace, current["metadata"]["uid"])
                return 200, copy.deepcopy(current)
            if method == "PUT":
                wanted = body["metadata"].get("resourceVersion")
                if wanted and wanted != current["metadata"]["resourceVersion"]:
                    raise ApiError(
                        _status(
                            409,
                            "Conflict",
                            f'Operation cannot be fulfilled on {kind} "{name}": the object has '
                            "been modified; please apply your changes to the latest version "
                            "and try again",
                            name=name,
                            kind=kind,
                        )
                    )
                updated = body
            elif method == "PATCH":
                if content_type in (
                    "application/merge-patch+json",
                    "application/strategic-merge-patch+json",
                ):
                    updated = merge_patch(current, body)
                elif content_type == "application/json-patch+json":
                    updated = json_patch(current, body)
                else:
                    raise ApiError(
                        _status(
                            415,
                            "UnsupportedMediaType",
                            "the body of the request was in an unknown format - accepted "
                            "media types include: application/json-patch+json, "
                            "application/merge-patch+json, application/strategic-merge-patch+json",
                        )
                    )
            else:
                raise ApiError(_status(405, "MethodNotAllowed", method))
            obj = self._admit(kind, namespace, updated, current)
            store[(namespace, name)] = obj
            return 200, copy.deepcopy(obj)

    def _admit(
        self, kind: str, namespace: str, obj: dict[str, Any], current: dict[str, Any] | None
    ) -> dict[str, Any]:
        obj = copy.deepcopy(obj)
        meta = obj.setdefault("metadata", {})
        name = meta.get("name", "")
        if current is not None and name != current["metadata"]["name"]:
            raise ApiError(_status(422, "Invalid", "metadata.name: field is immutable"))
        problems = []
        if not _DNS_SUBDOMAIN.match(name):
            problems.append(
                f"metadata.name: Invalid value: {name!r}: a lowercase RFC 1123 subdomain"
            )
        labels = dict(meta.get("labels") or {})
        if kind == "deployments":
            labels.update(
                obj.get("spec", {}).get("template", {}).get("metadata", {}).get("labels") or {}
            )
        for key, value in labels.items():
            if (
                not _LABEL_NAME.match(key)
                or not isinstance(value, str)
                or not _LABEL_VALUE.match(value)
            ):
                problems.append(f"metadata.labels: Invalid value: {key}={value!r}")
        if kind == "deployments":
            spec = obj.get("spec") or {}
            selector = (spec.get("selector") or {}).get("matchLabels") or {}
            template_labels = spec.get("template", {}).get("metadata", {}).get("labels") or {}
            if not selector or any(template_labels.get(k) != v for k, v in selector.items()):
                problems.append(
                    "spec.template.metadata.labels: Invalid value: "
                    "`selector` does not match template `labels`"
                )
            if current is not None and current["spec"].get("selector") != spec.get("selector"):
                problems.append("spec.selector: Invalid value: field is immutable")
            containers = spec.get("template", {}).get("spec", {}).get("containers") or []
            if not containers or not all(c.get("image") and c.get("name") for c in containers):
                problems.append("spec.template.spec.containers: Required value")
        if problems:
            raise ApiError(
                _status(
                    422,
                    "Invalid",
                    f'{kind} "{name}" is invalid: ' + "; ".join(problems),
                    name=name,
                    kind=kind,
                )
            )
        if current is None:
            meta.update(uid=str(uuid.uuid4()), creationTimestamp=_now(), namespace=namespace)
            if kind == "deployments":
                meta["generation"] = 1
                obj.setdefault("status", {})
        else:
            for kept in ("uid", "creationTimestamp", "namespace", "generation"):
                if kept in current["metadata"]:
                    meta[kept] = current["metadata"][kept]
            if kind == "deployments":
                obj["status"] = current.get("status", {})
                if obj.get("spec") != current.get("spec"):
                    meta["generation"] = current["metadata"]["generation"] + 1
        meta["resourceVersion"] = str(next(self._versions))
        obj["kind"] = {"deployments": "Deployment", "secrets": "Secret"}[kind]
        obj["apiVersion"] = "apps/v1" if kind == "deployments" else "v1"
        return obj

    # -- the pod log -------------------------------------------------------------------

    def _log(
        self, request: BaseHTTPRequestHandler, namespace: str, name: str, query: dict[str, str]
    ) -> None:
        with self._lock:
            if (namespace, name) not in self._objects["pods"]:
                raise _not_found("pods", name)
            container = self._containers[(namespace, name)]
            if container.started_at is None:
                raise ApiError(
                    _status(
                        400,
                        "BadRequest",
                        f'container "{container.name}" in pod "{name}" is waiting to start: '
                        "ContainerCreating",
                    )
                )
            lines = list(container.logs)
        since: datetime | None = None
        if "sinceTime" in query:
            since = datetime.fromisoformat(query["sinceTime"].replace("Z", "+00:00"))
        elif "sinceSeconds" in query:
            since = datetime.now(UTC) - timedelta(seconds=int(query["sinceSeconds"]))
        if since is not None:
            lines = [line for line in lines if line[0] >= since]
        if "tailLines" in query:
            lines = lines[-int(query["tailLines"]) :] if int(query["tailLines"]) else []
        stamps = query.get("timestamps") == "true"

        def render(line: tuple[datetime, str]) -> bytes:
            stamp = line[0].strftime("%Y-%m-%dT%H:%M:%S.%f") + "000Z "
            return ((stamp if stamps else "") + line[1] + "\n").encode()

        request.send_response(200)
        request.send_header("Content-Type", "text/plain")
        if query.get("follow") != "true":
            data = b"".join(render(line) for line in lines)
            request.send_header("Content-Length", str(len(data)))
            request.end_headers()
            request.wfile.write(data)
            return
        request.send_header("Connection", "close")  # HTTP/1.0: the body ends when we close
        request.end_headers()
        sent = len(container.logs)
        try:
            request.wfile.write(b"".join(render(line) for line in lines))
            request.wfile.flush()
            while not self._stopping.wait(TICK):
                with self._lock:
                    if (namespace, name) not in self._objects["pods"]:
                        return
                    new, sent = container.logs[sent:], len(container.logs)
                if new:
                    request.wfile.write(b"".join(render(line) for line in new))
                    request.wfile.flush()
        except OSError:
            return  # the client went away

    # -- the controllers ---------------------------------------------------------------

    def _controllers(self) -> None:
        while not self._stopping.wait(TICK):
            with self._lock:
                self._reconcile(time.monotonic())

    def _delete_pods(self, namespace: str, owner_uid: str) -> None:
        pods = self._objects["pods"]
        for key in [
            k
            for k, pod in pods.items()
            if k[0] == namespace and pod["metadata"]["ownerReferences"][0]["uid"] == owner_uid
        ]:
            del pods[key]
            del self._containers[key]

    def _reconcile(self, now: float) -> None:
        pods = self._objects["pods"]
        for (namespace, name), deployment in list(self._objects["deployments"].items()):
            template = deployment["spec"]["template"]
            current_hash = template_hash(template)
            uid = deployment["metadata"]["uid"]
            owned = [
                k
                for k, p in pods.items()
                if k[0] == namespace and p["metadata"]["ownerReferences"][0]["uid"] == uid
            ]
            for key in owned:  # a rollout: the old template's pods go
                if pods[key]["metadata"]["labels"]["pod-template-hash"] != current_hash:
                    del pods[key]
                    del self._containers[key]
            owned = [k for k in owned if k in pods]
            wanted = int(deployment["spec"].get("replicas", 1))
            for key in owned[wanted:]:
                del pods[key]
                del self._containers[key]
            for _ in range(wanted - len(owned)):
                self._create_pod(namespace, name, deployment, current_hash, now)
        for key, container in self._containers.items():
            self._step(pods[key], container, now)
        for (namespace, _), deployment in self._objects["deployments"].items():
            uid = deployment["metadata"]["uid"]
            owned = [
                p
                for k, p in pods.items()
                if k[0] == namespace and p["metadata"]["ownerReferences"][0]["uid"] == uid
            ]
            ready = sum(
                1
                for p in owned
                if all(c["ready"] for c in p["status"].get("containerStatuses", []))
                and p["status"]["phase"] == "Running"
            )
            status = {
                "observedGeneration": deployment["metadata"]["generation"],
                "replicas": len(owned),
                "updatedReplicas": len(owned),
                "readyReplicas": ready,
                "availableReplicas": ready,
            }
            if status != deployment.get("status"):
                deployment["status"] = status

    def _create_pod(
        self,
        namespace: str,
        deployment_name: str,
        deployment: dict[str, Any],
        pod_hash: str,
        now: float,
    ) -> None:
        template = copy.deepcopy(deployment["spec"]["template"])
        name = f"{deployment_name[:52]}-{pod_hash[:5]}-{uuid.uuid4().hex[:5]}"
        meta = template.get("metadata", {})
        spec = template["spec"]
        first = spec["containers"][0]
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": name,
                "namespace": namespace,
                "uid": str(uuid.uuid4()),
                "creationTimestamp": _now(),
                "resourceVersion": str(next(self._versions)),
                "labels": {**meta.get("labels", {}), "pod-template-hash": pod_hash},
                "annotations": dict(meta.get("annotations", {})),
                "ownerReferences": [
                    {
                        "apiVersion": "apps/v1",
                        "kind": "Deployment",
                        "name": deployment_name,
                        "uid": deployment["metadata"]["uid"],
                        "controller": True,
                    }
                ],
            },
            "spec": spec,
            "status": {},
        }
        self._objects["pods"][(namespace, name)] = pod
        self._containers[(namespace, name)] = _Container(first["name"], first["image"], now)

    def _step(self, pod: dict[str, Any], c: _Container, now: float) -> None:
        if c.started_at is None and now - c.created >= START_DELAY:
            self._start(pod, c, now)
        elif c.crashed_at is not None:
            backoff = min(BACKOFF_CAP, BACKOFF_BASE * 2**c.restarts)
            if now - c.crashed_at >= CRASH_SHOWN + backoff:
                c.restarts += 1
                self._start(pod, c, now)
        state: dict[str, Any]
        last: dict[str, Any] = {}
        if c.started_at is None:
            phase, state = "Pending", {"waiting": {"reason": "ContainerCreating"}}
        elif c.crashed_at is not None and now - c.crashed_at < CRASH_SHOWN:
            phase, state = "Running", {"terminated": dict(c.last_exit or {})}
            if c.restarts:
                last = {"terminated": dict(c.last_exit or {})}
        elif c.crashed_at is not None:
            phase = "Running"
            state = {
                "waiting": {
                    "reason": "CrashLoopBackOff",
                    "message": f"back-off restarting failed container={c.name} "
                    f"pod={pod['metadata']['name']}",
                }
            }
            last = {"terminated": dict(c.last_exit or {})}
        else:
            phase, state = "Running", {"running": {"startedAt": c.started_at}}
        status: dict[str, Any] = {
            "phase": phase,
            "containerStatuses": [
                {
                    "name": c.name,
                    "image": c.image,
                    "imageID": "",
                    "ready": "running" in state,
                    "started": "running" in state,
                    "restartCount": c.restarts,
                    "state": state,
                    "lastState": last,
                }
            ],
        }
        if c.started_at is not None:
            status["podIP"] = pod["status"].get("podIP") or f"10.244.0.{next(self._ips) % 250 + 2}"
            status["startTime"] = pod["status"].get("startTime") or c.started_at
        if status != pod["status"]:
            pod["status"] = status
            pod["metadata"]["resourceVersion"] = str(next(self._versions))

    @staticmethod
    def _start(pod: dict[str, Any], c: _Container, now: float) -> None:
        c.started_at = _now()
        if c.fails:
            c.logs.append((datetime.now(UTC), f"{c.name}: failing with status 3"))
            c.crashed_at = now
            c.last_exit = {
                "exitCode": 3,
                "reason": "Error",
                "startedAt": c.started_at,
                "finishedAt": _now(),
            }
        else:
            c.logs.append((datetime.now(UTC), f"hello from {c.name}"))
            c.crashed_at = None
