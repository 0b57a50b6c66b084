"""The adapters' credential cache: one look-up per key at a time, never stale after a change."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from shopfloor.auth import ThingAccess, ThingKeys
from shopfloor.registry import Permission, Registry


@pytest.fixture
async def registry(tmp_path: Path) -> AsyncIterator[Registry]:
    registry = await Registry.open(f"sqlite:///{tmp_path / 'registry.db'}", ThingKeys(b"k" * 32))
    try:
        yield registry
    finally:
        await registry.close()


class Gate:
    """Holds every registry look-up until opened, counting them."""

    def __init__(self) -> None:
        self.calls = 0
        self.opened = asyncio.Event()

    def hold(self, method: Any) -> Any:
        async def held(*args: Any) -> Any:
            self.calls += 1
            await self.opened.wait()
            return await method(*args)

        return held


async def test_concurrent_misses_share_one_look_up(
    registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    org = await registry.create_org("Plant")
    thing, key = await registry.create_thing(org.id, name="press")
    channel = await registry.create_channel(org.id, name="telemetry")
    await registry.connect(org.id, channel.id, thing.id, [Permission.PUBLISH])
    access = ThingAccess(registry)
    keys, connections = Gate(), Gate()
    monkeypatch.setattr(registry, "thing_by_key", keys.hold(registry.thing_by_key))
    monkeypatch.setattr(registry, "connection", connections.hold(registry.connection))

    logins = [asyncio.create_task(access.authenticate(key)) for _ in range(32)]
    checks = [asyncio.create_task(access.permissions(thing.id, channel.id)) for _ in range(32)]
    await asyncio.sleep(0.01)
    keys.opened.set()
    connections.opened.set()

    assert {t.id for t in await asyncio.gather(*logins) if t is not None} == {thing.id}
    assert set(await asyncio.gather(*checks)) == {frozenset({Permission.PUBLISH})}
    assert (keys.calls, connections.calls) == (1, 1)
    await access.authenticate(key)  # cached now
    assert keys.calls == 1


async def test_one_caller_giving_up_does_not_cancel_the_others(
    registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    org = await registry.create_org("Plant")
    thing, key = await registry.create_thing(org.id, name="press")
    access = ThingAccess(registry)
    gate = Gate()
    monkeypatch.setattr(registry, "thing_by_key", gate.hold(registry.thing_by_key))
    impatient = asyncio.create_task(access.authenticate(key))
    patient = asyncio.create_task(access.authenticate(key))
    await asyncio.sleep(0.01)
    impatient.cancel()
    gate.opened.set()
    found = await patient
    assert found is not None and found.id == thing.id
    assert impatient.cancelled()


async def test_a_change_during_a_look_up_is_not_cached_over(
    registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    org = await registry.create_org("Plant")
    thing, _key = await registry.create_thing(org.id, name="press")
    channel = await registry.create_channel(org.id, name="telemetry")
    await registry.connect(org.id, channel.id, thing.id, [Permission.PUBLISH])
    access = ThingAccess(registry)
    gate = Gate()
    real_connection = registry.connection

    async def answered_before_the_change(channel_id: str, thing_id: str) -> Any:
        answer = await real_connection(channel_id, thing_id)
        await gate.opened.wait()  # the registry answered; the change lands meanwhile
        return answer

    monkeypatch.setattr(registry, "connection", answered_before_the_change)
    looking = asyncio.create_task(access.permissions(thing.id, channel.id))
    await asyncio.sleep(0.01)
    await registry.disconnect(org.id, channel.id, thing.id)
    gate.opened.set()
    assert await looking == frozenset({Permission.PUBLISH})  # what it read, in its time
    monkeypatch.setattr(registry, "connection", real_connection)
    assert await access.permissions(thing.id, channel.id) == frozenset()
