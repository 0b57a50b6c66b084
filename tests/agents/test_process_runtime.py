"""The process runtime: the contract, and what only processes have (pids, signals, files)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import textwrap
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import pytest

from shopfloor.agents import (
    AgentRuntime,
    Observed,
    ObservedState,
    ProcessRuntime,
    RestartPolicy,
    Workload,
)
from shopfloor.agents._process import process_start

from .runtime_contract import *  # noqa: F403
from .runtime_contract import Programs, wait_for

SERVE = textwrap.dedent(
    """
    import os, signal, sys, time
    name = sys.argv[1]
    def reload(signum, frame):
        path = os.path.join(os.environ["SHOPFLOOR_AGENT_FILES"], "..", "reloaded")
        with open(path, "a") as marker:
            marker.write("hup\\n")
    signal.signal(signal.SIGHUP, reload)
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
    print(f"hello from {name}", flush=True)
    print(f"stderr of {name}", file=sys.stderr, flush=True)
    while True:
        time.sleep(3600)
    """
)
FAIL = "import sys; sys.exit(3)"


def _serve(key: str, name: str, version: str, **fields: Any) -> Workload:
    return Workload(
        key=key, name=name, version=version, command=(sys.executable, "-c", SERVE, name), **fields
    )


def _fail(key: str, name: str, version: str, **fields: Any) -> Workload:
    return Workload(
        key=key, name=name, version=version, command=(sys.executable, "-c", FAIL), **fields
    )


def _make(data_dir: Path, **settings: Any) -> ProcessRuntime:
    defaults = {"grace_period": 3, "restart_backoff_base": 0.1, "restart_backoff_cap": 0.5}
    return ProcessRuntime.from_settings({**defaults, **settings}, data_dir=data_dir)


def _kill_all(data_dir: Path) -> None:
    """Whatever a failed test left running, by the records on disk."""
    for record in (data_dir / "agents").glob("*/*/process.json"):
        pid = json.loads(record.read_text()).get("pid")
        if pid:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)


@pytest.fixture
def programs() -> Programs:
    return Programs(serve=_serve, fail=_fail)


@pytest.fixture
def reopen(tmp_path: Path) -> Callable[[], AbstractAsyncContextManager[AgentRuntime]]:
    return lambda: _make(tmp_path)


@pytest.fixture
async def runtime(tmp_path: Path) -> AsyncIterator[ProcessRuntime]:
    try:
        async with _make(tmp_path) as opened:
            yield opened
            await opened._close()  # harmless if the test closed it already
        async with _make(tmp_path) as cleaner:
            for key in await cleaner.observe():
                await cleaner.remove(key)
    finally:
        _kill_all(tmp_path)


def _pid(seen: Observed | None) -> int:
    assert seen is not None and isinstance(seen.detail.get("pid"), int), seen
    pid: int = seen.detail["pid"]
    return pid


def _processes_of(workdir: str) -> list[int]:
    """Pids whose working directory is the agent's: there is one per agent."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if os.readlink(entry / "cwd") == workdir and process_start(int(entry.name)):
                    found.append(int(entry.name))
    return found


def running(seen: Observed | None) -> bool:
    return seen is not None and seen.state is ObservedState.RUNNING


async def _until(check: Callable[[], bool], what: str, within: float = 15) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not check():
        assert asyncio.get_running_loop().time() < deadline, what
        await asyncio.sleep(0.05)


async def _logged(runtime: ProcessRuntime, key: str, text: str) -> None:
    deadline = asyncio.get_running_loop().time() + 15
    while True:
        lines = [line.text async for line in runtime.logs(key, tail=1000)]
        if text in lines:
            return
        assert asyncio.get_running_loop().time() < deadline, (text, lines)
        await asyncio.sleep(0.05)


@pytest.mark.parametrize("policy", [RestartPolicy.ON_FAILURE, RestartPolicy.ALWAYS])
async def test_a_killed_agent_runs_again_once(
    runtime: ProcessRuntime, policy: RestartPolicy
) -> None:
    await runtime.apply(_serve("org/echo", "echo", "1", restart_policy=policy))
    first = await wait_for(runtime, "org/echo", running)
    os.kill(_pid(first), signal.SIGKILL)
    again = await wait_for(runtime, "org/echo", lambda s: running(s) and s.restarts == 1)
    assert _pid(again) != _pid(first)
    assert again is not None and again.started_at != first.started_at  # type: ignore[union-attr]
    assert _processes_of(again.detail["workdir"]) == [_pid(again)]


async def test_an_agent_that_exits_cleanly_under_never_is_stopped(
    runtime: ProcessRuntime,
) -> None:
    workload = Workload(
        key="org/once", name="once", version="1", command=(sys.executable, "-c", "pass"),
        restart_policy=RestartPolicy.NEVER,
    )  # fmt: skip
    await runtime.apply(workload)
    seen = await wait_for(
        runtime, "org/once", lambda s: s is not None and s.state.value == "stopped"
    )
    assert seen is not None and seen.exit_code == 0 and seen.restarts == 0


