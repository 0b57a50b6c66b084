"""The contract every agent runtime keeps: one suite, run against each.

A runtime's test module provides two fixtures and imports these tests:

    from .runtime_contract import *  # noqa: F403  (the contract's tests)

    @pytest.fixture
    async def runtime(...) -> AsyncIterator[AgentRuntime]: ...      # entered, on a fresh engine
    @pytest.fixture
    def reopen(...) -> Callable[[], AbstractAsyncContextManager[AgentRuntime]]: ...
        # a second runtime over the same engine / data dir (the platform restarted)
    @pytest.fixture
    def programs() -> Programs: ...   # how this runtime is told to run each behaviour

The `runtime` fixture's runtime may be closed by a test (the adoption test closes it,
as a platform going away would); closing twice must be harmless. Agents a test leaves
behind are the fixture's to remove at teardown.

`Programs.serve` prints `hello from <name>` once and then runs until stopped;
`Programs.fail` exits with status 3 at once. Process runtimes get commands; container
runtimes get images their engine (a fake, here) runs with that behaviour.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any

from shopfloor.agents import AgentRuntime, Observed, ObservedState, RestartPolicy, Workload

__all__ = [
    "Programs",
    "image_programs",
    "test_a_failing_agent_that_may_not_restart_is_failed",
    "test_a_new_version_replaces_the_old",
    "test_a_restarted_platform_adopts_its_agents",
    "test_applying_twice_changes_nothing",
    "test_logs_hold_what_the_agent_printed",
    "test_removed_agents_are_gone",
    "test_restart_counts",
    "test_sleep_and_wake",
    "test_the_agent_runs",
    "wait_for",
]


@dataclass(frozen=True)
class Programs:
    serve: Callable[..., Workload]  # (key, name, version, **workload fields) -> Workload
    fail: Callable[..., Workload]


def image_programs(
    serve: str = "registry.example/echo", fail: str = "registry.example/fail"
) -> Programs:
    """Programs for container runtimes: images (tagged with the version) their fake
    engine runs with the `serve` or the `fail` behaviour."""

    def image(name: str) -> Callable[..., Workload]:
        def make(key: str, agent: str, version: str, **fields: Any) -> Workload:
            return Workload(
                key=key, name=agent, version=version, image=f"{name}:{version}", **fields
            )

        return make

    return Programs(serve=image(serve), fail=image(fail))


async def wait_for(
    runtime: AgentRuntime,
    key: str,
    check: Callable[[Observed | None], bool],
    *,
    within: float = 20,
) -> Observed | None:
    """Poll `observe()` until `check` holds for the key's observation (None: absent)."""
    deadline = asyncio.get_running_loop().time() + within
    seen: Observed | None = None
    while True:
        seen = (await runtime.observe()).get(key)
        if check(seen):
            return seen
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{key}: condition not met within {within} s; last seen {seen}")
        await asyncio.sleep(0.05)


def running(version: str | None = None) -> Callable[[Observed | None], bool]:
    def check(seen: Observed | None) -> bool:
        return (
            seen is not None
            and seen.state is ObservedState.RUNNING
            and (version is None or seen.version == version)
        )

    return check


async def test_the_agent_runs(runtime: AgentRuntime, programs: Programs) -> None:
    await runtime.apply(programs.serve("org/echo", "echo", "1"))
    seen = await wait_for(runtime, "org/echo", running("1"))
    assert seen is not None and seen.restarts == 0 and seen.key == "org/echo"


async def test_applying_twice_changes_nothing(runtime: AgentRuntime, programs: Programs) -> None:
    workload = programs.serve("org/echo", "echo", "1")
    await runtime.apply(workload)
    first = await wait_for(runtime, "org/echo", running("1"))
    await runtime.apply(workload)
    await asyncio.sleep(0.3)
    again = (await runtime.observe())["org/echo"]
    assert first is not None and again.restarts == first.restarts == 0
    assert again.started_at == first.started_at
    assert list(await runtime.observe()) == ["org/echo"]


