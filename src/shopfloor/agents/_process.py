"""`ProcessRuntime`: every agent a local process in a session and a folder of its own.

Layout of one agent, `<data_dir>/agents/<org>/<name>/` (0700):

    process.json        what runs: pid, its kernel start time, the workload, restarts
    files/              `Workload.files`, 0600, written atomically
    logs/stdout.spool   the child's stdout and stderr, opened on these files directly
    logs/stderr.spool
    logs/agent.log      the lines read back from the spools, stamped: `time<TAB>stream<TAB>text`
    logs/agent.log.1 …  rotated at `log_max_bytes`, `log_files` files kept in all

Why files and not pipes: agents outlive the platform. A child writing into a pipe whose
reader was SIGKILLed gets SIGPIPE (or EPIPE) and dies or loses its output; a pipe whose
reader merely hangs fills up (64 KiB) and blocks the agent's next print. A regular file
opened with O_APPEND never blocks on the platform and never breaks. The platform reads
the spools back while it runs, stamps every complete line with the time it read it
(within `poll_interval` of the write) and rotates the stamped files, which only it
writes. A spool is emptied (truncated) once it has been read to its end and has grown
past `log_max_bytes`; a line written in the instant between that last read and the
truncation is lost, at most once per `log_max_bytes` of output. While the platform is
down the spools grow, and their lines are stamped when it comes back.

Adoption: `process.json` holds the pid and field 22 of `/proc/<pid>/stat` (the start
time in clock ticks since boot). On `_open()` a pid that is alive with the same start
time is the agent and is adopted; any other process behind that pid (a recycled pid) is
left alone and the agent is started afresh. Exits are noticed through a pidfd on the
event loop, for children and adopted processes alike; the exit status of a process this
interpreter did not start is unknown (`exit_code=None`).
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import hashlib
import json
import logging
import os
import re
import shutil
import signal
import subprocess
import time
from collections import deque
from collections.abc import AsyncIterator, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from io import BufferedReader
from pathlib import Path
from typing import Any, Self

from shopfloor.core import Backoff
from shopfloor.core._files import private_dir

from ._errors import AgentNotFound, InvalidAgentSpec, RuntimeMisconfigured
from ._runtime import AgentRuntime, LogLine, Observed, ObservedState, RestartPolicy, Workload

__all__ = ["ProcessRuntime"]

logger = logging.getLogger(__name__)

RECORD = "process.json"
LOG = "agent.log"
STREAMS = ("stdout", "stderr")
UNSUPERVISED = "exited while not supervised by this process"
_PART = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_LONG_LINE = 64 * 1024  # a partial line this long is stamped without waiting for its end

# The children of this interpreter, by pid, whichever runtime started them: a runtime
# closed without stopping its agents (they outlive it) must not let `Popen.__del__` reap
# them behind the back of the next runtime, which reaps them here with their status.
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


@atexit.register
def _let_go_of_children() -> None:
    """Agents outlive the platform by design: at exit the handles of those still running
    are let go of, without `Popen.__del__`'s "still running" warning (nothing of this
    process will wait for them; the next runtime adopts them)."""
    for proc in _CHILDREN.values():
        if proc.poll() is None:
            proc.returncode = 0


def _clock_ticks() -> int:
    return os.sysconf("SC_CLK_TCK")


def process_start(pid: int) -> int | None:
    """Field 22 of `/proc/<pid>/stat` (start time in ticks), None if gone or a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may hold spaces or parentheses.
    fields = stat[stat.rindex(")") + 2 :].split()
    if fields[0] in ("Z", "X"):
        return None
    return int(fields[19])


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _check_key(key: str) -> tuple[str, str]:
    parts = key.split("/")
    if len(parts) != 2 or not all(_PART.fullmatch(p) for p in parts):
        raise InvalidAgentSpec(f"agent key {key!r} is not <org>/<name>")
    return parts[0], parts[1]


def _check_files(files: Mapping[str, bytes]) -> None:
    for name in files:
        if not _PART.fullmatch(name):
            raise InvalidAgentSpec(f"agent file name {name!r} is not a plain file name")


