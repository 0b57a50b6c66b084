"""Mosquitto mode end to end: a real broker, the platform in-process, MQTT v5 things.

"Not delivered" is never checked by waiting: a marker is sent after the message that
must not arrive, by a path the broker keeps in order, and once the marker is in, the
forbidden message would be too.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import aiomqtt
import pytest
from mosquitto_testkit import (
    NOT_AUTHORIZED,
    RunningBroker,
    connected,
    mqtt_client,
    subscribe,
    user_properties,
)
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from test_mosquitto_bridge_kit import SENML, Plant, eventually, in_process_platform, sample

from shopfloor.adapters.mosquitto import (
    MESSAGE_ID_PROPERTY,
    PROTOCOL_PROPERTY,
    PUBLISHER_PROPERTY,
)
from shopfloor.messaging import Envelope
from shopfloor.registry import Permission

GRANTED = 1
PUBLISH, SUBSCRIBE = Permission.PUBLISH, Permission.SUBSCRIBE


@pytest.fixture
async def plant(tmp_path: Path, broker: RunningBroker) -> AsyncIterator[Plant]:
    async with in_process_platform(tmp_path, broker) as running:
        yield running


async def can_log_in(plant: Plant, username: str, password: str) -> bool:
    try:
        async with mqtt_client(plant.broker, username, password):
            return True
    except aiomqtt.MqttCodeError:
        return False


def with_content_type(content_type: str) -> Properties:
    properties = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    properties.ContentType = content_type
    return properties


async def test_a_things_senml_reaches_the_bus_with_its_identity(plant: Plant) -> None:
    press, key = await plant.thing("press", PUBLISH)
    async with plant.service(), connected(plant.broker, press.id, key) as thing:
        await thing.client.publish(plant.topic("pressure/main"), SENML, qos=1)
        await thing.client.publish(
            plant.topic(), b'{"v": 1}', qos=1, properties=with_content_type("application/json")
        )
        senml = await plant.bus.wait_for(lambda e: e.payload == SENML)
        plain = await plant.bus.wait_for(lambda e: e.payload == b'{"v": 1}')

    assert (senml.channel, senml.subtopic) == (plant.channel.id, "pressure/main")
    assert (senml.publisher, senml.protocol) == (press.id, "mqtt")
    assert senml.content_type == "application/senml+json"  # sniffed: no property sent
    assert (plain.subtopic, plain.content_type) == ("", "application/json")
    assert len(plant.bus.with_payload(SENML)) == 1


async def test_things_publish_and_subscribe_only_as_connected(plant: Plant) -> None:
    other = await plant.registry.create_channel(plant.org.id, name="line-2")
    third = await plant.registry.create_channel(plant.org.id, name="line-3")
    press, key = await plant.thing("press", PUBLISH)
    await plant.registry.connect(plant.org.id, other.id, press.id, [SUBSCRIBE])

    async with plant.service(), connected(plant.broker, press.id, key) as thing:
        assert await subscribe(thing, plant.topic("#")) == NOT_AUTHORIZED
        assert await subscribe(thing, plant.topic("#", other.id)) == GRANTED
        assert await subscribe(thing, plant.topic("#", third.id)) == NOT_AUTHORIZED
        await thing.client.publish(plant.topic("", other.id), b'[{"n":"other","v":1}]', qos=1)
        await thing.client.publish(plant.topic("", third.id), b'[{"n":"third","v":1}]', qos=1)
        await thing.client.publish(plant.topic(), b'[{"n":"marker","v":1}]', qos=1)
        await plant.bus.wait_for(lambda e: b"marker" in e.payload)

    assert [e.channel for e in plant.bus.taken] == [plant.channel.id]


async def test_messages_of_other_protocols_reach_mqtt_subscribers_once(plant: Plant) -> None:
    press, press_key = await plant.thing("press", PUBLISH)
    panel, panel_key = await plant.thing("panel", SUBSCRIBE)
    # As if the press had published over HTTP: allowed on the channel, so a copy coming
    # back through the bridge would be taken again, were it not recognised.
    from_http = Envelope(
        channel=plant.channel.id, subtopic="setpoint", publisher=press.id,
        protocol="http", payload=b'[{"n":"setpoint","v":7}]', content_type="application/senml+json",
    )  # fmt: skip
    from_mqtt = b'[{"n":"from-mqtt","v":1}]'

    async with (
        plant.service() as (_, metrics),
        connected(plant.broker, panel.id, panel_key) as reader,
        connected(plant.broker, press.id, press_key) as writer,
    ):
        assert await subscribe(reader, plant.topic("#")) == GRANTED
        await writer.client.publish(plant.topic("a"), from_mqtt, qos=1)
        await plant.bus.wait_for(lambda e: e.payload == from_mqtt)
        await plant.bus.publish(from_http)
        delivered = await reader.wait_for(lambda m: m.payload == from_http.payload)
        # Published after the bridge's copy of `from_http` came back to it: once this is
        # on the bus, that copy was handled too.
        await writer.client.publish(plant.topic("a"), b'[{"n":"marker","v":1}]', qos=1)
        await plant.bus.wait_for(lambda e: b"marker" in e.payload)

    assert delivered.topic.value == plant.topic("setpoint")
    assert delivered.properties is not None
    assert delivered.properties.ContentType == "application/senml+json"  # type: ignore[attr-defined]
    assert user_properties(delivered) == [
        (PUBLISHER_PROPERTY, press.id),
        (MESSAGE_ID_PROPERTY, from_http.id),
        (PROTOCOL_PROPERTY, "http"),
    ]
    # Directly from the broker only, not echoed a second time by the bridge.
    assert [m.payload for m in reader.messages].count(from_mqtt) == 1
    assert len(plant.bus.with_payload(from_mqtt)) == 1
    assert plant.bus.with_payload(from_http.payload) == [from_http]
    assert sample(metrics, "shopfloor_mqtt_forwarded_total") == 1


async def test_a_refused_message_is_reported_to_its_publisher_only(plant: Plant) -> None:
    press, press_key = await plant.thing("press", PUBLISH)
    panel, panel_key = await plant.thing("panel", SUBSCRIBE)
    errors_of = {t.id: plant.topic(f"_errors/{t.id}") for t in (press, panel)}

    async with (
        plant.service() as (_, metrics),
        connected(plant.broker, press.id, press_key) as writer,
        connected(plant.broker, panel.id, panel_key) as reader,
    ):
        # Its own reports, on any channel, whatever its permissions; nobody else's.
        assert await subscribe(writer, f"channels/+/messages/_errors/{press.id}") == GRANTED
        assert await subscribe(reader, errors_of[press.id]) == NOT_AUTHORIZED
        assert await subscribe(reader, plant.topic("_errors/#")) == NOT_AUTHORIZED
        assert await subscribe(reader, errors_of[panel.id]) == GRANTED
        assert await subscribe(reader, plant.topic("#")) == GRANTED

        await writer.client.publish(plant.topic("t"), b'[{"n":"broken"', qos=1)
        report = await writer.wait_for(lambda m: m.topic.value == errors_of[press.id])
        # Things cannot forge reports to others.
        await writer.client.publish(errors_of[panel.id], b'{"code":"forged"}', qos=1)
        await writer.client.publish(plant.topic("t"), SENML, qos=1)
        await plant.bus.wait_for(lambda e: e.payload == SENML)
        await reader.wait_for(lambda m: m.payload == SENML)

    body = json.loads(report.payload)
    assert body["topic"] == plant.topic("t")
    assert body["code"] == "invalid_json"
    assert "not valid JSON" in body["message"]
    assert [m.topic.value for m in reader.messages if "_errors" in m.topic.value] == []
    assert [e.payload for e in plant.bus.taken] == [SENML]
    assert sample(metrics, "shopfloor_mqtt_rejected_total", code=body["code"]) == 1


async def test_registry_changes_apply_without_a_restart(plant: Plant) -> None:
    async with plant.service():
        late, key = await plant.thing("late")
        await eventually(lambda: can_log_in(plant, late.id, key))

        await plant.registry.connect(plant.org.id, plant.channel.id, late.id, [PUBLISH])
        async with connected(plant.broker, late.id, key) as thing:
            # The permission arrives asynchronously: publish until one gets through.
            async def published() -> bool:
                await thing.client.publish(plant.topic(), SENML, qos=1)
                return bool(plant.bus.with_payload(SENML))

            await eventually(published, every=0.05)

        _, new_key = await plant.registry.rotate_thing_key(plant.org.id, late.id)
        await eventually(lambda: can_log_in(plant, late.id, new_key))
        assert not await can_log_in(plant, late.id, key)

        await plant.registry.delete_thing(plant.org.id, late.id)
        await eventually(lambda: _refused(plant, late.id, new_key))


async def _refused(plant: Plant, username: str, password: str) -> bool:
    return not await can_log_in(plant, username, password)