async def test_a_platform_killed_outright_adopts_and_still_supervises(
    runtime: ProcessRuntime, tmp_path: Path
) -> None:
    await runtime.apply(_serve("org/echo", "echo", "1"))
    before = await wait_for(runtime, "org/echo", running)
    await runtime.__aexit__(None, None, None)
    async with _make(tmp_path) as again:
        seen = await wait_for(again, "org/echo", running)
        assert _pid(seen) == _pid(before) and seen is not None and seen.restarts == 0
        assert _processes_of(seen.detail["workdir"]) == [_pid(before)]
        os.kill(_pid(seen), signal.SIGKILL)  # noticed through the pidfd, restarted
        restarted = await wait_for(again, "org/echo", lambda s: running(s) and s.restarts == 1)
        assert _pid(restarted) != _pid(before)
        assert _processes_of(seen.detail["workdir"]) == [_pid(restarted)]


async def test_a_recycled_pid_is_not_adopted(runtime: ProcessRuntime, tmp_path: Path) -> None:
    await runtime.apply(_serve("org/echo", "echo", "1"))
    before = await wait_for(runtime, "org/echo", running)
    await runtime.__aexit__(None, None, None)
    # The agent's pid now "belongs" to another process: a start time that does not match.
    path = tmp_path / "agents" / "org" / "echo" / "process.json"
    record = json.loads(path.read_text())
    record["start_ticks"] -= 1
    path.write_text(json.dumps(record))
    impostor = _pid(before)
    try:
        async with _make(tmp_path) as again:
            seen = await wait_for(again, "org/echo", running)
            assert _pid(seen) != impostor, "started afresh"
            assert os.kill(impostor, 0) is None, "the other process is left alone"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(impostor, signal.SIGKILL)


async def test_files_are_private_and_reloaded_on_sighup(
    runtime: ProcessRuntime, tmp_path: Path
) -> None:
    files = {"cert.pem": b"one", "key.pem": b"secret"}
    await runtime.apply(_serve("org/echo", "echo", "1", files=files))
    seen = await wait_for(runtime, "org/echo", running)
    await _logged(runtime, "org/echo", "hello from echo")  # its SIGHUP handler is set
    workdir = Path(seen.detail["workdir"])  # type: ignore[union-attr]
    assert workdir == tmp_path / "agents" / "org" / "echo"
    assert os.stat(workdir).st_mode & 0o777 == 0o700
    for name, data in files.items():
        assert (workdir / "files" / name).read_bytes() == data
        assert (workdir / "files" / name).stat().st_mode & 0o777 == 0o600
    await runtime.update_files("org/echo", {"cert.pem": b"two"})
    assert (workdir / "files" / "cert.pem").read_bytes() == b"two"
    marker = workdir / "reloaded"
    await _until(marker.exists, "the agent got SIGHUP")
    after = (await runtime.observe())["org/echo"]
    assert _pid(after) == _pid(seen) and after.restarts == 0, "reloaded, not restarted"
    # The same workload with the new file changes nothing more.
    await runtime.apply(_serve("org/echo", "echo", "1", files={**files, "cert.pem": b"two"}))
    assert _pid((await runtime.observe())["org/echo"]) == _pid(seen)


async def test_an_agent_waiting_to_restart_when_the_platform_stopped_is_restarted(
    tmp_path: Path,
) -> None:
    """The platform stopped (or was killed) between an agent's exit and its restart."""
    workload = _fail("org/flaky", "flaky", "1", restart_policy=RestartPolicy.ON_FAILURE)
    try:
        async with _make(tmp_path, restart_backoff_base=600, restart_backoff_cap=600) as first:
            await first.apply(workload)
            waiting = await wait_for(
                first, "org/flaky", lambda s: s is not None and s.exit_code == 3
            )
            assert waiting is not None and waiting.restarts == 0
        async with _make(tmp_path) as second:
            again = await wait_for(second, "org/flaky", lambda s: s is not None and s.restarts)
            assert again is not None and again.restarts >= 1
            await second.remove("org/flaky")
    finally:
        _kill_all(tmp_path)


