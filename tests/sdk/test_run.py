"""`python -m shopfloor.sdk.run module:callable`, run as the agents service will run it."""

from __future__ import annotations

import asyncio
import re
import signal
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RUNNER = "shopfloor.sdk.run"


@dataclass
class Ended:
    status: int
    stdout: str
    stderr: str

    @property
    def last_error_line(self) -> str:
        return self.stderr.rstrip("\n").rsplit("\n", 1)[-1]


async def start(*args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", RUNNER, *args, cwd=ROOT,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip


async def finish(process: asyncio.subprocess.Process, *, within: float = 20) -> Ended:
    try:
        async with asyncio.timeout(within):
            stdout, stderr = await process.communicate()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode is not None
    return Ended(process.returncode, stdout.decode(), stderr.decode())


async def run(*args: str) -> Ended:
    return await finish(await start(*args))


async def until_ready(process: asyncio.subprocess.Process) -> None:
    """Read the target's output up to its `ready` line (it has installed nothing yet)."""
    assert process.stdout is not None
    async with asyncio.timeout(20):
        while (line := await process.stdout.readline()) != b"ready\n":
            assert line, "the target ended before it was ready"


async def test_a_coroutine_function_runs_to_its_end() -> None:
    ended = await run("tests.sdk.targets:returns")
    assert (ended.status, ended.stderr) == (0, "")
    assert "returned" in ended.stdout.splitlines()


async def test_a_plain_function_is_called() -> None:
    ended = await run("tests.sdk.targets:plain")
    assert (ended.status, ended.stderr) == (0, "")
    assert "plain function called" in ended.stdout.splitlines()


@pytest.mark.parametrize(
    ("target", "summary"),
    [
        ("raises", "RuntimeError: the spindle jammed"),
        ("plain_raises", "ValueError: no such tool"),
    ],
)
async def test_an_exception_is_status_1_with_its_traceback_and_one_line(
    target: str, summary: str
) -> None:
    ended = await run(f"tests.sdk.targets:{target}")
    assert ended.status == 1
    assert ended.stderr.startswith("Traceback (most recent call last):"), ended.stderr
    assert ended.last_error_line == f"{RUNNER}: tests.sdk.targets:{target} failed: {summary}"


@pytest.mark.parametrize(
    ("reference", "reason"),
    [
        ("tests.sdk.no_such_module:main", "no module named 'tests.sdk.no_such_module'"),
        ("no_such_package.agent:main", "no module named 'no_such_package'"),
        ("tests.sdk.targets:missing", "tests.sdk.targets has no attribute 'missing'"),
        ("tests.sdk.targets:NOT_CALLABLE", "is a int, not a callable"),
        ("tests.sdk.targets", "a target is `package.module:callable`"),
        ("tests.sdk.broken_target:main", "RuntimeError: broken at import"),
    ],
)
async def test_a_target_that_cannot_be_imported_is_status_2(reference: str, reason: str) -> None:
    ended = await run(reference)
    assert ended.status == 2
    assert ended.last_error_line.startswith(f"{RUNNER}: cannot import {reference}: ")
    assert reason in ended.last_error_line
    assert ended.stdout == ""


async def test_the_traceback_of_a_module_that_raised_is_shown() -> None:
    ended = await run("tests.sdk.broken_target:main")
    assert ended.status == 2
    assert 'broken_target.py", line 3' in ended.stderr
    missing = await run("tests.sdk.no_such_module:main")
    assert "Traceback" not in missing.stderr  # nothing to debug: a single line says it all
    assert len(missing.stderr.splitlines()) == 1


async def test_without_a_target_it_says_how_to_call_it() -> None:
    ended = await run()
    assert ended.status == 2
    assert ended.stderr == f"usage: python -m {RUNNER} package.module:callable\n"


@pytest.mark.parametrize("target", ["waits", "waits_then_returns", "plain_waits"])
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
async def test_a_stop_signal_lets_the_agent_clean_up_and_exit_0(
    target: str, signum: signal.Signals
) -> None:
    process = await start(f"tests.sdk.targets:{target}")
    await until_ready(process)
    process.send_signal(signum)
    ended = await finish(process, within=10)
    assert (ended.status, ended.stderr) == (0, "")
    assert "cleaned up" in ended.stdout.splitlines()


async def test_a_cleanup_that_raises_after_sigterm_is_status_1() -> None:
    process = await start("tests.sdk.targets:cleanup_fails")
    await until_ready(process)
    process.send_signal(signal.SIGTERM)
    ended = await finish(process, within=10)
    assert ended.status == 1
    assert ended.last_error_line.endswith("failed: OSError: the disk is gone")


async def test_a_cancellation_no_signal_asked_for_is_a_failure() -> None:
    ended = await run("tests.sdk.targets:cancels_itself")
    assert ended.status == 1
    assert ended.last_error_line == (
        f"{RUNNER}: tests.sdk.targets:cancels_itself was cancelled without a stop signal"
    )


async def test_logging_goes_to_stdout_one_stamped_line_a_record_secrets_redacted() -> None:
    ended = await run("tests.sdk.targets:logs")
    assert (ended.status, ended.stderr) == (0, "")
    stamp = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} INFO +agent: "
    lines = ended.stdout.splitlines()
    assert re.fullmatch(stamp + "hello from the agent", lines[0]), lines
    assert re.fullmatch(stamp + r"Authorization: .*\[redacted\]", lines[1]), lines
    assert "0123456789abcdef" not in ended.stdout
