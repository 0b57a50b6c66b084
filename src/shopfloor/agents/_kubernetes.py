"""`KubernetesRuntime`: each agent a Deployment, its files a Secret volume.

Per agent, in one namespace (`kube_namespace`, which must exist):

- a Deployment `sf-<org>-<name>` (a DNS-1123 label, at most 63 characters, with a
  digest of the key when it had to be shortened), labelled `shopfloor.managed=true`,
  `shopfloor.agent.key=<org>.<name>` (a label value cannot hold `/`; the exact key is
  in the annotation `shopfloor.agent/key`), `shopfloor.agent.version` and the
  workload's own labels (made valid label values); its pods carry the same labels.
  `spec.replicas` is `Workload.replicas` (0: sleeping).
- a Secret `sf-<org>-<name>-files` with `Workload.files`, mounted read-only (mode 0400)
  at `/run/shopfloor/files` (`SHOPFLOOR_AGENT_FILES` in the container's environment).
  `update_files` patches the Secret only: the kubelet refreshes a Secret volume in
  running pods by itself (within its sync period, about a minute), so a renewed
  certificate arrives without a restart; the agent notices the changed file.

Deployments only allow `restartPolicy: Always`, so the workload's restart policy is
kept by the runtime, in the annotation `shopfloor.agent/restart-policy`, and enforced
when it observes: under `never`, a container that terminated (or crash-loops) scales
its Deployment to 0 and is reported FAILED with its exit code (STOPPED for exit 0)
from then on, the outcome kept in the annotation `shopfloor.agent/exit`; under
`on-failure`, a clean exit does the same (STOPPED) and a failure is restarted by the
kubelet. Between the exit and the next `observe()` the kubelet may have restarted the
container once or more.

`apply` is idempotent through the annotation `shopfloor.agent/workload-hash`: the
same workload changes nothing; another one replaces the Deployment (optimistic, on its
`resourceVersion`: a race is `AgentConflict`), keeping the pod template it replaced in
`shopfloor.agent/previous-template` for `rollback(key)`, which puts it back (and keeps
the one it replaced, so a second rollback undoes the first, as `kubectl rollout undo`
does). `restart` patches the template annotation `kubectl.kubernetes.io/restartedAt`,
as `kubectl rollout restart` does; the new pod's restart count starts at 0, so the
runtime counts rollout restarts in the annotation `shopfloor.agent/restarts` and
`Observed.restarts` is that plus the containers' `restartCount`.

The official client is blocking: every call runs in a worker thread. Its objects are
untyped; this module is the only one that touches them, and works on the plain JSON
of the API (`_preload_content=False`), as the API reference describes it.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import hashlib
import json
import math
import re
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Self

from shopfloor.core import lazy_import

from ._errors import (
    AgentConflict,
    AgentNotFound,
    InvalidAgentSpec,
    RuntimeMisconfigured,
    RuntimeUnavailable,
)
from ._runtime import (
    KEY_LABEL,
    MANAGED_LABEL,
    AgentRuntime,
    LogLine,
    Observed,
    ObservedState,
    RestartPolicy,
    Workload,
)

__all__ = ["KubernetesRuntime"]

# Older releases of the client ship no type information, newer ones a `py.typed` over
# mostly untyped functions: it is used as `Any`, and only in this module. Imported when
# a runtime is first made (about 0.3 s that every command paid before).
kubernetes: Any = lazy_import("kubernetes")
urllib3: Any = lazy_import("urllib3")

FILES_DIR = "/run/shopfloor/files"
VERSION_LABEL = "shopfloor.agent.version"
KEY_ANNOTATION = "shopfloor.agent/key"
HASH_ANNOTATION = "shopfloor.agent/workload-hash"
POLICY_ANNOTATION = "shopfloor.agent/restart-policy"
EXIT_ANNOTATION = "shopfloor.agent/exit"
RESTARTS_ANNOTATION = "shopfloor.agent/restarts"
PREVIOUS_ANNOTATION = "shopfloor.agent/previous-template"
RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_PATCH = "application/strategic-merge-patch+json"
JSON_PATCH = "application/json-patch+json"
#: Waiting reasons that will not clear by themselves.
_STUCK = {
    "ErrImagePull",
    "ImagePullBackOff",
    "InvalidImageName",
    "CreateContainerConfigError",
    "CreateContainerError",
}

Json = dict[str, Any]


def _dns_label(text: str, *, limit: int = 63) -> str:
    label = re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")
    if len(label) > limit or label != text.lower():
        digest = hashlib.sha256(text.encode()).hexdigest()[:8]
        label = f"{label[: limit - 9].rstrip('-')}-{digest}"
    return label


def deployment_name(key: str) -> str:
    """`sf-<org>-<name>`, a DNS-1123 label; room is kept for the `-files` suffix."""
    return "sf-" + _dns_label(key.replace("/", "-"), limit=63 - 3 - 6)


def label_value(text: str) -> str:
    """A valid label value: at most 63 of `[A-Za-z0-9_.-]`, alphanumeric at both ends."""
    value = re.sub(r"[^A-Za-z0-9_.-]+", "-", text)
    if len(value) > 63:
        value = value[:54] + "-" + hashlib.sha256(text.encode()).hexdigest()[:8]
    return value.strip("-_.")


def label_name(text: str) -> str:
    prefix, _, name = text.rpartition("/")
    name = label_value(name) or "label"
    prefix = re.sub(r"[^a-z0-9.-]+", "-", prefix.lower()).strip("-.")[:253]
    return f"{prefix}/{name}" if prefix else name


def _parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    match = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)", text)
    if match is None:
        return None
    fraction = (match[2] or "0")[:6].ljust(6, "0")
    zone = "+00:00" if match[3] == "Z" else match[3]
    return datetime.fromisoformat(f"{match[1]}.{fraction}{zone}").astimezone(UTC)


class KubernetesRuntime(AgentRuntime, name="kubernetes"):
    """Agents as Deployments in one namespace; see the module docstring."""

    def __init__(self, *, configuration: Any, namespace: str = "shopfloor-agents") -> None:
        self.namespace = namespace
        self._configuration = configuration
        self._client: Any = None

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any], *, data_dir: Path) -> Self:
        """`kube_host` (an API server URL, no authentication), else `kube_config` (a
        kubeconfig file, with `kube_context`), else the in-cluster service account."""
        configuration = kubernetes.client.Configuration()
        try:
            if settings.get("kube_host"):
                configuration.host = str(settings["kube_host"])
            elif settings.get("kube_config"):
                kubernetes.config.load_kube_config(
                    config_file=str(settings["kube_config"]),
                    context=settings.get("kube_context") or None,
                    client_configuration=configuration,
                )
            else:
                kubernetes.config.load_incluster_config(client_configuration=configuration)
        except kubernetes.config.ConfigException as exc:
            raise RuntimeMisconfigured(f"no Kubernetes configuration: {exc}") from exc
        namespace = str(settings.get("kube_namespace") or "shopfloor-agents")
        return cls(configuration=configuration, namespace=namespace)

    async def _open(self) -> None:
        self._client = kubernetes.client.ApiClient(self._configuration)

    async def _close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await asyncio.to_thread(client.close)

    # -- calls -------------------------------------------------------------------------

    def _api(self, group: str) -> Any:
        if self._client is None:
            raise RuntimeUnavailable("the Kubernetes runtime is not open")
        if group == "apps":
            return kubernetes.client.AppsV1Api(self._client)
        return kubernetes.client.CoreV1Api(self._client)

    async def _call(self, group: str, method: str, *args: Any, **kwargs: Any) -> Any:
        """One API call in a thread: the response's JSON, our errors for its failures."""
        api = self._api(group)

        def call() -> Any:
            response = getattr(api, method)(*args, _preload_content=False, **kwargs)
            try:
                return json.loads(response.data) if response.data else None
            finally:
                response.release_conn()

        return await self._translate(call)

    async def _translate(self, call: Callable[[], Any]) -> Any:
        try:
            return await asyncio.to_thread(call)
        except kubernetes.client.ApiException as exc:
            raise _error(exc) from exc
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise RuntimeUnavailable(f"Kubernetes API unreachable: {exc}") from exc
        except (ValueError, TypeError) as exc:  # the client's own checks of a body
            raise InvalidAgentSpec(f"refused by the Kubernetes client: {exc}") from exc

    async def _read_deployment(self, key: str) -> Json | None:
        try:
            found: Json = await self._call(
                "apps", "read_namespaced_deployment", deployment_name(key), self.namespace
            )
        except AgentNotFound:
            return None
        return found

    async def _patch(self, key: str, body: Any, content_type: str) -> None:
        await self._call(
            "apps",
            "patch_namespaced_deployment",
            deployment_name(key),
            self.namespace,
            body,
            _content_type=content_type,
        )

    # -- the objects -------------------------------------------------------------------

    def _labels(self, workload: Workload) -> dict[str, str]:
        labels = {label_name(k): label_value(v) for k, v in workload.labels.items()}
        labels.update(
            {
                MANAGED_LABEL: "true",
                KEY_LABEL: label_value(workload.key.replace("/", ".")),
                VERSION_LABEL: label_value(workload.version),
            }
        )
        return labels

    def _template(self, workload: Workload) -> Json:
        if workload.image is None:
            raise InvalidAgentSpec(f"{workload.key}: the Kubernetes runtime runs images")
        env = [{"name": k, "value": v} for k, v in sorted(workload.env.items())]
        env.append({"name": "SHOPFLOOR_AGENT_FILES", "value": FILES_DIR})
        container: Json = {
            "name": _dns_label(workload.name),
            "image": workload.image,
            "env": env,
            "volumeMounts": [{"name": "files", "mountPath": FILES_DIR, "readOnly": True}],
        }
        if workload.command:
            container["args"] = list(workload.command)
        volume = {
            "name": "files",
            "secret": {
                "secretName": deployment_name(workload.key) + "-files",
                "defaultMode": 0o400,
            },
        }
        return {
            "metadata": {
                "labels": self._labels(workload),
                "annotations": {KEY_ANNOTATION: workload.key},
            },
            "spec": {"restartPolicy": "Always", "containers": [container], "volumes": [volume]},
        }

    def _deployment(self, workload: Workload, digest: str) -> Json:
        annotations = {
            KEY_ANNOTATION: workload.key,
            HASH_ANNOTATION: digest,
            POLICY_ANNOTATION: str(workload.restart_policy),
        }
        return {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {
                "name": deployment_name(workload.key),
                "labels": self._labels(workload),
                "annotations": annotations,
            },
            "spec": {
                "replicas": workload.replicas,
                "selector": {
                    "matchLabels": {
                        MANAGED_LABEL: "true",
                        KEY_LABEL: self._labels(workload)[KEY_LABEL],
                    }
                },
                "template": self._template(workload),
            },
        }

    def _secret(self, workload: Workload) -> Json:
        return {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "Opaque",
            "metadata": {
                "name": deployment_name(workload.key) + "-files",
                "labels": self._labels(workload),
                "annotations": {KEY_ANNOTATION: workload.key},
            },
            "data": {n: base64.b64encode(c).decode() for n, c in workload.files.items()},
        }

    @staticmethod
    def _digest(workload: Workload) -> str:
        described = {
            "key": workload.key,
            "name": workload.name,
            "version": workload.version,
            "image": workload.image,
            "command": list(workload.command),
            "env": dict(workload.env),
            "files": {n: hashlib.sha256(c).hexdigest() for n, c in workload.files.items()},
            "labels": dict(workload.labels),
            "restart_policy": str(workload.restart_policy),
            "replicas": workload.replicas,
        }
        return hashlib.sha256(json.dumps(described, sort_keys=True).encode()).hexdigest()[:32]

    # -- the interface -----------------------------------------------------------------

    async def apply(self, workload: Workload) -> None:
        for name in workload.files:
            if not re.fullmatch(r"[-._a-zA-Z0-9]+", name):
                raise InvalidAgentSpec(f"{workload.key}: {name!r} is not a Secret key")
        digest = self._digest(workload)
        wanted = self._deployment(workload, digest)
        current = await self._read_deployment(workload.key)
        if current is not None:
            annotations = current["metadata"].get("annotations") or {}
            if annotations.get(KEY_ANNOTATION) != workload.key:
                raise AgentConflict(
                    f"{workload.key}: Deployment {deployment_name(workload.key)} exists and is "
                    "not this agent's"
                )
            if annotations.get(HASH_ANNOTATION) == digest:
                return
        await self._put_secret(self._secret(workload))
        if current is None:
            try:
                await self._call("apps", "create_namespaced_deployment", self.namespace, wanted)
            except AgentConflict as exc:
                raise AgentConflict(f"{workload.key}: created meanwhile, apply again") from exc
            return
        old_template = current["spec"]["template"]
        old_annotations = current["metadata"].get("annotations") or {}
        restarted = (old_template.get("metadata") or {}).get("annotations", {}).get(RESTARTED_AT)
        if restarted:
            wanted["spec"]["template"]["metadata"]["annotations"][RESTARTED_AT] = restarted
        kept = {
            k: v
            for k, v in old_annotations.items()
            if k in (PREVIOUS_ANNOTATION, RESTARTS_ANNOTATION)
        }
        wanted["metadata"]["annotations"] = {**kept, **wanted["metadata"]["annotations"]}
        if _comparable(old_template) != _comparable(wanted["spec"]["template"]):
            wanted["metadata"]["annotations"][PREVIOUS_ANNOTATION] = json.dumps(
                old_template, sort_keys=True
            )
        wanted["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
        await self._call(
            "apps",
            "replace_namespaced_deployment",
            wanted["metadata"]["name"],
            self.namespace,
            wanted,
        )

    async def _put_secret(self, secret: Json) -> None:
        name = secret["metadata"]["name"]
        try:
            await self._call("core", "replace_namespaced_secret", name, self.namespace, secret)
        except AgentNotFound:
            await self._call("core", "create_namespaced_secret", self.namespace, secret)

    async def remove(self, key: str) -> None:
        name = deployment_name(key)
        body = {"apiVersion": "v1", "kind": "DeleteOptions", "propagationPolicy": "Foreground"}
        for group, method, object_name in (
            ("apps", "delete_namespaced_deployment", name),
            ("core", "delete_namespaced_secret", name + "-files"),
        ):
            with contextlib.suppress(AgentNotFound):  # unknown: nothing to do
                await self._call(group, method, object_name, self.namespace, body=body)

    async def restart(self, key: str) -> None:
        current = await self._existing(key)
        count = int((current["metadata"].get("annotations") or {}).get(RESTARTS_ANNOTATION, "0"))
        stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        patch = {
            "metadata": {"annotations": {RESTARTS_ANNOTATION: str(count + 1)}},
            "spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: stamp}}}},
        }
        await self._patch(key, patch, STRATEGIC_PATCH)

    async def rollback(self, key: str) -> None:
        """Put the pod template back that the last changing `apply` replaced.

        The reconciler will roll forward again unless the desired version changes too:
        the workload hash is cleared, so the next `apply` replaces the template."""
        current = await self._existing(key)
        annotations = current["metadata"].get("annotations") or {}
        if PREVIOUS_ANNOTATION not in annotations:
            raise AgentNotFound(f"{key}: no previous template to roll back to")
        previous = json.loads(annotations[PREVIOUS_ANNOTATION])
        version = (previous.get("metadata") or {}).get("labels", {}).get(VERSION_LABEL, "")
        operations = [
            {
                "op": "test",
                "path": "/metadata/resourceVersion",
                "value": current["metadata"]["resourceVersion"],
            },
            {"op": "replace", "path": "/spec/template", "value": previous},
            {
                "op": "replace",
                "path": "/metadata/annotations/" + _pointer(PREVIOUS_ANNOTATION),
                "value": json.dumps(current["spec"]["template"], sort_keys=True),
            },
            {
                "op": "replace",
                "path": "/metadata/annotations/" + _pointer(HASH_ANNOTATION),
                "value": "",
            },
            {"op": "add", "path": "/metadata/labels/" + _pointer(VERSION_LABEL), "value": version},
        ]
        await self._patch(key, operations, JSON_PATCH)

    async def _existing(self, key: str) -> Json:
        current = await self._read_deployment(key)
        if current is None:
            raise AgentNotFound(f"{key}: no such agent in namespace {self.namespace}")
        return current

    async def update_files(self, key: str, files: Mapping[str, bytes]) -> None:
        patch = {"data": {n: base64.b64encode(c).decode() for n, c in files.items()}}
        await self._call(
            "core",
            "patch_namespaced_secret",
            deployment_name(key) + "-files",
            self.namespace,
            patch,
            _content_type=MERGE_PATCH,
        )

    async def observe(self) -> dict[str, Observed]:
        selector = f"{MANAGED_LABEL}=true"
        deployments = await self._call(
            "apps", "list_namespaced_deployment", self.namespace, label_selector=selector
        )
        pods = await self._call(
            "core", "list_namespaced_pod", self.namespace, label_selector=selector
        )
        by_agent: dict[str, list[Json]] = {}
        for pod in pods["items"]:
            agent = (pod["metadata"].get("labels") or {}).get(KEY_LABEL, "")
            if not pod["metadata"].get("deletionTimestamp"):
                by_agent.setdefault(agent, []).append(pod)
        observed: dict[str, Observed] = {}
        for deployment in deployments["items"]:
            key = (deployment["metadata"].get("annotations") or {}).get(KEY_ANNOTATION)
            if not key:
                continue
            agent_label = deployment["metadata"]["labels"].get(KEY_LABEL, "")
            seen = _observe(deployment, by_agent.get(agent_label, []), key, self.namespace)
            if _must_stop(deployment, seen):
                await self._stop_for_policy(key, seen)
                seen = dataclasses.replace(seen, detail={**seen.detail, "stopped": "by policy"})
            observed[key] = seen
        return observed

    async def _stop_for_policy(self, key: str, seen: Observed) -> None:
        """Scale to 0 what the restart policy says may not run again, and say why."""
        outcome = json.dumps({"exit_code": seen.exit_code, "error": seen.error})
        patch = {"metadata": {"annotations": {EXIT_ANNOTATION: outcome}}, "spec": {"replicas": 0}}
        await self._patch(key, patch, MERGE_PATCH)

    async def logs(
        self, key: str, *, tail: int = 100, since: datetime | None = None, follow: bool = False
    ) -> AsyncIterator[LogLine]:
        pods = await self._call(
            "core",
            "list_namespaced_pod",
            self.namespace,
            label_selector=f"{MANAGED_LABEL}=true,{KEY_LABEL}={label_value(key.replace('/', '.'))}",
        )
        pod = _newest(pods["items"])
        if pod is None:
            return
        options: dict[str, Any] = {"timestamps": True, "tail_lines": tail, "follow": follow}
        if since is not None:  # the client has no sinceTime: a whole-second bound, then exact
            seconds = (datetime.now(UTC) - since).total_seconds()
            options["since_seconds"] = max(1, math.ceil(seconds))
        api = self._api("core")
        name = pod["metadata"]["name"]

        def open_stream() -> Any:
            return api.read_namespaced_pod_log(
                name, self.namespace, _preload_content=False, **options
            )

        try:
            response = await self._translate(open_stream)
        except InvalidAgentSpec:  # 400: the container has not started, no output yet
            return
        try:
            buffer = b"" if follow else await asyncio.to_thread(lambda: response.data)
            while True:
                while b"\n" in buffer:
                    raw, buffer = buffer.split(b"\n", 1)
                    line = _log_line(raw.decode(errors="replace"))
                    if line is not None and (since is None or line.time >= since):
                        yield line
                if not follow:
                    break
                chunk = await asyncio.to_thread(response.read1, 65536)
                if not chunk:
                    break
                buffer += chunk
        finally:
            response.close()
            response.release_conn()


def _log_line(raw: str) -> LogLine | None:
    stamp, _, text = raw.partition(" ")
    time = _parse_time(stamp)
    if time is None:
        return None if not raw else LogLine(datetime.now(UTC), "stdout", raw)
    # The log API merges both streams; it does not say which a line came from.
    return LogLine(time, "stdout", text)


def _must_stop(deployment: Json, seen: Observed) -> bool:
    annotations = deployment["metadata"].get("annotations") or {}
    if EXIT_ANNOTATION in annotations or not deployment["spec"].get("replicas"):
        return False
    policy = annotations.get(POLICY_ANNOTATION, RestartPolicy.ALWAYS)
    if seen.exit_code is None or policy == RestartPolicy.ALWAYS:
        return False
    return policy == RestartPolicy.NEVER or seen.exit_code == 0


def _newest(pods: list[Json]) -> Json | None:
    live = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
    live.sort(key=lambda p: p["metadata"].get("creationTimestamp", ""), reverse=True)
    return live[0] if live else None


def _observe(deployment: Json, pods: list[Json], key: str, namespace: str) -> Observed:
    meta = deployment["metadata"]
    annotations = meta.get("annotations") or {}
    version = meta["labels"].get(VERSION_LABEL, "")
    rollouts = int(annotations.get(RESTARTS_ANNOTATION, "0"))
    detail: dict[str, Any] = {"deployment": meta["name"], "namespace": namespace}
    if EXIT_ANNOTATION in annotations:
        outcome = json.loads(annotations[EXIT_ANNOTATION])
        code = outcome.get("exit_code")
        state = ObservedState.STOPPED if code == 0 else ObservedState.FAILED
        return Observed(
            key=key,
            state=state,
            version=version,
            exit_code=code,
            error=outcome.get("error", ""),
            restarts=rollouts,
            detail=detail,
        )
    if not deployment["spec"].get("replicas"):
        return Observed(
            key=key, state=ObservedState.SLEEPING, version=version, restarts=rollouts, detail=detail
        )
    current = [p for p in pods if (p["metadata"].get("labels") or {}).get(VERSION_LABEL) == version]
    pod = _newest(current) or _newest(pods)
    if pod is None:
        return Observed(
            key=key, state=ObservedState.PENDING, version=version, restarts=rollouts, detail=detail
        )
    return _observe_pod(pod, key, rollouts, detail)


def _observe_pod(pod: Json, key: str, rollouts: int, detail: dict[str, Any]) -> Observed:
    status = pod.get("status") or {}
    containers = status.get("containerStatuses") or []
    version = (pod["metadata"].get("labels") or {}).get(VERSION_LABEL, "")
    restarts = rollouts + sum(int(c.get("restartCount", 0)) for c in containers)
    detail = {**detail, "pod": pod["metadata"]["name"]}
    endpoint = status.get("podIP", "")
    state, exit_code, error, started = ObservedState.PENDING, None, "", None
    phase = status.get("phase", "Pending")
    if containers:
        container = containers[0]
        current = container.get("state") or {}
        last = (container.get("lastState") or {}).get("terminated") or {}
        if "running" in current:
            started = _parse_time(current["running"].get("startedAt"))
            state = ObservedState.RUNNING if container.get("ready") else ObservedState.STARTING
        elif "terminated" in current:
            exit_code = int(current["terminated"].get("exitCode", 1))
            error = current["terminated"].get("message") or current["terminated"].get("reason", "")
            state = ObservedState.STOPPED if exit_code == 0 else ObservedState.FAILED
        elif "waiting" in current:
            reason = current["waiting"].get("reason", "")
            message = current["waiting"].get("message", "")
            if reason == "CrashLoopBackOff" or reason in _STUCK:
                state, error = ObservedState.FAILED, f"{reason}: {message}".rstrip(": ")
                if last:
                    exit_code = int(last.get("exitCode", 1))
            else:
                state = ObservedState.STARTING if phase == "Running" else ObservedState.PENDING
    elif phase == "Succeeded":
        state, exit_code = ObservedState.STOPPED, 0
    elif phase == "Failed":
        state, error = ObservedState.FAILED, status.get("message", "")
    return Observed(
        key=key,
        state=state,
        version=version,
        restarts=restarts,
        exit_code=exit_code,
        error=error,
        started_at=started,
        endpoint=endpoint,
        detail=detail,
    )


def _comparable(template: Json) -> str:
    """A pod template without the restart stamp, to tell a real change from a restart."""
    meta = dict(template.get("metadata") or {})
    annotations = {k: v for k, v in (meta.get("annotations") or {}).items() if k != RESTARTED_AT}
    meta["annotations"] = annotations
    return json.dumps({**template, "metadata": meta}, sort_keys=True)


def _pointer(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


def _error(exc: Any) -> Exception:
    """An `ApiException` as one of ours, by the `Status` it carries."""
    try:
        status = json.loads(exc.body or "{}")
    except (TypeError, ValueError):
        status = {}
    reason = status.get("reason", "") if isinstance(status, dict) else ""
    message = (status.get("message") if isinstance(status, dict) else "") or str(exc.reason)
    code = int(exc.status or 0)
    if code == 404:
        return AgentNotFound(message)
    if code == 409 or reason in ("AlreadyExists", "Conflict"):
        return AgentConflict(message)
    if code in (400, 422) or reason in ("Invalid", "BadRequest"):
        return InvalidAgentSpec(message)
    if code in (401, 403):
        return RuntimeUnavailable(f"the Kubernetes API refused: {message}")
    return RuntimeUnavailable(f"Kubernetes API answered {code}: {message}")