async def test_a_new_version_replaces_the_old(runtime: AgentRuntime, programs: Programs) -> None:
    await runtime.apply(programs.serve("org/echo", "echo", "1"))
    await wait_for(runtime, "org/echo", running("1"))
    await runtime.apply(programs.serve("org/echo", "echo", "2"))
    await wait_for(runtime, "org/echo", running("2"))
    assert list(await runtime.observe()) == ["org/echo"]


async def test_sleep_and_wake(runtime: AgentRuntime, programs: Programs) -> None:
    await runtime.apply(programs.serve("org/echo", "echo", "1"))
    await wait_for(runtime, "org/echo", running("1"))
    await runtime.apply(programs.serve("org/echo", "echo", "1", replicas=0))
    await wait_for(
        runtime, "org/echo", lambda s: s is not None and s.state is ObservedState.SLEEPING
    )
    await runtime.apply(programs.serve("org/echo", "echo", "1", replicas=1))
    await wait_for(runtime, "org/echo", running("1"))


async def test_removed_agents_are_gone(runtime: AgentRuntime, programs: Programs) -> None:
    await runtime.apply(programs.serve("org/echo", "echo", "1"))
    await runtime.apply(programs.serve("org/other", "other", "1"))
    await wait_for(runtime, "org/echo", running())
    await runtime.remove("org/echo")
    await wait_for(runtime, "org/echo", lambda seen: seen is None)
    assert "org/other" in await runtime.observe()
    await runtime.remove("org/never-was")  # nothing to do, no error


async def test_restart_counts(runtime: AgentRuntime, programs: Programs) -> None:
    await runtime.apply(programs.serve("org/echo", "echo", "1"))
    await wait_for(runtime, "org/echo", running())
    await runtime.restart("org/echo")
    await wait_for(runtime, "org/echo", lambda s: s is not None and s.restarts >= 1)
    await wait_for(runtime, "org/echo", running())


async def test_a_failing_agent_that_may_not_restart_is_failed(
    runtime: AgentRuntime, programs: Programs
) -> None:
    await runtime.apply(programs.fail("org/bad", "bad", "1", restart_policy=RestartPolicy.NEVER))
    seen = await wait_for(
        runtime, "org/bad", lambda s: s is not None and s.state is ObservedState.FAILED
    )
    assert seen is not None and seen.exit_code == 3


async def test_logs_hold_what_the_agent_printed(runtime: AgentRuntime, programs: Programs) -> None:
    await runtime.apply(programs.serve("org/echo", "echo", "1"))
    await wait_for(runtime, "org/echo", running())
    deadline = asyncio.get_running_loop().time() + 20
    while True:
        lines = [line async for line in runtime.logs("org/echo", tail=10)]
        if any("hello from echo" in line.text for line in lines):
            break
        assert asyncio.get_running_loop().time() < deadline, lines
        await asyncio.sleep(0.1)


async def test_a_restarted_platform_adopts_its_agents(
    runtime: AgentRuntime,
    programs: Programs,
    reopen: Callable[[], AbstractAsyncContextManager[AgentRuntime]],
) -> None:
    await runtime.apply(programs.serve("org/echo", "echo", "1"))
    before = await wait_for(runtime, "org/echo", running("1"))
    await runtime.__aexit__(None, None, None)  # the platform goes; its agents stay
    async with reopen() as again:
        seen = await wait_for(again, "org/echo", running("1"))
        assert before is not None and seen is not None
        assert seen.started_at == before.started_at and seen.restarts == 0, "adopted, not restarted"
        assert list(await again.observe()) == ["org/echo"]
        await again.remove("org/echo")


# Typing helpers for the fixtures runtime modules define.
RuntimeFixture = AsyncIterator[AgentRuntime]
Reopen = Callable[[], AbstractAsyncContextManager[AgentRuntime]]
Starter = Callable[..., Awaitable[Any]]
