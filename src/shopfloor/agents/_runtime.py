"""`AgentRuntime`: where agents run — local processes, Docker Swarm or Kubernetes.

A runtime knows nothing of organisations, roles or provisioning: it is handed a
`Workload` (what to run, with which environment and files, under which restart policy)
and keeps it there; it reports what it sees as `Observed`. The reconciler above it
compares desired and observed state and calls `apply`, `remove`, `scale` and
`update_files`. Every object a runtime creates carries the labels of `Workload.labels`
(`shopfloor.agent.key`, `shopfloor.managed=true`...), so that `observe()` finds
exactly the platform's own workloads again after a restart (adoption), and nothing
else.

    runtime = AgentRuntime.backends.get("process").from_settings(settings, data_dir=...)
    async with runtime:
        await runtime.apply(workload)            # create, or update to a new version
        observed = await runtime.observe()       # {key: Observed} of every managed agent
        async for line in runtime.logs(key, tail=100, follow=True): ...

Implementations register by name: `class ProcessRuntime(AgentRuntime, name="process")`.
"""

from __future__ import annotations

import abc
import enum
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar, Self

from shopfloor.core import Backends, Pluggable

from ._errors import RuntimeMisconfigured

__all__ = [
    "KEY_LABEL",
    "MANAGED_LABEL",
    "AgentRuntime",
    "LogLine",
    "Observed",
    "ObservedState",
    "RestartPolicy",
    "Workload",
]

#: On every object a runtime creates: it is the platform's to manage.
MANAGED_LABEL = "shopfloor.managed"
#: The agent a runtime object belongs to: `<org_id>/<name>`.
KEY_LABEL = "shopfloor.agent.key"


class RestartPolicy(enum.StrEnum):
    ALWAYS = "always"  # Swarm `any`, Kubernetes `Always`
    ON_FAILURE = "on-failure"  # Swarm `on-failure`
    NEVER = "never"  # Swarm `none`


class ObservedState(enum.StrEnum):
    PENDING = "pending"  # accepted, not started yet (an image being pulled, a pod scheduled)
    STARTING = "starting"  # started, its health not known yet
    RUNNING = "running"
    UNHEALTHY = "unhealthy"  # running, failing its health check
    SLEEPING = "sleeping"  # scaled to zero on purpose
    STOPPED = "stopped"  # exited cleanly and not to be restarted
    FAILED = "failed"  # exited with an error, or could not start


@dataclass(frozen=True, slots=True, kw_only=True)
class Workload:
    """What a runtime runs for one agent.

    Exactly one of `image` (container runtimes) and `command` (the process runtime)
    is set. `files` are written where the agent reads them (a directory for a process,
    Swarm secrets/configs, Kubernetes Secret volumes) with owner-only access; their
    names are plain file names. `env` may refer to them by path through
    `AgentRuntime.files_dir`-relative names the runtime documents.
    """

    key: str  # "<org_id>/<name>", unique in the platform
    name: str  # DNS label
    version: str
    image: str | None = None
    command: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    files: Mapping[str, bytes] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)
    restart_policy: RestartPolicy = RestartPolicy.ON_FAILURE
    replicas: int = 1  # 0 = sleeping

    def __post_init__(self) -> None:
        if (self.image is None) == (not self.command):
            raise ValueError("a workload has an image or a command, not both and not neither")


@dataclass(frozen=True, slots=True, kw_only=True)
class Observed:
    """What the runtime sees of one agent, now."""

    key: str
    state: ObservedState
    version: str
    restarts: int = 0
    exit_code: int | None = None  # of the last exit, kept while a restart runs it again
    error: str = ""  # why it last ended (or could not start)
    started_at: datetime | None = None
    endpoint: str = ""  # how other agents reach it (host:port, a service DNS name)
    detail: Mapping[str, Any] = field(default_factory=dict)  # runtime-specific (pid, task id)


@dataclass(frozen=True, slots=True)
class LogLine:
    time: datetime
    stream: str  # "stdout" or "stderr"
    text: str


class AgentRuntime(
    Pluggable,
    abc.ABC,
    registry=Backends("agent runtime", keyword="name", error=RuntimeMisconfigured),
):
    """Runs workloads and says what it sees; an async context manager, entered once."""

    name: ClassVar[str]
    _change_listener: Callable[[str], None] | None = None

    def on_change(self, listener: Callable[[str], None]) -> None:
        """`listener(key)` is called when the runtime itself sees an agent change (a
        process exited, or was started again), so the reconciler need not wait for its
        next pass. Runtimes that can only poll their engine (Swarm, Kubernetes) never
        call it."""
        self._change_listener = listener

    def _changed(self, key: str) -> None:
        if self._change_listener is not None:
            self._change_listener(key)

    @classmethod
    @abc.abstractmethod
    def from_settings(cls, settings: Mapping[str, Any], *, data_dir: Path) -> Self:
        """Build from the agents settings section (as a mapping) and the data dir."""

    async def __aenter__(self) -> Self:
        await self._open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self._close()

    async def _open(self) -> None:
        """Connect to the engine, or find the processes of an earlier run (adoption)."""

    async def _close(self) -> None:
        """Let go of the engine. Never stops the agents: they outlive the platform."""

    async def image_labels(self, image: str) -> Mapping[str, str]:
        """The labels baked into `image` (`LABEL` in its Dockerfile), as far as the
        engine can see them: none for runtimes that do not inspect images."""
        return {}

    @abc.abstractmethod
    async def apply(self, workload: Workload) -> None:
        """Make the runtime run `workload`: create it, or roll it to this version, env,
        files and replica count. Idempotent: applying the same workload twice changes
        nothing."""

    @abc.abstractmethod
    async def remove(self, key: str) -> None:
        """Stop the agent and delete everything the runtime made for it (processes,
        services, secrets, files). Removing an unknown key does nothing."""

    @abc.abstractmethod
    async def restart(self, key: str) -> None:
        """Stop and start the agent's current version (a restart counts in `restarts`)."""

    @abc.abstractmethod
    async def update_files(self, key: str, files: Mapping[str, bytes]) -> None:
        """Replace some of the agent's files (a renewed certificate) without a restart
        where the runtime can; the agent is told to reload (SIGHUP for a process)."""

    @abc.abstractmethod
    async def observe(self) -> dict[str, Observed]:
        """Every agent this runtime manages (found by its labels), by key."""

    @abc.abstractmethod
    def logs(
        self, key: str, *, tail: int = 100, since: datetime | None = None, follow: bool = False
    ) -> AsyncIterator[LogLine]:
        """The agent's output, oldest first: the last `tail` lines (after `since`), then,
        with `follow`, new lines as they come until the caller stops iterating."""
