"""MQTT subscribers: authorised filters, and every bus message whichever protocol brought it."""

from __future__ import annotations

import asyncio

import pytest

from shopfloor.messaging import Envelope

from .conftest import Plant, next_message, return_codes, wait_until

FAILURE = 0x80


def _envelope(plant: Plant, subtopic: str, payload: bytes, protocol: str = "http") -> Envelope:
    return Envelope(
        channel=plant.channel,
        subtopic=subtopic,
        publisher="an-http-thing",
        protocol=protocol,
        payload=payload,
        content_type="application/senml+json",
    )


@pytest.mark.parametrize(
    ("thing", "topic_filter", "granted"),
    [
        ("reader", "channels/{ch}/messages", 1),
        ("robot", "channels/{ch}/messages/#", 1),
        ("robot", "channels/{ch}/messages/+/temp", 1),
        ("press", "channels/{ch}/messages/_errors", 1),  # its own reports
        ("stranger", "channels/{ch}/messages/_errors", 1),
        ("press", "channels/{ch}/messages", FAILURE),  # publish permission only
        ("stranger", "channels/{ch}/messages/#", FAILURE),  # not connected
        ("robot", "channels/other-channel/messages", FAILURE),
        ("robot", "channels/+/messages", FAILURE),  # wildcards only in the subtopic
        ("robot", "channels/{ch}/#", FAILURE),
        ("robot", "#", FAILURE),
        ("robot", "$SYS/#", FAILURE),
        ("robot", "sensors/temp", FAILURE),
    ],
)
async def test_subscriptions_need_permission_and_the_scheme(
    plant: Plant, thing: str, topic_filter: str, granted: int
) -> None:
    async with plant.client(thing) as client:
        codes = await client.subscribe(topic_filter.format(ch=plant.channel), qos=1)
    assert return_codes(codes) == [granted]


async def test_qos_2_subscriptions_are_granted_qos_1(plant: Plant) -> None:
    async with plant.client("reader") as reader:
        codes = await reader.subscribe(plant.topic(), qos=2)
    assert return_codes(codes) == [1]


@pytest.mark.parametrize("qos", [0, 1])
async def test_subscriber_receives_what_an_http_publisher_put_on_the_bus(
    plant: Plant, qos: int
) -> None:
    async with plant.client("reader") as reader:
        await reader.subscribe(plant.topic("line/+/temp"), qos=qos)
        await plant.bus.publish(_envelope(plant, "line/3/pressure", b"[1]"))  # not matching
        await plant.bus.publish(_envelope(plant, "line/3/temp", b'[{"v": 1}]'))
        message = await next_message(reader)
    assert message.topic.value == plant.topic("line/3/temp")
    assert message.payload == b'[{"v": 1}]'
    assert message.qos == qos
    # counted once sent (QoS 0) or acknowledged (QoS 1)
    await wait_until(lambda: plant.metrics.get_sample_value("shopfloor_mqtt_delivered_total") == 1)


async def test_mqtt_publisher_reaches_mqtt_and_every_other_subscriber(plant: Plant) -> None:
    payload = b'[{"n": "temp", "v": 20}]'
    async with (
        plant.client("reader") as reader,
        plant.client("robot") as robot,
        plant.client("press") as press,
        plant.bus.subscribe(["channels.>"]) as other_protocols,
    ):
        await reader.subscribe(plant.topic("#"), qos=1)
        await robot.subscribe(plant.topic(), qos=0)
        await press.publish(plant.topic(), payload, qos=1)
        for subscriber in (reader, robot):
            assert (await next_message(subscriber)).payload == payload
        envelope = await asyncio.wait_for(anext(other_protocols), 10)  # as WebSocket sees it
    assert envelope.protocol == "mqtt"


async def test_overlapping_filters_deliver_once(plant: Plant) -> None:
    async with plant.client("robot") as robot:
        await robot.subscribe(plant.topic("#"), qos=0)
        await robot.subscribe(plant.topic("a"), qos=1)
        await plant.bus.publish(_envelope(plant, "a", b"[1]"))
        await plant.bus.publish(_envelope(plant, "b", b"[2]"))
        first, second = await next_message(robot), await next_message(robot)
    assert (first.payload, first.qos) == (b"[1]", 1)  # at the highest QoS granted
    assert second.payload == b"[2]"


async def test_many_qos_1_messages_arrive_in_order(plant: Plant) -> None:
    count = 300
    async with plant.client("reader") as reader, plant.client("press") as press:
        await reader.subscribe(plant.topic(), qos=1)
        async with asyncio.TaskGroup() as publishing:  # many in flight at once
            for index in range(count):
                payload = f'[{{"n": "t", "v": {index}}}]'.encode()
                publishing.create_task(press.publish(plant.topic(), payload, qos=1))
        received = [(await next_message(reader)).payload for _ in range(count)]
    assert received == [f'[{{"n": "t", "v": {index}}}]'.encode() for index in range(count)]


async def test_removed_connection_stops_deliveries(plant: Plant) -> None:
    reader_id = plant.things["reader"][0]
    async with plant.client("reader") as reader:
        await reader.subscribe(plant.topic(), qos=1)
        await plant.bus.publish(_envelope(plant, "", b"[1]"))
        assert (await next_message(reader)).payload == b"[1]"
        await plant.registry.disconnect(plant.org, plant.channel, reader_id)
        await plant.bus.publish(_envelope(plant, "", b"[2]"))

        def dropped() -> float | None:
            return plant.metrics.get_sample_value(
                "shopfloor_mqtt_dropped_total", {"reason": "not_allowed"}
            )

        await wait_until(lambda: dropped() == 1)
    assert plant.metrics.get_sample_value("shopfloor_mqtt_delivered_total") == 1
