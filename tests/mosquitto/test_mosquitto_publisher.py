"""Channel permissions and the publisher identity, end to end through a real Mosquitto.

"Not delivered" is never checked by waiting: after the forbidden message the same
publisher sends an allowed marker, and Mosquitto keeps one publisher's messages in
order for a subscriber, so once the marker is in, the forbidden message would be too.
"""

from __future__ import annotations

import asyncio
import threading

import aiomqtt
import paho.mqtt.client as paho
from mosquitto_testkit import (
    BRIDGE_PASSWORD,
    NOT_AUTHORIZED,
    RunningBroker,
    connected,
    connection,
    make_key,
    make_thing,
    publish_properties,
    snapshot,
    subscribe,
    user_properties,
)
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from shopfloor.adapters.mosquitto import (
    BRIDGE_USERNAME,
    MESSAGE_ID_PROPERTY,
    PROTOCOL_PROPERTY,
    PUBLISHER_PROPERTY,
    DynsecSync,
)
from shopfloor.registry import Permission

GRANTED_QOS_1 = 1


def stamped(message: aiomqtt.Message) -> list[tuple[str, str]]:
    """The user properties, after checking that the plugin ended them with a message id."""
    *properties, (name, message_id) = user_properties(message)
    assert name == MESSAGE_ID_PROPERTY
    assert len(message_id) == 32 and int(message_id, 16) >= 0
    return properties


def topic(channel: str, subtopic: str = "") -> str:
    return f"channels/{channel}/messages" + (f"/{subtopic}" if subtopic else "")


async def test_bridge_receives_the_authenticated_publisher_even_when_forged(
    broker: RunningBroker, sync: DynsecSync
) -> None:
    press, key = make_thing("press"), make_key()
    await sync.sync_all(snapshot((press, key, [connection(press, "line-1", Permission.PUBLISH)])))
    forged_id = "0" * 32
    properties = publish_properties(
        ("site", "north"),
        (PUBLISHER_PROPERTY, "someone-else"),
        (PROTOCOL_PROPERTY, "http"),
        ("unit", "bar"),
        (MESSAGE_ID_PROPERTY, forged_id),
    )
    properties.CorrelationData = b"req-7"
    properties.ContentType = "application/senml+json"

    async with (
        connected(broker, BRIDGE_USERNAME, BRIDGE_PASSWORD) as bridge,
        connected(broker, press.id, key) as thing,
    ):
        assert await subscribe(bridge, "channels/#") == GRANTED_QOS_1
        await thing.client.publish(topic("line-1", "pressure"), b"[]", qos=1, properties=properties)
        await thing.client.publish(topic("line-1"), b"plain", qos=1)

        forged = await bridge.wait_for(lambda m: m.topic.matches(topic("line-1", "pressure")))
        plain = await bridge.wait_for(lambda m: m.topic.matches(topic("line-1")))

    assert stamped(forged) == [
        ("site", "north"),
        ("unit", "bar"),
        (PUBLISHER_PROPERTY, press.id),
    ]
    assert forged.properties is not None
    assert forged.properties.CorrelationData == b"req-7"  # type: ignore[attr-defined]
    assert forged.properties.ContentType == "application/senml+json"  # type: ignore[attr-defined]
    assert stamped(plain) == [(PUBLISHER_PROPERTY, press.id)]
    ids = {user_properties(m)[-1][1] for m in (forged, plain)}
    assert len(ids) == 2 and forged_id not in ids


async def test_shared_bridge_subscription_is_allowed(
    broker: RunningBroker, sync: DynsecSync
) -> None:
    press, key = make_thing(), make_key()
    await sync.sync_all(snapshot((press, key, [connection(press, "line-1")])))

    async with (
        connected(broker, BRIDGE_USERNAME, BRIDGE_PASSWORD) as bridge,
        connected(broker, press.id, key) as thing,
    ):
        assert await subscribe(bridge, "$share/bridges/channels/#") == GRANTED_QOS_1
        await thing.client.publish(topic("line-1"), b"x", qos=1)
        message = await bridge.wait_for(lambda m: True)

    assert stamped(message) == [(PUBLISHER_PROPERTY, press.id)]


async def test_publish_on_a_channel_without_publish_permission_is_not_delivered(
    broker: RunningBroker, sync: DynsecSync
) -> None:
    press, key = make_thing(), make_key()
    await sync.ensure_defaults()
    await sync.thing_created(
        press,
        key,
        [
            connection(press, "line-1", Permission.PUBLISH),
            connection(press, "line-2", Permission.SUBSCRIBE),
        ],
    )

    async with (
        connected(broker, BRIDGE_USERNAME, BRIDGE_PASSWORD) as bridge,
        connected(broker, press.id, key) as thing,
    ):
        await subscribe(bridge, "channels/#")
        await thing.client.publish(topic("line-2"), b"forbidden", qos=1)
        await thing.client.publish(topic("line-3"), b"unknown channel", qos=1)
        await thing.client.publish(topic("line-1"), b"marker", qos=1)
        await bridge.wait_for(lambda m: m.payload == b"marker")

    assert [m.payload for m in bridge.messages] == [b"marker"]