@dataclass
class _Record:
    """`process.json`: the workload, and the process that runs it, if any."""

    key: str
    name: str
    version: str
    command: list[str]
    env: dict[str, str]
    labels: dict[str, str]
    restart_policy: str
    replicas: int
    file_digests: dict[str, str]
    pid: int | None = None
    start_ticks: int | None = None
    started_at: float | None = None  # wall clock, from start_ticks when it started
    restarts: int = 0
    exit_code: int | None = None
    error: str = ""
    final: str = ""  # "stopped" or "failed" once it may not restart
    spool_offsets: dict[str, int] = field(default_factory=dict)

    def workload_hash(self) -> str:
        identity = [
            self.version,
            self.command,
            sorted(self.env.items()),
            sorted(self.file_digests.items()),
            self.restart_policy,
            self.replicas,
        ]
        return _digest(json.dumps(identity).encode())


@dataclass
class _Agent:
    record: _Record
    workdir: Path
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    pidfd: int | None = None
    exited: asyncio.Future[int | None] | None = None
    stopping: bool = False
    restart_task: asyncio.Task[None] | None = None
    attempt: int = 0
    partial: dict[str, bytes] = field(default_factory=dict)
    offsets_saved: float = 0.0  # monotonic time the spool offsets were last saved
    offsets_dirty: bool = False  # moved since


