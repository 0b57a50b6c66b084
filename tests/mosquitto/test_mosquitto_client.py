"""The admin connection: errors, answer matching, reconnecting, building the plugin."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import pytest
from mosquitto_testkit import ADMIN_PASSWORD, ADMIN_USERNAME, RunningBroker, run_mosquitto

from shopfloor.adapters.mosquitto import (
    DynsecClient,
    DynsecError,
    DynsecInitError,
    DynsecUnavailable,
    PluginBuildError,
    build_plugin,
    init_dynsec_config,
)
from shopfloor.adapters.mosquitto._dynsec import (
    create_client,
    get_client,
    list_clients,
    parse_client,
)


async def test_a_refused_command_raises_with_the_brokers_message(dynsec: DynsecClient) -> None:
    with pytest.raises(DynsecError, match="Client not found") as raised:
        await dynsec.run([get_client("nobody")])

    assert raised.value.command == "getClient"
    (answer,) = await dynsec.execute([get_client("nobody")])
    assert answer.error == "Client not found"


async def test_concurrent_admins_get_their_own_answers(
    broker: RunningBroker, dynsec: DynsecClient
) -> None:
    names = [f"client-{n}" for n in range(12)]
    await dynsec.run([create_client(name, f"pw-{name}", textname=name) for name in names])

    async with DynsecClient.from_url(broker.admin_url, timeout=5.0) as other:

        async def fetch(client: DynsecClient, name: str) -> str:
            (answer,) = await client.run([get_client(name)])
            return parse_client(answer.data).textname

        results = await asyncio.gather(
            *(fetch(dynsec if n % 2 else other, name) for n, name in enumerate(names))
        )

    assert results == names


async def test_large_batches_are_split(dynsec: DynsecClient) -> None:
    answers = await dynsec.run([list_clients(verbose=False) for _ in range(250)])

    assert len(answers) == 250
    assert all(answer.command == "listClients" for answer in answers)


async def test_wrong_admin_password_is_unavailable(broker: RunningBroker) -> None:
    url = f"mqtt://{ADMIN_USERNAME}:wrong@{broker.host}:{broker.port}"
    with pytest.raises(DynsecUnavailable, match="as admin"):
        async with DynsecClient.from_url(url, timeout=1.0):
            pass


async def test_client_reconnects_after_a_broker_restart(
    tmp_path: Path, publisher_plugin: Path
) -> None:
    work = tmp_path / "broker"
    async with contextlib.AsyncExitStack() as stack:
        first_run = contextlib.AsyncExitStack()
        broker = await first_run.enter_async_context(run_mosquitto(work, publisher_plugin))
        try:
            client = await stack.enter_async_context(
                DynsecClient.from_url(broker.admin_url, timeout=1.0, backoff_cap=0.2)
            )
            await client.run([create_client("survivor", "pw")])
        finally:
            await first_run.aclose()

        # While the broker is down, requests fail within the timeout instead of hanging.
        with pytest.raises(DynsecUnavailable):
            await client.run([get_client("survivor")])

        await stack.enter_async_context(run_mosquitto(work, publisher_plugin, port=broker.port))
        async with asyncio.timeout(10):
            while True:
                try:
                    (answer,) = await client.run([get_client("survivor")])
                    break
                except DynsecUnavailable:
                    continue

    assert parse_client(answer.data).username == "survivor"


def test_plugin_builds_are_cached(tmp_path: Path) -> None:
    first = build_plugin(tmp_path)
    built_at = first.stat().st_mtime_ns

    again = build_plugin(tmp_path)

    assert again == first
    assert again.stat().st_mtime_ns == built_at
    assert [p.name for p in tmp_path.iterdir()] == [first.name]


def test_plugin_build_failures_are_reported(tmp_path: Path) -> None:
    with pytest.raises(PluginBuildError, match="not found"):
        build_plugin(tmp_path, compiler="no-such-compiler")
    with pytest.raises(PluginBuildError, match="failed"):
        build_plugin(tmp_path, compiler="false")


def test_dynsec_init_refuses_an_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "dynsec.json"
    init_dynsec_config(path, ADMIN_USERNAME, ADMIN_PASSWORD)

    assert ADMIN_PASSWORD not in path.read_text()
    assert path.stat().st_mode & 0o077 == 0
    with pytest.raises(DynsecInitError, match="exists"):
        init_dynsec_config(path, ADMIN_USERNAME, ADMIN_PASSWORD)