async def test_subscribe_needs_subscribe_permission(
    broker: RunningBroker, sync: DynsecSync
) -> None:
    press, press_key = make_thing("press"), make_key()
    panel, panel_key = make_thing("panel"), make_key()
    await sync.sync_all(
        snapshot(
            (press, press_key, [connection(press, "line-1"), connection(press, "line-2")]),
            (
                panel,
                panel_key,
                [
                    connection(panel, "line-1", Permission.PUBLISH),
                    connection(panel, "line-2", Permission.SUBSCRIBE),
                ],
            ),
        )
    )

    async with (
        connected(broker, panel.id, panel_key) as reader,
        connected(broker, press.id, press_key) as writer,
    ):
        assert await subscribe(reader, topic("line-1", "#")) == NOT_AUTHORIZED
        assert await subscribe(reader, "channels/#") == NOT_AUTHORIZED
        assert await subscribe(reader, topic("line-2", "#")) == GRANTED_QOS_1
        await writer.client.publish(topic("line-1", "t"), b"not for the panel", qos=1)
        await writer.client.publish(topic("line-2", "t"), b"for the panel", qos=1)
        received = await reader.wait_for(lambda m: m.payload == b"for the panel")

    assert [m.payload for m in reader.messages] == [b"for the panel"]
    assert stamped(received) == [(PUBLISHER_PROPERTY, press.id)]


async def test_connect_and_disconnect_apply_to_live_sessions(
    broker: RunningBroker, sync: DynsecSync
) -> None:
    press, press_key = make_thing("press"), make_key()
    panel, panel_key = make_thing("panel"), make_key()
    await sync.thing_created(press, press_key, [connection(press, "line-0", Permission.PUBLISH)])
    await sync.thing_created(panel, panel_key, [connection(panel, "line-0")])

    async with (
        connected(broker, panel.id, panel_key) as reader,
        connected(broker, press.id, press_key) as writer,
    ):
        await subscribe(reader, topic("line-0", "#"))
        # Not connected to line-1 yet: the publish is dropped.
        await writer.client.publish(topic("line-1", "a"), b"before", qos=1)
        await writer.client.publish(topic("line-0", "m"), b"marker-1", qos=1)
        await reader.wait_for(lambda m: m.payload == b"marker-1")

        await sync.connected(connection(press, "line-1", Permission.PUBLISH))
        await sync.connected(connection(panel, "line-1", Permission.SUBSCRIBE))
        assert await subscribe(reader, topic("line-1", "#")) == GRANTED_QOS_1
        await writer.client.publish(topic("line-1", "a"), b"after", qos=1)
        await reader.wait_for(lambda m: m.payload == b"after")

        # Revoking keeps the panel connected, and its existing subscription goes quiet.
        await sync.disconnected(panel.id, "line-1")
        await writer.client.publish(topic("line-1", "a"), b"revoked", qos=1)
        await writer.client.publish(topic("line-0", "m"), b"marker-2", qos=1)
        await reader.wait_for(lambda m: m.payload == b"marker-2")
        assert not reader.closed.is_set()

    assert [m.payload for m in reader.messages] == [b"marker-1", b"after", b"marker-2"]


async def test_a_will_is_never_delivered(broker: RunningBroker, sync: DynsecSync) -> None:
    press, key = make_thing(), make_key()
    await sync.ensure_defaults()
    await sync.thing_created(press, key, [connection(press, "line-1")])

    async with (
        connected(broker, BRIDGE_USERNAME, BRIDGE_PASSWORD) as bridge,
        connected(broker, press.id, key) as thing,
    ):
        await subscribe(bridge, "channels/#")
        await asyncio.to_thread(_connect_with_forged_will_then_drop, broker, press.id, key)
        # The broker logs the refusal when it handles the lost connection.
        async with asyncio.timeout(5):
            while "not delivering the will" not in broker.log():  # noqa: ASYNC110 - a file
                await asyncio.sleep(0.02)
        await thing.client.publish(topic("line-1"), b"marker", qos=1)
        await bridge.wait_for(lambda m: m.payload == b"marker")

    assert [m.payload for m in bridge.messages] == [b"marker"]


def _connect_with_forged_will_then_drop(broker: RunningBroker, username: str, key: str) -> None:
    """Connect with a will that names another publisher, then drop the TCP connection."""
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id="will-maker", protocol=paho.MQTTv5)
    client.username_pw_set(username, key)
    will_properties = Properties(PacketTypes.WILLMESSAGE)  # type: ignore[no-untyped-call]
    will_properties.UserProperty = [(PUBLISHER_PROPERTY, "someone-else")]
    client.will_set(topic("line-1", "status"), b"offline", qos=1, properties=will_properties)
    ready = threading.Event()
    client.on_connect = lambda *args: ready.set()
    client.connect(broker.host, broker.port)
    while not ready.is_set():
        client.loop(timeout=0.1)
    sock = client.socket()
    assert sock is not None
    sock.close()
