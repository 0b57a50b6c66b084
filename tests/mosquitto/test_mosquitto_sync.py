"""The reconciler against a real Mosquitto: things can log in exactly as the registry says."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import aiomqtt
from mosquitto_testkit import (
    BAD_CREDENTIALS,
    BRIDGE_PASSWORD,
    RunningBroker,
    connected,
    connection,
    make_key,
    make_thing,
    mqtt_client,
    snapshot,
)
from paho.mqtt.reasoncodes import ReasonCode

from shopfloor.adapters.mosquitto import (
    BRIDGE_USERNAME,
    DynsecClient,
    DynsecCommand,
    DynsecResponse,
    DynsecSync,
    ThingAccess,
    registry_snapshot,
)
from shopfloor.adapters.mosquitto._dynsec import (
    READ_COMMANDS,
    create_client,
    create_role,
    list_clients,
    list_roles,
    parse_clients,
    parse_roles,
)
from shopfloor.auth import ThingKeys
from shopfloor.registry import Permission, Registry


async def can_log_in(broker: RunningBroker, username: str, password: str) -> bool:
    try:
        async with mqtt_client(broker, username, password):
            return True
    except aiomqtt.MqttCodeError as exc:
        code = exc.rc.value if isinstance(exc.rc, ReasonCode) else exc.rc
        assert code in BAD_CREDENTIALS
        return False


async def broker_state(dynsec: DynsecClient) -> tuple[set[str], set[str]]:
    clients, roles = await dynsec.run([list_clients(), list_roles()])
    return (
        {client.username for client in parse_clients(clients.data)},
        {role.rolename for role in parse_roles(roles.data)},
    )


class RecordingDynsec:
    """A `DynsecCommands` that remembers the commands it forwards."""

    def __init__(self, inner: DynsecClient) -> None:
        self.inner = inner
        self.sent: list[DynsecCommand] = []

    async def execute(self, commands: Sequence[DynsecCommand]) -> list[DynsecResponse]:
        self.sent.extend(commands)
        return await self.inner.execute(commands)


async def test_sync_all_creates_things_that_log_in_with_id_and_key(
    broker: RunningBroker, sync: DynsecSync
) -> None:
    press, oven = make_thing("press"), make_thing("oven")
    press_key, oven_key = make_key(), make_key()

    report = await sync.sync_all(
        snapshot(
            (press, press_key, [connection(press, "line-1")]),
            (oven, oven_key, []),
        )
    )

    assert set(report.created) == {press.id, oven.id, BRIDGE_USERNAME}
    assert await can_log_in(broker, press.id, press_key)
    assert await can_log_in(broker, oven.id, oven_key)
    assert await can_log_in(broker, BRIDGE_USERNAME, BRIDGE_PASSWORD)


async def test_wrong_key_and_unknown_thing_cannot_log_in(
    broker: RunningBroker, sync: DynsecSync
) -> None:
    press = make_thing()
    await sync.thing_created(press, make_key())

    assert not await can_log_in(broker, press.id, make_key())
    assert not await can_log_in(broker, make_thing().id, make_key())


async def test_sync_all_is_idempotent(broker: RunningBroker, dynsec: DynsecClient) -> None:
    recording = RecordingDynsec(dynsec)
    sync = DynsecSync(recording, bridge_password=BRIDGE_PASSWORD)
    press, oven = make_thing("press"), make_thing("oven")
    things = [
        (press, make_key(), [connection(press, "line-1"), connection(press, "line-2")]),
        (oven, make_key(), [connection(oven, "line-1", Permission.SUBSCRIBE)]),
    ]
    first = await sync.sync_all(snapshot(*things))
    assert first.changes == 3
    recording.sent.clear()

    second = await sync.sync_all(snapshot(*things))

    assert second.changes == 0
    assert second.commands == 0
    assert second.unchanged == 3
    assert recording.sent, "the second run must still read the broker"
    assert {command["command"] for command in recording.sent} <= READ_COMMANDS


async def test_sync_all_repairs_a_changed_key_name_and_acls(
    broker: RunningBroker, sync: DynsecSync
) -> None:
    press = make_thing("press")
    old_key, new_key = make_key(), make_key()
    await sync.sync_all(snapshot((press, old_key, [connection(press, "line-1")])))

    renamed = replace(press, name="big press")
    report = await sync.sync_all(snapshot((renamed, new_key, [])))

    assert report.updated == (press.id,)
    assert report.commands == 3  # password, client record, role ACLs
    assert not await can_log_in(broker, press.id, old_key)
    assert await can_log_in(broker, press.id, new_key)


async def test_sync_all_deletes_stale_things_and_leaves_foreign_clients_alone(
    broker: RunningBroker, sync: DynsecSync, dynsec: DynsecClient
) -> None:
    kept, gone = make_thing("kept"), make_thing("gone")
    kept_key, gone_key = make_key(), make_key()
    await sync.sync_all(snapshot((kept, kept_key, []), (gone, gone_key, [])))
    # Another tool's client and role on the same broker.
    await dynsec.run(
        [create_role("operators"), create_client("grafana", "grafana-pw", roles=["operators"])]
    )
    # A role left behind by an interrupted deletion.
    orphan = f"thing:{uuid.uuid4().hex}"
    await dynsec.run([create_role(orphan)])

    report = await sync.sync_all(snapshot((kept, kept_key, [])))

    assert set(report.deleted) == {gone.id, orphan.removeprefix("thing:")}
    clients, roles = await broker_state(dynsec)
    assert gone.id not in clients
    assert {kept.id, "grafana", BRIDGE_USERNAME} <= clients
    assert f"thing:{gone.id}" not in roles
    assert orphan not in roles
    assert {"operators", f"thing:{kept.id}"} <= roles
    assert not await can_log_in(broker, gone.id, gone_key)
    assert await can_log_in(broker, "grafana", "grafana-pw")


async def test_key_rotation_refuses_the_old_key_and_ends_its_sessions(
    broker: RunningBroker, sync: DynsecSync
) -> None:
    press = make_thing()
    old_key, new_key = make_key(), make_key()
    await sync.thing_created(press, old_key, [connection(press, "line-1")])

    async with connected(broker, press.id, old_key) as old_session:
        await sync.key_rotated(press, new_key)
        async with asyncio.timeout(5):
            await old_session.closed.wait()

    assert not await can_log_in(broker, press.id, old_key)
    assert await can_log_in(broker, press.id, new_key)


async def test_deleted_thing_is_refused(broker: RunningBroker, sync: DynsecSync) -> None:
    press = make_thing()
    key = make_key()
    await sync.thing_created(press, key)
    assert await can_log_in(broker, press.id, key)

    await sync.thing_deleted(press.id)
    await sync.thing_deleted(press.id)  # deleting again is not an error

    assert not await can_log_in(broker, press.id, key)


async def test_registry_snapshot_feeds_sync_all(
    broker: RunningBroker, sync: DynsecSync, tmp_path: Path
) -> None:
    registry = await Registry.open(f"sqlite:///{tmp_path / 'registry.db'}", ThingKeys(b"k" * 32))
    try:
        org = await registry.create_org("plant")
        other = await registry.create_org("other plant")
        line = await registry.create_channel(org.id, name="line")
        press, press_key = await registry.create_thing(org.id, name="press")
        await registry.connect(org.id, line.id, press.id, [Permission.PUBLISH])
        pump, pump_key = await registry.create_thing(other.id, name="pump")

        report = await sync.sync_all(registry_snapshot(registry, page_size=1))
    finally:
        await registry.close()

    assert set(report.created) == {press.id, pump.id, BRIDGE_USERNAME}
    assert await can_log_in(broker, press.id, press_key)
    assert await can_log_in(broker, pump.id, pump_key)


async def test_concurrent_sync_all_runs_converge(broker: RunningBroker, sync: DynsecSync) -> None:
    things: list[ThingAccess] = [(make_thing(f"t{n}"), make_key(), []) for n in range(20)]
    async with DynsecClient.from_url(broker.admin_url, timeout=5.0) as other_admin:
        other = DynsecSync(other_admin, bridge_password=BRIDGE_PASSWORD)
        await asyncio.gather(sync.sync_all(snapshot(*things)), other.sync_all(snapshot(*things)))

    again = await sync.sync_all(snapshot(*things))

    assert again.changes == 0
    thing, key, _ = things[7]
    assert await can_log_in(broker, thing.id, key)
