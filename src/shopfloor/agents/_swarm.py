"""`SwarmRuntime`: each agent a Docker Swarm service, its files Swarm secrets.

One replicated service per agent, named `sf-<org>-<name>`, labelled with
`shopfloor.managed=true`, `shopfloor.agent.key`, `shopfloor.agent.version` and the
workload's labels (so are its secrets, and its containers carry the version label,
which is how a task tells which version it runs). Files become immutable secrets named
by their content (`sf-<hash12>-<file>`) and are mounted at `/run/secrets/<file>`,
mode 0400; `SHOPFLOOR_AGENT_FILES=/run/secrets` tells the agent where. A changed file
is a new secret: created, swapped into the service, then the old one deleted. Swarm
restarts a service's tasks whenever its secrets change, so `update_files` restarts the
agent: Swarm cannot hand a running container a new secret.

The blocking `docker` SDK runs in threads. Engine errors are translated at this
boundary: unreachable or 5xx → `RuntimeUnavailable`, 400 → `InvalidAgentSpec`,
409 → `AgentConflict`. Updates send the service's version index; an "update out of
sequence" (another writer came first) is retried on the fresh spec.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import socket
import struct
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Self, cast

from shopfloor.core import lazy_import

from ._errors import (
    AgentConflict,
    AgentError,
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

# docker ships no type information; everything it returns is treated as `Any` here and
# given a type where it enters this module. It and requests are imported when a runtime
# is first made, not at every command's start.
docker: Any = lazy_import("docker")
requests: Any = lazy_import("requests")

__all__ = ["VERSION_LABEL", "SwarmRuntime", "decode_frames", "parse_timestamp"]

VERSION_LABEL = "shopfloor.agent.version"
FILES_DIR = "/run/secrets"
SECRET_MODE = 0o400
DEFAULT_DOCKER_URL = "unix:///var/run/docker.sock"
# The oldest API with everything used here is 1.28 (rollback config); 1.43 is Docker 24,
# which every engine since still serves. Pinned, so no version probe at connect.
DEFAULT_API_VERSION = "1.43"
UPDATE_ATTEMPTS = 5

_CONDITIONS = {
    RestartPolicy.ALWAYS: "any",
    RestartPolicy.ON_FAILURE: "on-failure",
    RestartPolicy.NEVER: "none",
}
_PENDING = {"new", "pending", "assigned", "accepted"}
_STARTING = {"preparing", "starting", "ready"}
_FAILED = {"failed", "rejected"}
_ENDED = {"complete", "failed", "rejected", "shutdown", "remove", "orphaned"}

Spec = dict[str, Any]


def service_name(key: str) -> str:
    """`sf-<org>-<name>` as a DNS label; long or altered keys keep a hash to stay unique."""
    plain = "sf-" + re.sub(r"[^a-z0-9-]+", "-", key.lower()).strip("-")
    if len(plain) <= 63 and plain == "sf-" + key.replace("/", "-"):
        return plain
    digest = hashlib.sha256(key.encode()).hexdigest()[:8]
    return f"{plain[:54].rstrip('-')}-{digest}"


def secret_name(key: str, filename: str, content: bytes) -> str:
    """Content-addressed (and per agent: two agents' equal files are two secrets)."""
    digest = hashlib.sha256(key.encode() + b"\0" + filename.encode() + b"\0" + content)
    safe = re.sub(r"[^a-zA-Z0-9_.-]+", "-", filename).strip("-_.") or "file"
    return f"sf-{digest.hexdigest()[:12]}-{safe}"[:64].rstrip("-_.")


def parse_timestamp(text: str) -> datetime:
    """RFC 3339 with up to nanoseconds (the engine's format) → an aware datetime."""
    match = re.fullmatch(r"(.+?T\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)", text.strip())
    if match is None:
        raise ValueError(f"not an RFC 3339 time: {text!r}")
    whole, fraction, zone = match.groups()
    micro = (fraction or "0")[:6].ljust(6, "0")
    moment = datetime.fromisoformat(f"{whole}.{micro}{'+00:00' if zone == 'Z' else zone}")
    return moment.astimezone(UTC)


def decode_frames(buffer: bytearray) -> list[tuple[int, bytes]]:
    """Take the complete frames of Docker's multiplexed stream off the front of `buffer`:
    each an 8-byte header (stream 1 stdout, 2 stderr; 3 zero bytes; big-endian size)."""
    frames = []
    while len(buffer) >= 8:
        stream, size = struct.unpack(">BxxxL", bytes(buffer[:8]))
        if len(buffer) < 8 + size:
            break
        frames.append((stream, bytes(buffer[8 : 8 + size])))
        del buffer[: 8 + size]
    return frames


def _log_line(stream: int, line: bytes) -> LogLine:
    text = line.decode(errors="replace").rstrip("\n")
    stamp, _, rest = text.partition(" ")
    try:
        moment = parse_timestamp(stamp)
    except ValueError:
        moment, rest = datetime.now(UTC), text
    return LogLine(moment, "stderr" if stream == 2 else "stdout", rest)


def _image(workload: Workload) -> str:
    image = workload.image or ""
    if "@" in image or ":" in image.rsplit("/", 1)[-1]:
        return image
    return f"{image}:{workload.version}"


def _same_image(current: str, desired: str) -> bool:
    # dockerd pins the tag it resolved: `echo:1@sha256:...`; the tag is what was asked.
    return current.split("@", 1)[0] == desired.split("@", 1)[0]


def _task_version(task: Mapping[str, Any]) -> str:
    labels = task.get("Spec", {}).get("ContainerSpec", {}).get("Labels") or {}
    return str(labels.get(VERSION_LABEL, ""))


def _observe(service: Mapping[str, Any], tasks: list[Mapping[str, Any]]) -> Observed:
    """What one service's tasks say about its agent."""
    spec = service["Spec"]
    labels = spec.get("Labels") or {}
    version = str(labels.get(VERSION_LABEL, ""))
    replicas = spec.get("Mode", {}).get("Replicated", {}).get("Replicas", 1)
    latest: dict[Any, Mapping[str, Any]] = {}
    # By creation: a task's version index moves with each of its status changes.
    for each in sorted(tasks, key=lambda t: (parse_timestamp(t["CreatedAt"]), t["ID"])):
        latest[each.get("Slot") or each.get("NodeID")] = each
    current = {t["ID"] for t in latest.values()}
    restarts = sum(
        1
        for t in tasks
        if t["ID"] not in current and _task_version(t) == version and t["Status"]["State"] in _ENDED
    )
    detail: dict[str, Any] = {"service_id": service["ID"], "task_id": ""}
    base = {"key": labels[KEY_LABEL], "restarts": restarts, "endpoint": spec["Name"]}

    def pick(states: set[str]) -> Mapping[str, Any] | None:
        found = [t for t in latest.values() if t["Status"]["State"] in states]
        return found[-1] if found else None

    if replicas == 0:
        return Observed(state=ObservedState.SLEEPING, version=version, detail=detail, **base)
    if task := pick({"running"}):
        return Observed(
            state=ObservedState.RUNNING,
            version=_task_version(task) or version,
            started_at=parse_timestamp(task["Status"]["Timestamp"]),
            detail={**detail, "task_id": task["ID"]},
            **base,
        )
    for states, state in ((_STARTING, ObservedState.STARTING), (_PENDING, ObservedState.PENDING)):
        if task := pick(states):
            return Observed(
                state=state, version=version, detail={**detail, "task_id": task["ID"]}, **base
            )
    if task := pick(_FAILED):
        status = task["Status"]
        return Observed(
            state=ObservedState.FAILED,
            version=_task_version(task) or version,
            exit_code=status.get("ContainerStatus", {}).get("ExitCode"),
            error=status.get("Err", ""),
            detail={**detail, "task_id": task["ID"]},
            **base,
        )
    if task := pick({"complete"}):
        return Observed(
            state=ObservedState.STOPPED,
            version=_task_version(task) or version,
            exit_code=task["Status"].get("ContainerStatus", {}).get("ExitCode", 0),
            detail={**detail, "task_id": task["ID"]},
            **base,
        )
    return Observed(state=ObservedState.PENDING, version=version, detail=detail, **base)


def _translate(error: Exception, what: str) -> AgentError:
    if isinstance(error, docker.errors.APIError):
        status = error.status_code or 0
        message = f"{what}: {error.explanation or error}"
        if status == 400:
            return InvalidAgentSpec(message)
        if status == 404:
            return AgentNotFound(message)
        if status == 409:
            return AgentConflict(message)
        return RuntimeUnavailable(message)
    return RuntimeUnavailable(f"{what}: the Docker engine is unreachable: {error}")


def _out_of_sequence(error: Exception) -> bool:
    return isinstance(error, docker.errors.APIError) and "out of sequence" in str(
        error.explanation or error
    )


class SwarmRuntime(AgentRuntime, name="swarm"):
    """Agents as Swarm services on the engine at `docker_url` (a manager node)."""

    def __init__(
        self,
        *,
        docker_url: str = DEFAULT_DOCKER_URL,
        api_version: str = DEFAULT_API_VERSION,
        timeout: float = 30,
    ) -> None:
        self.docker_url = docker_url
        self.api_version = api_version
        self.timeout = timeout
        self._client: Any = None

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any], *, data_dir: Path) -> Self:
        return cls(
            docker_url=str(settings.get("docker_url", DEFAULT_DOCKER_URL)),
            api_version=str(settings.get("docker_api_version", DEFAULT_API_VERSION)),
            timeout=float(settings.get("docker_timeout", 30)),
        )

    # -- the engine ----------------------------------------------------------------

    async def _open(self) -> None:
        try:
            self._client = docker.DockerClient(
                base_url=self.docker_url, version=self.api_version, timeout=self.timeout
            )
        except docker.errors.DockerException as error:
            raise RuntimeMisconfigured(f"docker_url {self.docker_url!r}: {error}") from error
        try:
            info = await self._call("reaching the engine", "info")
            if info.get("Swarm", {}).get("ControlAvailable") is not True:
                raise RuntimeMisconfigured(f"{self.docker_url} is not a Swarm manager node")
        except BaseException:
            await self._close()
            raise

    async def _close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await asyncio.to_thread(client.close)

    @property
    def _api(self) -> Any:
        if self._client is None:
            raise RuntimeUnavailable("the Swarm runtime is not open")
        return self._client.api

    async def _call(self, what: str, method: str, *args: Any, **kwargs: Any) -> Any:
        """`api.<method>(*args, **kwargs)` in a thread, its errors translated."""
        call = getattr(self._api, method)
        try:
            return await asyncio.to_thread(call, *args, **kwargs)
        except (docker.errors.DockerException, requests.exceptions.RequestException) as error:
            raise _translate(error, what) from error

    async def image_labels(self, image: str) -> Mapping[str, str]:
        """`GET /images/{name}/json`: the image's labels if the manager has the image
        (Swarm pulls on the nodes that run a task, so a manager that runs none may not:
        then none are known, and only the spec's labels count)."""
        try:
            found = await self._call(f"inspect image {image}", "inspect_image", image)
        except AgentNotFound:
            return {}
        labels = (found.get("Config") or {}).get("Labels") or {}
        return {str(k): str(v) for k, v in labels.items()}

    async def _service(self, key: str) -> dict[str, Any] | None:
        filters = {"label": [f"{MANAGED_LABEL}=true", f"{KEY_LABEL}={key}"]}
        found = await self._call(f"{key}: finding its service", "services", filters)
        return cast(dict[str, Any], found[0]) if found else None

    async def _secrets(self, key: str) -> list[dict[str, Any]]:
        filters = {"label": [f"{MANAGED_LABEL}=true", f"{KEY_LABEL}={key}"]}
        found = await self._call(f"{key}: listing its secrets", "secrets", filters)
        return cast(list[dict[str, Any]], found)

    async def _ensure_secrets(
        self, workload_labels: Mapping[str, str], key: str, files: Mapping[str, bytes]
    ) -> list[Spec]:
        """A secret reference per file, creating the secrets not there yet."""
        existing = {s["Spec"]["Name"]: s["ID"] for s in await self._secrets(key)}
        references = []
        for filename, content in sorted(files.items()):
            if "/" in filename or filename in ("", ".", ".."):
                raise InvalidAgentSpec(f"{key}: {filename!r} is not a plain file name")
            name = secret_name(key, filename, content)
            if name not in existing:
                labels = {**workload_labels, "shopfloor.agent.file": filename}
                created = await self._call(
                    f"{key}: creating secret {name}",
                    "create_secret",
                    name,
                    content,
                    labels=labels,
                )
                existing[name] = created["ID"]
            references.append(
                {
                    "File": {"Name": filename, "UID": "0", "GID": "0", "Mode": SECRET_MODE},
                    "SecretID": existing[name],
                    "SecretName": name,
                }
            )
        return references

    async def _drop_unused_secrets(self, key: str, spec: Spec) -> None:
        used = {r["SecretID"] for r in spec["TaskTemplate"]["ContainerSpec"].get("Secrets") or []}
        for secret in await self._secrets(key):
            if secret["ID"] not in used:
                await self._call(
                    f"{key}: deleting secret {secret['Spec']['Name']}",
                    "remove_secret",
                    secret["ID"],
                )

    async def _update(self, key: str, change: Callable[[Spec], Spec | None]) -> Spec | None:
        """Apply `change` to the service's current spec and send it with its version
        index; when another writer came first, read again and retry. `change` returns
        None for "nothing to do"."""
        for _ in range(UPDATE_ATTEMPTS):
            service = await self._service(key)
            if service is None:
                raise AgentNotFound(f"{key}: no such agent")
            spec = change(service["Spec"])
            if spec is None:
                return None
            version = service["Version"]["Index"]
            try:
                await asyncio.to_thread(self._send_update, service["ID"], version, spec)
            except (docker.errors.DockerException, requests.exceptions.RequestException) as error:
                if _out_of_sequence(error):
                    continue
                raise _translate(error, f"{key}: updating its service") from error
            return spec
        raise AgentConflict(f"{key}: its service kept changing under the update")

    def _send_update(self, service_id: str, version: int, spec: Spec) -> None:
        self._api.update_service(
            service_id,
            version,
            task_template=spec["TaskTemplate"],
            name=spec["Name"],
            labels=spec.get("Labels"),
            mode=spec.get("Mode"),
            update_config=spec.get("UpdateConfig"),
            rollback_config=spec.get("RollbackConfig"),
            endpoint_spec=spec.get("EndpointSpec"),
        )

    # -- the interface -------------------------------------------------------------

    def _spec(self, workload: Workload, secrets: list[Spec]) -> Spec:
        labels = {
            **workload.labels,
            MANAGED_LABEL: "true",
            KEY_LABEL: workload.key,
            VERSION_LABEL: workload.version,
        }
        env = {**workload.env, "SHOPFLOOR_AGENT_FILES": FILES_DIR}
        container: Spec = {
            "Image": _image(workload),
            "Env": [f"{k}={v}" for k, v in sorted(env.items())],
            "Labels": labels,
            "Secrets": secrets,
        }
        if workload.command:
            container["Args"] = list(workload.command)
        return {
            "Name": service_name(workload.key),
            "Labels": labels,
            "TaskTemplate": {
                "ContainerSpec": container,
                "RestartPolicy": {"Condition": _CONDITIONS[workload.restart_policy]},
                "ForceUpdate": 0,
            },
            "Mode": {"Replicated": {"Replicas": workload.replicas}},
            "UpdateConfig": {"Parallelism": 1, "FailureAction": "rollback", "Order": "stop-first"},
            "RollbackConfig": {"Parallelism": 1, "FailureAction": "pause", "Order": "stop-first"},
        }

    async def apply(self, workload: Workload) -> None:
        if workload.image is None:
            raise InvalidAgentSpec(f"{workload.key}: the Swarm runtime runs images, not commands")
        labels = {**workload.labels, MANAGED_LABEL: "true", KEY_LABEL: workload.key}
        labels[VERSION_LABEL] = workload.version
        secrets = await self._ensure_secrets(labels, workload.key, workload.files)
        desired = self._spec(workload, secrets)
        if await self._service(workload.key) is None:
            await self._call(
                f"{workload.key}: creating its service",
                "create_service",
                desired["TaskTemplate"],
                name=desired["Name"],
                labels=desired["Labels"],
                mode=desired["Mode"],
                update_config=desired["UpdateConfig"],
                rollback_config=desired["RollbackConfig"],
            )
        else:

            def change(current: Spec) -> Spec | None:
                if _unchanged(current, desired):
                    return None
                template = dict(desired["TaskTemplate"])
                template["ForceUpdate"] = current["TaskTemplate"].get("ForceUpdate", 0)
                return {**current, **desired, "TaskTemplate": template}

            await self._update(workload.key, change)
        await self._drop_unused_secrets(workload.key, desired)

    async def remove(self, key: str) -> None:
        service = await self._service(key)
        if service is not None:
            await self._call(f"{key}: removing its service", "remove_service", service["ID"])
        for secret in await self._secrets(key):
            await self._call(f"{key}: deleting its secrets", "remove_secret", secret["ID"])

    async def restart(self, key: str) -> None:
        def force(current: Spec) -> Spec:
            template = dict(current["TaskTemplate"])
            template["ForceUpdate"] = int(template.get("ForceUpdate", 0)) + 1
            return {**current, "TaskTemplate": template}

        await self._update(key, force)

    async def update_files(self, key: str, files: Mapping[str, bytes]) -> None:
        service = await self._service(key)
        if service is None:
            raise AgentNotFound(f"{key}: no such agent")
        old = service["Spec"]["TaskTemplate"]["ContainerSpec"].get("Secrets") or []
        labels = {
            k: v
            for k, v in (service["Spec"].get("Labels") or {}).items()
            if k != "shopfloor.agent.file"
        }
        new = await self._ensure_secrets(labels, key, files)
        replaced = {r["File"]["Name"] for r in new}
        references = [r for r in old if r["File"]["Name"] not in replaced] + new
        references.sort(key=lambda r: r["File"]["Name"])

        def swap(current: Spec) -> Spec | None:
            template = dict(current["TaskTemplate"])
            container = dict(template["ContainerSpec"])
            if container.get("Secrets") == references:
                return None
            container["Secrets"] = references
            template["ContainerSpec"] = container
            return {**current, "TaskTemplate": template}

        spec = await self._update(key, swap) or service["Spec"]
        await self._drop_unused_secrets(key, spec)

    async def observe(self) -> dict[str, Observed]:
        filters = {"label": [f"{MANAGED_LABEL}=true"]}
        services = await self._call("listing services", "services", filters)
        services = [s for s in services if KEY_LABEL in (s["Spec"].get("Labels") or {})]
        if not services:
            return {}
        ids = [s["ID"] for s in services]
        tasks = await self._call("listing tasks", "tasks", {"service": ids})
        seen = {}
        for service in services:
            mine = [t for t in tasks if t.get("ServiceID") == service["ID"]]
            observed = _observe(service, mine)
            seen[observed.key] = observed
        return seen

    async def logs(
        self, key: str, *, tail: int = 100, since: datetime | None = None, follow: bool = False
    ) -> AsyncIterator[LogLine]:
        service = await self._service(key)
        if service is None:
            raise AgentNotFound(f"{key}: no such agent")
        params: dict[str, Any] = {
            "stdout": 1,
            "stderr": 1,
            "timestamps": 1,
            "tail": tail,
            "follow": int(follow),
        }
        if since is not None:
            params["since"] = f"{since.timestamp():.9f}"
        # The SDK's `service_logs` merges stdout and stderr; the raw stream keeps them
        # apart (`_url`/`_get` are its own helpers for this).
        api = self._api
        url = api._url("/services/{0}/logs", service["ID"])
        response = await self._call(
            f"{key}: reading its logs",
            "_get",
            url,
            params=params,
            stream=True,
            timeout=None if follow else self.timeout,
        )
        try:
            if response.status_code >= 400:
                raise _translate(docker.errors.APIError("logs", response), f"{key}: logs")
            buffer = bytearray()
            pending = b""
            while True:
                chunk = await asyncio.to_thread(response.raw.read1, 65536)
                if not chunk:
                    break
                buffer += chunk
                for stream, payload in decode_frames(buffer):
                    data = pending + payload
                    *lines, pending = data.split(b"\n")
                    for line in lines:
                        yield _log_line(stream, line)
            if pending:
                yield _log_line(1, pending)
        finally:
            _hang_up(response)