class ProcessRuntime(AgentRuntime, name="process"):
    """Agents as local processes, supervised (restart policy, backoff) by the runtime.

    Settings (the agents section; keys it does not know are left to others):

    - `grace_period` (10 s): from SIGTERM to SIGKILL of the agent's process group.
    - `ready_after` (0.5 s): a started process is `starting` this long, then `running`.
    - `log_max_bytes` (1 MiB): a stamped log file is rotated at this size; a spool
      is emptied past it.
    - `log_files` (5): stamped log files kept, the current one included.
    - `restart_backoff_base` (0.5 s), `restart_backoff_cap` (30 s): the pause before a
      restart, random in [c/2, c] with c doubling per restart up to the cap.
    - `restart_reset_after` (10 s): a process that ran this long starts the doubling over.
    - `poll_interval` (0.2 s): how often the spools are read back.

    An agent's environment is its `Workload.env`, `PATH` (the platform's) and
    `SHOPFLOOR_AGENT_FILES` (the folder of its files); nothing else of the platform's
    environment is passed on. One runtime at a time may own a data dir.
    """

    def __init__(
        self,
        *,
        data_dir: Path,
        grace_period: float = 10.0,
        ready_after: float = 0.5,
        log_max_bytes: int = 1024 * 1024,
        log_files: int = 5,
        restart_backoff_base: float = 0.5,
        restart_backoff_cap: float = 30.0,
        restart_reset_after: float = 10.0,
        poll_interval: float = 0.2,
    ) -> None:
        if grace_period < 0 or ready_after < 0 or poll_interval <= 0 or restart_reset_after < 0:
            raise RuntimeMisconfigured("process runtime: durations must not be negative")
        if log_max_bytes < 1024 or log_files < 1:
            raise RuntimeMisconfigured("process runtime: log_max_bytes >= 1024, log_files >= 1")
        try:
            self._backoff = Backoff(
                base=restart_backoff_base, cap=restart_backoff_cap, min_fraction=0.5
            )
        except ValueError as exc:
            raise RuntimeMisconfigured(f"process runtime: {exc}") from exc
        # Absolute: an agent runs in its own folder, and is told where its files are.
        self._root = data_dir.absolute() / "agents"
        self._grace = grace_period
        self._ready_after = ready_after
        self._log_max = log_max_bytes
        self._log_files = log_files
        self._reset_after = restart_reset_after
        self._poll = poll_interval
        self._agents: dict[str, _Agent] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._open_now = False
        self._ticks = _clock_ticks()

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any], *, data_dir: Path) -> Self:
        floats = (
            *("grace_period", "ready_after", "restart_backoff_base", "restart_backoff_cap"),
            *("restart_reset_after", "poll_interval"),
        )
        kwargs: dict[str, Any] = {}
        for name in (*floats, "log_max_bytes", "log_files"):
            if name not in settings:
                continue
            value = settings[name]
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise RuntimeMisconfigured(f"process runtime: {name} must be a number")
            if name not in floats and not isinstance(value, int):
                raise RuntimeMisconfigured(f"process runtime: {name} must be a whole number")
            kwargs[name] = float(value) if name in floats else value
        return cls(data_dir=data_dir, **kwargs)

    # -- lifecycle -------------------------------------------------------------------

    async def _open(self) -> None:
        private_dir(self._root)
        self._open_now = True
        for path in sorted(self._root.glob(f"*/*/{RECORD}")):
            try:
                record = _Record(**json.loads(path.read_bytes()))
            except (OSError, ValueError, TypeError) as exc:
                logger.warning("agent record %s unreadable, skipped: %s", path, exc)
                continue
            agent = _Agent(record=record, workdir=path.parent)
            self._agents[record.key] = agent
            if record.pid is not None and not self._adopt(agent):
                # It ended (or its pid now belongs to another process) while no runtime
                # watched it: its status is lost.
                code = self._reap(record.pid)  # a child of this interpreter, in tests
                self._exited(agent, code, UNSUPERVISED if code is None else "")
            elif record.pid is None and not record.final and record.replicas:
                # It waited for a restart when the last runtime ended: restart it.
                self._restart_soon(agent, "waiting to restart when the runtime ended")
        self._spawn_task(self._read_spools_forever(), "process-runtime-spools")

    async def _close(self) -> None:
        if not self._open_now:
            return
        self._open_now = False
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for agent in self._agents.values():
            self._unwatch(agent)
            with contextlib.suppress(OSError):
                self._read_spools(agent)
                if agent.offsets_dirty:
                    self._save(agent)
        self._agents.clear()

    def _spawn_task(self, coro: Any, name: str) -> asyncio.Task[None]:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # -- the interface ---------------------------------------------------------------

    async def apply(self, workload: Workload) -> None:
        org, name = _check_key(workload.key)
        if workload.image is not None or not workload.command:
            raise InvalidAgentSpec(f"{workload.key}: the process runtime runs commands, not images")
        if workload.replicas not in (0, 1):
            raise InvalidAgentSpec(f"{workload.key}: a process agent has 0 or 1 replicas")
        _check_files(workload.files)
        record = _Record(
            key=workload.key,
            name=workload.name,
            version=workload.version,
            command=list(workload.command),
            env=dict(workload.env),
            labels=dict(workload.labels),
            restart_policy=str(workload.restart_policy),
            replicas=workload.replicas,
            file_digests={n: _digest(data) for n, data in workload.files.items()},
        )
        agent = self._agents.get(workload.key)
        if agent is None:
            agent = _Agent(record=record, workdir=self._root / org / name)
            self._agents[workload.key] = agent
        async with agent.lock:
            if (
                agent.record.workload_hash() == record.workload_hash()
                and (agent.workdir / RECORD).exists()
            ):
                return
            await self._stop(agent)
            record.spool_offsets = agent.record.spool_offsets
            agent.record = record
            agent.attempt = 0
            private_dir(agent.workdir / "files")
            private_dir(agent.workdir / "logs")
            wanted = set(workload.files)
            for old in (agent.workdir / "files").iterdir():
                if old.name not in wanted:
                    old.unlink()
            for file_name, data in workload.files.items():
                _atomic_write(agent.workdir / "files" / file_name, data)
            if record.replicas:
                self._start(agent)
            else:
                self._save(agent)

    async def remove(self, key: str) -> None:
        agent = self._agents.get(key)
        if agent is None:
            return
        async with agent.lock:
            await self._stop(agent)
            shutil.rmtree(agent.workdir, ignore_errors=True)
            self._agents.pop(key, None)

    async def restart(self, key: str) -> None:
        agent = self._agent(key)
        async with agent.lock:
            if not agent.record.replicas:
                return
            await self._stop(agent)
            agent.record.restarts += 1
            self._start(agent)

    async def update_files(self, key: str, files: Mapping[str, bytes]) -> None:
        agent = self._agent(key)
        _check_files(files)
        async with agent.lock:
            for file_name, data in files.items():
                _atomic_write(agent.workdir / "files" / file_name, data)
                agent.record.file_digests[file_name] = _digest(data)
            self._save(agent)
            if agent.exited is not None and agent.record.pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(agent.record.pid, signal.SIGHUP)

    async def observe(self) -> dict[str, Observed]:
        return {key: self._observed(agent) for key, agent in self._agents.items()}

    async def logs(
        self, key: str, *, tail: int = 100, since: datetime | None = None, follow: bool = False
    ) -> AsyncIterator[LogLine]:
        agent = self._agent(key)
        with contextlib.suppress(OSError):
            self._read_spools(agent)
        logs = agent.workdir / "logs"
        current, lines = self._read_logs(logs, tail=tail, since=since)
        for line in lines:
            yield line
        if not follow:
            if current is not None:
                current.close()
            return
        pending = b""
        try:
            while True:
                chunk = current.read() if current is not None else b""
                if chunk:
                    pending += chunk
                    *complete, pending = pending.split(b"\n")
                    for raw in complete:
                        parsed = _parse(raw)
                        if parsed is not None and (since is None or parsed.time >= since):
                            yield parsed
                    continue
                if current is None or self._rotated(current, logs / LOG):
                    replacement = self._open_log(logs / LOG)
                    if replacement is not None:
                        if current is not None:
                            current.close()
                        current, pending = replacement, b""
                        continue
                await asyncio.sleep(self._poll / 2)
        finally:
            if current is not None:
                current.close()

    # -- processes -------------------------------------------------------------------

    def _agent(self, key: str) -> _Agent:
        agent = self._agents.get(key)
        if agent is None:
            raise AgentNotFound(f"no agent {key!r} in the process runtime")
        return agent

    def _start(self, agent: _Agent) -> None:
        """Start the agent's process and watch it (its record saved)."""
        record = agent.record
        files = agent.workdir / "files"
        logs = agent.workdir / "logs"
        private_dir(files)
        private_dir(logs)
        env = {"PATH": os.environ.get("PATH", os.defpath), **record.env}
        env["SHOPFLOOR_AGENT_FILES"] = str(files)
        outputs = [
            os.open(logs / f"{s}.spool", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            for s in STREAMS
        ]
        record.final = ""  # the last exit code and error stay: the status shows them
        try:
            proc = subprocess.Popen(  # noqa: S603 - the workload's own command, no shell
                record.command,
                cwd=agent.workdir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=outputs[0],
                stderr=outputs[1],
                start_new_session=True,
                close_fds=True,
            )
        except OSError as exc:
            record.pid = record.start_ticks = None
            record.final = ObservedState.FAILED
            record.error = f"cannot start {record.command[0]!r}: {exc.strerror or exc}"
            self._save(agent)
            return
        finally:
            for fd in outputs:
                os.close(fd)
        _CHILDREN[proc.pid] = proc
        record.pid = proc.pid
        # A zombie (it exited at once) has no start time here; its pidfd says it ended.
        record.start_ticks = process_start(proc.pid) or 0
        # Reckoned once and kept: the boot-time clock against the wall clock, to the tick.
        since_boot = time.clock_gettime(time.CLOCK_BOOTTIME)
        record.started_at = time.time() - since_boot + record.start_ticks / self._ticks
        self._save(agent)
        self._watch(agent, os.pidfd_open(proc.pid))
        logger.info("agent %s started, pid %d", record.key, proc.pid)
        self._changed(record.key)

    def _adopt(self, agent: _Agent) -> bool:
        pid = agent.record.pid
        assert pid is not None
        try:
            pidfd = os.pidfd_open(pid)
        except OSError:
            return False
        # Compared after opening the pidfd: if the pid was recycled before, the start
        # time differs; if after, the pidfd already refers to the agent and reports it.
        if process_start(pid) != agent.record.start_ticks:
            os.close(pidfd)
            return False
        self._watch(agent, pidfd)
        logger.info("agent %s adopted, pid %d", agent.record.key, pid)
        return True

    def _watch(self, agent: _Agent, pidfd: int) -> None:
        loop = asyncio.get_running_loop()
        agent.pidfd = pidfd
        agent.exited = loop.create_future()
        agent.stopping = False
        loop.add_reader(pidfd, self._on_exit, agent, pidfd)

    def _unwatch(self, agent: _Agent) -> None:
        if agent.pidfd is not None:
            with contextlib.suppress(ValueError, OSError):
                asyncio.get_running_loop().remove_reader(agent.pidfd)
            os.close(agent.pidfd)
            agent.pidfd = None

    def _reap(self, pid: int) -> int | None:
        """The exit status of our own child (128 + n for signal n), else None."""
        proc = _CHILDREN.get(pid)
        if proc is None:
            return None
        code = proc.poll()
        if code is None:
            return None
        del _CHILDREN[pid]
        return code if code >= 0 else 128 - code

    def _on_exit(self, agent: _Agent, pidfd: int) -> None:
        if agent.pidfd != pidfd:
            return
        pid = agent.record.pid
        self._unwatch(agent)
        code = self._reap(pid) if pid is not None else None
        exited, agent.exited = agent.exited, None
        if exited is not None and not exited.done():
            exited.set_result(code)
        if agent.stopping:
            return  # `_stop` records the end
        error = UNSUPERVISED if code is None else ""
        ran = self._uptime(agent.record)
        if ran is not None and ran >= self._reset_after:
            agent.attempt = 0
        self._exited(agent, code, error)

    def _exited(self, agent: _Agent, code: int | None, error: str) -> None:
        """Record an end the runtime did not ask for, and restart per policy."""
        record = agent.record
        record.pid = record.start_ticks = None
        record.exit_code = code
        if code is not None and code > 128:
            with contextlib.suppress(ValueError):
                error = f"killed by {signal.Signals(code - 128).name}"
        elif code:
            error = f"exited with status {code}"
        record.error = error
        policy = RestartPolicy(record.restart_policy)
        again = policy is RestartPolicy.ALWAYS or (policy is RestartPolicy.ON_FAILURE and code != 0)
        if not again or not record.replicas:
            record.final = ObservedState.STOPPED if code == 0 else ObservedState.FAILED
            self._save(agent)
            logger.info("agent %s ended: %s", record.key, error or "exit 0")
            self._changed(record.key)
            return
        self._save(agent)
        self._restart_soon(agent, f"ended ({error})")
        self._changed(record.key)

    def _restart_soon(self, agent: _Agent, why: str) -> None:
        delay = self._backoff.delay(agent.attempt)
        agent.attempt += 1
        logger.info("agent %s %s, restart in %.2f s", agent.record.key, why, delay)
        agent.restart_task = self._spawn_task(
            self._restart_later(agent, delay), f"process-runtime-restart {agent.record.key}"
        )

    async def _restart_later(self, agent: _Agent, delay: float) -> None:
        await asyncio.sleep(delay)
        async with agent.lock:
            agent.restart_task = None
            if self._agents.get(agent.record.key) is agent and agent.record.pid is None:
                agent.record.restarts += 1
                self._start(agent)

    async def _stop(self, agent: _Agent) -> None:
        """Stop the process group: SIGTERM, SIGKILL after the grace period."""
        task, agent.restart_task = agent.restart_task, None
        if task is not None and task is not asyncio.current_task():
            task.cancel()
        pid, exited = agent.record.pid, agent.exited
        if pid is None or exited is None:
            return
        agent.stopping = True
        for signum, wait in ((signal.SIGTERM, self._grace), (signal.SIGKILL, 10.0)):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signum)
            try:
                await asyncio.wait_for(asyncio.shield(exited), wait)
                break
            except TimeoutError:
                continue
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)  # what is left of its group
        agent.record.pid = agent.record.start_ticks = None
        agent.record.exit_code = exited.result() if exited.done() else None
        agent.stopping = False
        self._save(agent)

    def _save(self, agent: _Agent) -> None:
        if agent.workdir.exists():
            data = json.dumps(asdict(agent.record), indent=1).encode()
            _atomic_write(agent.workdir / RECORD, data)

    def _started_at(self, record: _Record) -> datetime | None:
        if record.pid is None or record.started_at is None:
            return None
        return datetime.fromtimestamp(record.started_at, UTC)

    def _uptime(self, record: _Record) -> float | None:
        """Seconds the process has run: its start (clock ticks since boot) against the
        boot-time clock, to the tick (btime in /proc/stat has whole seconds only)."""
        if record.pid is None or record.start_ticks is None:
            return None
        return time.clock_gettime(time.CLOCK_BOOTTIME) - record.start_ticks / self._ticks

    def _observed(self, agent: _Agent) -> Observed:
        record = agent.record
        if not record.replicas:
            state = ObservedState.SLEEPING
        elif record.final:
            state = ObservedState(record.final)
        elif record.pid is None or agent.exited is None:
            state = ObservedState.PENDING  # waiting for its restart
        else:
            uptime = self._uptime(record) or 0.0
            state = ObservedState.STARTING if uptime < self._ready_after else ObservedState.RUNNING
        return Observed(
            key=record.key,
            state=state,
            version=record.version,
            restarts=record.restarts,
            exit_code=record.exit_code,
            error=record.error,
            started_at=self._started_at(record),
            detail={"pid": record.pid, "workdir": str(agent.workdir)},
        )

    # -- logs ------------------------------------------------------------------------

    async def _read_spools_forever(self) -> None:
        while True:
            await asyncio.sleep(self._poll)
            for agent in list(self._agents.values()):
                try:
                    self._read_spools(agent)
                except OSError as exc:
                    logger.warning("agent %s: logs not read: %s", agent.record.key, exc)

    def _read_spools(self, agent: _Agent) -> None:
        """Stamp the new complete lines of the spools into the rotating log."""
        logs = agent.workdir / "logs"
        if not logs.is_dir():
            return
        offsets = agent.record.spool_offsets
        stamped: list[bytes] = []
        moved = emptied = False
        now = datetime.now(UTC).isoformat()
        for stream in STREAMS:
            spool = logs / f"{stream}.spool"
            try:
                if os.stat(spool).st_size == offsets.get(stream, 0):
                    continue  # nothing new: the common case, one stat per spool
            except FileNotFoundError:
                continue
            with spool.open("rb+") as fh:
                size = os.fstat(fh.fileno()).st_size
                offset = offsets.get(stream, 0)
                if size < offset:
                    offset = 0  # emptied behind our back
                fh.seek(offset)
                data = fh.read()
                end = data.rfind(b"\n") + 1
                if not end and len(data) >= _LONG_LINE:
                    end = len(data)
                for raw in data[:end].splitlines():
                    text = raw.decode(errors="replace").replace("\t", " ")
                    stamped.append(f"{now}\t{stream}\t{text}\n".encode())
                if end:
                    offset += end
                    moved = True
                if offset >= self._log_max and offset == size:
                    fh.truncate(0)
                    offset = 0
                    emptied = True
                offsets[stream] = offset
        if stamped:
            self._append_log(logs, stamped)
        # Offsets are saved at most once a second (each save is a synced file write): a
        # platform killed in between stamps those lines again, in duplicate. An emptied
        # spool is found emptied anyway (its size below the offset).
        agent.offsets_dirty |= moved
        now_mono = time.monotonic()
        if emptied or (agent.offsets_dirty and now_mono - agent.offsets_saved >= 1.0):
            agent.offsets_saved, agent.offsets_dirty = now_mono, False
            self._save(agent)

    def _append_log(self, logs: Path, lines: list[bytes]) -> None:
        """Append stamped lines, rotating before a line that would overflow the file."""
        current = logs / LOG
        fd = os.open(current, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            size = os.fstat(fd).st_size
            batch: list[bytes] = []
            for line in lines:
                if size and size + len(line) > self._log_max:
                    os.write(fd, b"".join(batch))
                    os.close(fd)
                    self._rotate(logs)
                    fd = os.open(current, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
                    size, batch = 0, []
                batch.append(line)
                size += len(line)
            os.write(fd, b"".join(batch))
        finally:
            os.close(fd)

    def _rotate(self, logs: Path) -> None:
        # os.replace overwrites: the oldest file goes as the one before takes its place.
        for n in range(self._log_files - 1, 1, -1):
            with contextlib.suppress(FileNotFoundError):
                (logs / f"{LOG}.{n - 1}").replace(logs / f"{LOG}.{n}")
        if self._log_files > 1:
            (logs / LOG).replace(logs / f"{LOG}.1")
        else:
            (logs / LOG).unlink()

    def _open_log(self, path: Path) -> BufferedReader | None:
        try:
            return path.open("rb")
        except FileNotFoundError:
            return None

    def _rotated(self, current: BufferedReader, path: Path) -> bool:
        try:
            return bool(path.stat().st_ino != os.fstat(current.fileno()).st_ino)
        except FileNotFoundError:
            return False

    def _read_logs(
        self, logs: Path, *, tail: int, since: datetime | None
    ) -> tuple[BufferedReader | None, list[LogLine]]:
        """The last `tail` lines, and the current file open at its end (None if absent)."""
        current = self._open_log(logs / LOG)
        kept: deque[LogLine] = deque(maxlen=max(tail, 0))
        rotated = [logs / f"{LOG}.{n}" for n in range(self._log_files - 1, 0, -1)]
        for path in rotated:
            with contextlib.suppress(FileNotFoundError), path.open("rb") as fh:
                self._keep(fh.read(), kept, since)
        if current is not None:
            data = current.read()
            end = data.rfind(b"\n") + 1
            current.seek(end)
            self._keep(data[:end], kept, since)
        return current, list(kept)

    @staticmethod
    def _keep(data: bytes, kept: deque[LogLine], since: datetime | None) -> None:
        if kept.maxlen == 0:
            return
        for raw in data.splitlines():
            line = _parse(raw)
            if line is not None and (since is None or line.time >= since):
                kept.append(line)


def _parse(raw: bytes) -> LogLine | None:
    parts = raw.decode(errors="replace").split("\t", 2)
    if len(parts) != 3:
        return None
    try:
        return LogLine(time=datetime.fromisoformat(parts[0]), stream=parts[1], text=parts[2])
    except ValueError:
        return None