async def test_a_relative_data_dir_still_tells_the_agent_where_its_files_are(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`make run` passes `--data-dir var/demo`; the agent runs in a folder of its own."""
    monkeypatch.chdir(tmp_path)
    program = "import os; open(os.path.join(os.environ['SHOPFLOOR_AGENT_FILES'], 'cert.pem'))"
    workload = Workload(
        key="org/reader", name="reader", version="1", command=(sys.executable, "-c", program),
        files={"cert.pem": b"one"}, restart_policy=RestartPolicy.NEVER,
    )  # fmt: skip
    try:
        async with _make(Path("data")) as runtime:
            await runtime.apply(workload)
            seen = await wait_for(
                runtime, "org/reader", lambda s: s is not None and s.exit_code is not None
            )
            assert seen is not None
            assert (seen.state, seen.exit_code) == (ObservedState.STOPPED, 0)
            await runtime.remove("org/reader")
    finally:
        _kill_all(tmp_path / "data")


async def test_logs_rotate_and_tail_spans_the_files(tmp_path: Path) -> None:
    chatty = (
        "import sys, time\n"
        "for n in range(400): print(f'line {n:04d} ' + 'x' * 40, flush=True)\n"
        "print('done', flush=True)\n"
        "time.sleep(3600)\n"
    )
    workload = Workload(
        key="org/chatty", name="chatty", version="1", command=(sys.executable, "-c", chatty)
    )
    try:
        async with _make(tmp_path, log_max_bytes=4096, log_files=3) as runtime:
            await runtime.apply(workload)
            await _logged(runtime, "org/chatty", "done")
            logs = tmp_path / "agents" / "org" / "chatty" / "logs"
            assert sorted(p.name for p in logs.glob("agent.log*")) == [
                "agent.log", "agent.log.1", "agent.log.2",
            ]  # fmt: skip
            assert all(p.stat().st_size <= 4096 for p in logs.glob("agent.log*"))
            tail = [line.text async for line in runtime.logs("org/chatty", tail=60)]
            assert tail[-1] == "done" and len(tail) == 60
            assert tail[:-1] == [f"line {n:04d} " + "x" * 40 for n in range(341, 400)]
            in_current = len((logs / "agent.log").read_bytes().splitlines())
            assert in_current < 60, "the tail spans the rotated files"
            await runtime.remove("org/chatty")
    finally:
        _kill_all(tmp_path)


async def test_follow_yields_what_is_printed_later(runtime: ProcessRuntime) -> None:
    script = (
        "import os, signal, sys, time\n"
        "signal.signal(signal.SIGHUP, lambda *a: print('after the call', flush=True))\n"
        "print('before', flush=True)\n"
        "while True: time.sleep(3600)\n"
    )
    workload = Workload(key="org/f", name="f", version="1", command=(sys.executable, "-c", script))
    await runtime.apply(workload)
    await _logged(runtime, "org/f", "before")
    seen: list[str] = []

    async def follow() -> None:
        async for line in runtime.logs("org/f", tail=10, follow=True):
            seen.append(line.text)
            if line.text == "after the call":
                return

    following = asyncio.create_task(follow())
    await _until(lambda: "before" in seen, "the tail first")
    await runtime.update_files("org/f", {})  # SIGHUP: it prints
    await asyncio.wait_for(following, 15)
    assert seen == ["before", "after the call"]
    streams = {line.stream async for line in runtime.logs("org/f")}
    assert streams == {"stdout"}


async def test_stderr_is_kept_apart(runtime: ProcessRuntime) -> None:
    await runtime.apply(_serve("org/echo", "echo", "1"))
    await _logged(runtime, "org/echo", "stderr of echo")
    lines = [line async for line in runtime.logs("org/echo")]
    assert {(line.stream, line.text) for line in lines} == {
        ("stdout", "hello from echo"), ("stderr", "stderr of echo"),
    }  # fmt: skip


async def test_a_command_that_cannot_start_is_failed(runtime: ProcessRuntime) -> None:
    workload = Workload(key="org/x", name="x", version="1", command=("/nonexistent/agent",))
    await runtime.apply(workload)
    seen = (await runtime.observe())["org/x"]
    assert seen.state is ObservedState.FAILED and "cannot start" in seen.error


PLATFORM = textwrap.dedent(
    """
    import asyncio, sys
    from pathlib import Path
    from shopfloor.agents import ProcessRuntime, RestartPolicy, Workload

    async def main() -> None:
        data_dir, serve = Path(sys.argv[1]), sys.argv[2]
        async with ProcessRuntime.from_settings({}, data_dir=data_dir) as runtime:
            await runtime.apply(Workload(
                key="org/echo", name="echo", version="1",
                command=(sys.executable, "-c", serve, "echo"),
                restart_policy=RestartPolicy.NEVER,
            ))
            print((await runtime.observe())["org/echo"].detail["pid"], flush=True)
            await asyncio.sleep(3600)

    asyncio.run(main())
    """
)


async def test_agents_outlive_a_platform_killed_with_sigkill(tmp_path: Path) -> None:
    platform = await asyncio.create_subprocess_exec(
        sys.executable, "-c", PLATFORM, str(tmp_path), SERVE, stdout=asyncio.subprocess.PIPE
    )
    try:
        assert platform.stdout is not None
        pid = int(await asyncio.wait_for(platform.stdout.readline(), 30))
        platform.kill()  # SIGKILL: no cleanup of any kind
        await platform.wait()
        assert os.kill(pid, 0) is None, "the agent lives on"
        async with _make(tmp_path) as runtime:
            seen = await wait_for(runtime, "org/echo", running)
            assert _pid(seen) == pid and seen is not None and seen.restarts == 0
            # printed while no platform ran (or just before): read back now
            await _logged(runtime, "org/echo", "hello from echo")
            os.kill(pid, signal.SIGKILL)  # not our child: noticed through its pidfd alone
            ended = await wait_for(
                runtime, "org/echo", lambda s: s is not None and s.state is ObservedState.FAILED
            )
            assert ended is not None and ended.exit_code is None
            assert ended.error == "exited while not supervised by this process"
            await runtime.remove("org/echo")
    finally:
        with contextlib.suppress(ProcessLookupError):
            platform.kill()
        await platform.wait()
        _kill_all(tmp_path)