def _unchanged(current: Spec, desired: Spec) -> bool:
    """Whether the engine's spec already is what `desired` asks for (the engine adds
    defaults of its own, so only what this runtime sets is compared)."""
    have, want = current["TaskTemplate"], desired["TaskTemplate"]
    have_c, want_c = have.get("ContainerSpec", {}), want["ContainerSpec"]
    return (
        current.get("Labels") == desired["Labels"]
        and current.get("Mode") == desired["Mode"]
        and _same_image(have_c.get("Image", ""), want_c["Image"])
        and (have_c.get("Env") or []) == want_c["Env"]
        and (have_c.get("Args") or []) == want_c.get("Args", [])
        and (have_c.get("Labels") or {}) == want_c["Labels"]
        and [r["SecretName"] for r in have_c.get("Secrets") or []]
        == [r["SecretName"] for r in want_c["Secrets"]]
        and (have.get("RestartPolicy") or {}).get("Condition") == want["RestartPolicy"]["Condition"]
        and (current.get("UpdateConfig") or {}).get("FailureAction") == "rollback"
    )


def _hang_up(response: Any) -> None:
    """End a (followed) log stream: shutting the socket down also wakes a thread still
    blocked reading it, which closing alone does not."""
    try:
        sock = response.raw._fp.fp.raw._sock
        sock.shutdown(socket.SHUT_RDWR)
    except (AttributeError, OSError):
        pass
    response.close()
