"""`SwarmRuntime` through the real `docker` SDK against the fake Engine API."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime
from typing import Any

import pytest

from shopfloor.agents import (
    KEY_LABEL,
    MANAGED_LABEL,
    AgentRuntime,
    RestartPolicy,
    RuntimeUnavailable,
    SwarmRuntime,
)
from shopfloor.agents._swarm import decode_frames, parse_timestamp, secret_name, service_name

from .fake_docker import FakeDockerEngine, frame
from .runtime_contract import *  # noqa: F403
from .runtime_contract import Programs, Reopen, image_programs, running, wait_for


@pytest.fixture
def engine() -> Iterator[FakeDockerEngine]:
    fake = FakeDockerEngine().start()
    try:
        yield fake
    finally:
        fake.stop()


@pytest.fixture
def programs() -> Programs:
    return image_programs()


@pytest.fixture
async def runtime(engine: FakeDockerEngine) -> AsyncIterator[AgentRuntime]:
    swarm = SwarmRuntime(docker_url=engine.url)
    async with swarm:
        try:
            yield swarm
        finally:
            async with SwarmRuntime(docker_url=engine.url) as cleaner:
                for key in await cleaner.observe():
                    await cleaner.remove(key)
    await swarm.__aexit__(None, None, None)  # closing twice is harmless


@pytest.fixture
def reopen(engine: FakeDockerEngine) -> Reopen:
    def again() -> AbstractAsyncContextManager[AgentRuntime]:
        return SwarmRuntime(docker_url=engine.url)

    return again


@pytest.fixture
async def swarm(runtime: AgentRuntime) -> SwarmRuntime:
    assert isinstance(runtime, SwarmRuntime)
    return runtime


def _service(engine: FakeDockerEngine, key: str = "org/echo") -> dict[str, Any]:
    with engine.engine.lock:
        (found,) = [
            s.spec for s in engine.engine.services.values() if s.spec["Labels"][KEY_LABEL] == key
        ]
        return found


def _secret_names(engine: FakeDockerEngine) -> set[str]:
    with engine.engine.lock:
        return {s.name for s in engine.engine.secrets.values()}


def _requests(engine: FakeDockerEngine, method: str, suffix: str) -> list[Any]:
    return [r for r in engine.engine.requests if r[0] == method and r[1].endswith(suffix)]


async def test_one_service_per_agent_with_its_labels(
    swarm: SwarmRuntime, engine: FakeDockerEngine, programs: Programs
) -> None:
    await swarm.apply(
        programs.serve("org/echo", "echo", "1", labels={"team": "line-4"}, env={"A": "b"})
    )
    seen = await wait_for(swarm, "org/echo", running("1"))
    spec = _service(engine)
    assert spec["Name"] == "sf-org-echo"
    assert spec["Labels"] == {
        "team": "line-4",
        MANAGED_LABEL: "true",
        KEY_LABEL: "org/echo",
        "shopfloor.agent.version": "1",
    }
    container = spec["TaskTemplate"]["ContainerSpec"]
    assert container["Image"] == "registry.example/echo:1"
    assert container["Env"] == ["A=b", "SHOPFLOOR_AGENT_FILES=/run/secrets"]
    assert seen is not None and seen.endpoint == "sf-org-echo"
    assert set(seen.detail) == {"service_id", "task_id"} and seen.detail["task_id"]


@pytest.mark.parametrize(
    ("policy", "condition"),
    [
        (RestartPolicy.ALWAYS, "any"),
        (RestartPolicy.ON_FAILURE, "on-failure"),
        (RestartPolicy.NEVER, "none"),
    ],
)
async def test_restart_policies_map_to_swarm_conditions(
    swarm: SwarmRuntime,
    engine: FakeDockerEngine,
    programs: Programs,
    policy: RestartPolicy,
    condition: str,
) -> None:
    await swarm.apply(programs.serve("org/echo", "echo", "1", restart_policy=policy))
    assert _service(engine)["TaskTemplate"]["RestartPolicy"] == {"Condition": condition}


async def test_a_failing_agent_that_may_restart_counts_its_restarts(
    swarm: SwarmRuntime, programs: Programs
) -> None:
    await swarm.apply(programs.fail("org/bad", "bad", "1", restart_policy=RestartPolicy.ALWAYS))
    seen = await wait_for(swarm, "org/bad", lambda s: s is not None and s.restarts >= 2)
    assert seen is not None and seen.version == "1"


async def test_upgrades_roll_back_on_failure(
    swarm: SwarmRuntime, engine: FakeDockerEngine, programs: Programs
) -> None:
    await swarm.apply(programs.serve("org/echo", "echo", "1"))
    await swarm.apply(programs.serve("org/echo", "echo", "2"))
    spec = _service(engine)
    assert spec["UpdateConfig"]["FailureAction"] == "rollback"
    assert "RollbackConfig" in spec
    ((_, _, query, _),) = _requests(engine, "POST", "/update")
    assert int(query["version"][0]) < engine.engine.services[_id(engine)].index
    assert spec["TaskTemplate"]["ContainerSpec"]["Image"] == "registry.example/echo:2"


def _id(engine: FakeDockerEngine) -> str:
    (service_id,) = engine.engine.services
    return service_id


async def test_a_stale_update_is_retried_with_the_fresh_version(
    swarm: SwarmRuntime, engine: FakeDockerEngine, programs: Programs
) -> None:
    await swarm.apply(programs.serve("org/echo", "echo", "1"))
    await wait_for(swarm, "org/echo", running("1"))
    engine.engine.stale_next_update.add(_id(engine))  # another writer gets there first
    await swarm.restart("org/echo")
    updates = _requests(engine, "POST", "/update")
    assert len(updates) == 2
    first, second = (int(query["version"][0]) for _, _, query, _ in updates)
    assert second > first
    assert engine.engine.services[_id(engine)].index > second
    await wait_for(swarm, "org/echo", lambda s: s is not None and s.restarts == 1)


async def test_files_are_content_addressed_secrets(
    swarm: SwarmRuntime, engine: FakeDockerEngine, programs: Programs
) -> None:
    files = {"agent.crt": b"CERT-1", "agent.key": b"KEY-1"}
    await swarm.apply(programs.serve("org/echo", "echo", "1", files=files, labels={"t": "x"}))
    references = _service(engine)["TaskTemplate"]["ContainerSpec"]["Secrets"]
    assert [r["SecretName"] for r in references] == [
        secret_name("org/echo", "agent.crt", b"CERT-1"),
        secret_name("org/echo", "agent.key", b"KEY-1"),
    ]
    assert all(r["SecretName"].startswith("sf-") for r in references)
    assert [r["File"] for r in references] == [
        {"Name": "agent.crt", "UID": "0", "GID": "0", "Mode": 0o400},
        {"Name": "agent.key", "UID": "0", "GID": "0", "Mode": 0o400},
    ]
    with engine.engine.lock:
        for secret in engine.engine.secrets.values():
            assert secret.labels[MANAGED_LABEL] == "true"
            assert secret.labels[KEY_LABEL] == "org/echo"
            assert secret.labels["t"] == "x"
        assert {s.data for s in engine.engine.secrets.values()} == {b"CERT-1", b"KEY-1"}
    await swarm.apply(programs.serve("org/echo", "echo", "1", files=files, labels={"t": "x"}))
    assert len(_requests(engine, "POST", "/secrets/create")) == 2, "the same files: no new secret"


async def test_a_changed_file_is_rotated(
    swarm: SwarmRuntime, engine: FakeDockerEngine, programs: Programs
) -> None:
    await swarm.apply(programs.serve("org/echo", "echo", "1", files={"agent.crt": b"OLD"}))
    await wait_for(swarm, "org/echo", running("1"))
    old = secret_name("org/echo", "agent.crt", b"OLD")
    new = secret_name("org/echo", "agent.crt", b"NEW")
    await swarm.update_files("org/echo", {"agent.crt": b"NEW"})
    assert _secret_names(engine) == {new}, "the old secret is gone"
    references = _service(engine)["TaskTemplate"]["ContainerSpec"]["Secrets"]
    assert [r["SecretName"] for r in references] == [new]
    # Order: the new secret existed before the service used it, the old went last.
    calls = [
        (method, path)
        for method, path, _, _ in engine.engine.requests
        if method in ("POST", "DELETE") and ("secret" in path or "update" in path)
    ]
    assert [m for m, _ in calls] == ["POST", "POST", "POST", "DELETE"]
    assert calls[1][1] == "/secrets/create" and calls[2][1].endswith("/update")
    assert old != new
    await wait_for(swarm, "org/echo", lambda s: s is not None and s.restarts == 1)


async def test_removal_deletes_the_secrets(
    swarm: SwarmRuntime, engine: FakeDockerEngine, programs: Programs
) -> None:
    await swarm.apply(programs.serve("org/echo", "echo", "1", files={"a.txt": b"a"}))
    await swarm.remove("org/echo")
    assert _secret_names(engine) == set()
    assert engine.engine.services == {}


async def test_logs_keep_stdout_and_stderr_apart(swarm: SwarmRuntime, programs: Programs) -> None:
    await swarm.apply(programs.fail("org/bad", "bad", "1", restart_policy=RestartPolicy.NEVER))
    await wait_for(swarm, "org/bad", lambda s: s is not None and s.exit_code == 3)
    lines = [line async for line in swarm.logs("org/bad")]
    assert [(line.stream, line.text) for line in lines] == [("stderr", "exiting with status 3")]
    assert lines[0].time.tzinfo is not None


async def test_followed_logs_bring_new_lines(swarm: SwarmRuntime, programs: Programs) -> None:
    await swarm.apply(programs.serve("org/echo", "echo", "1"))
    stream = swarm.logs("org/echo", follow=True)
    try:
        line = await asyncio.wait_for(anext(stream), 10)
    finally:
        await stream.aclose()  # type: ignore[attr-defined]
    assert line.text == "hello from echo" and line.stream == "stdout"


async def test_an_unreachable_engine_is_unavailable() -> None:
    with pytest.raises(RuntimeUnavailable):
        async with SwarmRuntime(docker_url="tcp://127.0.0.1:9"):
            pass


def test_multiplexed_frames_are_decoded_across_reads() -> None:
    data = frame(1, b"2024-05-01T10:00:00.123456789Z out\n") + frame(2, b"err\n")
    buffer = bytearray(data[:11])
    assert decode_frames(buffer) == []
    buffer += data[11:]
    assert decode_frames(buffer) == [(1, b"2024-05-01T10:00:00.123456789Z out\n"), (2, b"err\n")]
    assert buffer == b""


def test_engine_times_keep_microseconds() -> None:
    assert parse_timestamp("2024-05-01T10:00:00.123456789Z") == datetime(
        2024, 5, 1, 10, 0, 0, 123456, tzinfo=UTC
    )


def test_service_names_are_dns_labels() -> None:
    assert service_name("org/echo") == "sf-org-echo"
    long = service_name("Org_1/" + "x" * 80)
    assert len(long) <= 63 and long.startswith("sf-org-1-x")
