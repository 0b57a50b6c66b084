"""Things publishing over MQTT: through the ingress onto the bus, or reported back to them."""

from __future__ import annotations

import asyncio

import cbor2
import pytest

from shopfloor.messaging import Envelope

from .conftest import (
    Plant,
    bus_tap,
    next_json,
    next_message,
    return_codes,
    wait_until,
)
from .mqtt_wire import DISCONNECT, publish_packet, raw_connect

SENML = b'[{"n": "temp", "u": "Cel", "v": 21.5}]'


@pytest.mark.parametrize("qos", [0, 1])
async def test_publish_reaches_the_bus_as_the_authenticated_thing(plant: Plant, qos: int) -> None:
    async with bus_tap(plant.bus) as tap, plant.client("press") as press:
        await press.publish(plant.topic("line/3"), SENML, qos=qos)
        envelope = await asyncio.wait_for(tap.get(), 10)
    assert envelope.channel == plant.channel
    assert envelope.subtopic == "line/3"
    assert envelope.publisher == plant.things["press"][0]
    assert envelope.protocol == "mqtt"
    assert envelope.payload == SENML
    assert envelope.content_type == "application/senml+json"
    accepted = plant.metrics.get_sample_value(
        "shopfloor_messages_accepted_total", {"protocol": "mqtt"}
    )
    assert accepted == 1


@pytest.mark.parametrize(
    ("payload", "content_type"),
    [
        (b'  \n[{"n": "t", "v": 1}]', "application/senml+json"),
        (b'{"temp": 21.5, "running": true}', "application/json"),
        (b"21.5", "application/json"),
        (cbor2.dumps([{0: "t", 2: 1.5}]), "application/senml+cbor"),
    ],
    ids=["senml-json", "json-object", "json-number", "senml-cbor"],
)
async def test_content_type_is_read_from_the_payload(
    plant: Plant, payload: bytes, content_type: str
) -> None:
    async with bus_tap(plant.bus) as tap, plant.client("press") as press:
        await press.publish(plant.topic(), payload, qos=1)
        envelope = await asyncio.wait_for(tap.get(), 10)
    assert envelope.content_type == content_type
    assert envelope.payload == payload


async def test_not_connected_channel_is_reported_to_the_publisher_only(plant: Plant) -> None:
    async with (
        bus_tap(plant.bus) as tap,
        plant.client("stranger") as stranger,
        plant.client("robot") as robot,
    ):
        await robot.subscribe(plant.topic("#"), qos=1)
        await robot.subscribe(plant.errors(), qos=1)
        granted = await stranger.subscribe(plant.errors(), qos=1)
        assert return_codes(granted) == [1]  # its own reports, no permission needed
        await stranger.publish(plant.topic("line"), SENML, qos=1)  # acknowledged all the same

        report = await next_json(stranger)
        assert report == {
            "code": "publish_not_allowed",
            "message": "the thing may not publish on this channel",
            "topic": plant.topic("line"),
        }
        # The robot gets the next bus message, not the stranger's report.
        marker = Envelope(
            channel=plant.channel,
            subtopic="",
            publisher="x",
            protocol="http",
            payload=b"{}",
            content_type="application/json",
        )
        await plant.bus.publish(marker)
        assert (await next_message(robot)).payload == b"{}"
        assert (await asyncio.wait_for(tap.get(), 10)).id == marker.id  # nothing before it
    assert plant.rejected("publish_not_allowed") == 1


async def test_malformed_senml_is_reported_and_the_next_message_flows(plant: Plant) -> None:
    async with bus_tap(plant.bus) as tap, plant.client("robot") as robot:
        await robot.subscribe(plant.errors())
        await robot.publish(plant.topic("a"), b"[{not json", qos=1)
        await robot.publish(plant.topic("a"), b'[{"n": "t"}]', qos=0)
        await robot.publish(plant.topic("a"), SENML, qos=1)

        first, second = await next_json(robot), await next_json(robot)
        assert (first["code"], first["topic"]) == ("invalid_json", plant.topic("a"))
        assert second["code"] == "invalid_senml"
        envelope = await asyncio.wait_for(tap.get(), 10)
        assert envelope.payload == SENML
    assert plant.rejected("invalid_json") == plant.rejected("invalid_senml") == 1


@pytest.mark.parametrize(
    ("subtopic", "code"),
    [("_errors", "invalid_subtopic"), ("a.b", "invalid_subtopic"), ("a//b", "invalid_subtopic")],
)
async def test_bad_subtopics_are_reported(plant: Plant, subtopic: str, code: str) -> None:
    async with plant.client("robot") as robot:
        await robot.subscribe(plant.errors())
        await robot.publish(plant.topic(subtopic), SENML, qos=1)
        report = await next_json(robot)
    assert report["code"] == code
    assert plant.rejected(code) == 1


async def test_topics_outside_the_scheme_are_counted_and_dropped(plant: Plant) -> None:
    async with bus_tap(plant.bus) as tap, plant.client("robot") as robot:
        await robot.publish("sensors/temp", SENML, qos=1)
        await robot.publish(f"channels/{plant.channel}/other", SENML, qos=1)
        await robot.publish(plant.topic(), SENML, qos=1)  # the client is still served
        assert (await asyncio.wait_for(tap.get(), 10)).subtopic == ""
    assert plant.rejected("invalid_topic") == 2


async def test_will_goes_through_the_ingress_when_the_client_drops(plant: Plant) -> None:
    async with bus_tap(plant.bus) as tap:
        _reader, writer, _code = await raw_connect(
            plant.broker.port,
            "press-1",
            *plant.things["press"],
            will=(plant.topic("status"), b'{"online": false}'),
        )
        writer.transport.abort()  # no DISCONNECT: the will must be published
        envelope = await asyncio.wait_for(tap.get(), 10)
    assert envelope.subtopic == "status"
    assert envelope.payload == b'{"online": false}'
    assert envelope.publisher == plant.things["press"][0]
    assert envelope.protocol == "mqtt"


async def test_no_will_after_a_clean_disconnect(plant: Plant) -> None:
    async with bus_tap(plant.bus) as tap:
        _reader, writer, _code = await raw_connect(
            plant.broker.port,
            "press-1",
            *plant.things["press"],
            will=(plant.topic("status"), b'{"online": false}'),
        )
        writer.write(DISCONNECT)
        await writer.drain()
        writer.close()
        await wait_until(lambda: plant.metrics.get_sample_value("shopfloor_mqtt_connections") == 0)
        async with plant.client("press") as press:
            await press.publish(plant.topic("marker"), SENML, qos=1)
        assert (await asyncio.wait_for(tap.get(), 10)).subtopic == "marker"


async def test_revoked_key_disconnects_the_publisher(plant: Plant) -> None:
    async with bus_tap(plant.bus) as tap:
        reader, writer, _code = await raw_connect(plant.broker.port, "r1", *plant.things["robot"])
        try:
            writer.write(publish_packet(plant.topic(), SENML))
            assert (await asyncio.wait_for(tap.get(), 10)).payload == SENML
            await plant.registry.rotate_thing_key(plant.org, plant.things["robot"][0])
            writer.write(publish_packet(plant.topic(), b'{"after": 1}'))
            assert await asyncio.wait_for(reader.read(), 10) == b""  # the broker hung up
        finally:
            writer.close()
        assert tap.empty()
    assert plant.rejected("invalid_credentials") == 1


async def test_qos_2_publish_is_taken_and_its_handshake_completed(plant: Plant) -> None:
    async with bus_tap(plant.bus) as tap, plant.client("robot") as robot:
        await robot.subscribe(plant.topic("#"), qos=2)
        await robot.publish(plant.topic(), SENML, qos=2)  # returns on PUBCOMP
        envelope = await asyncio.wait_for(tap.get(), 10)
        delivered = await next_message(robot)  # from the bus, not from amqtt's routing
        assert envelope.payload == delivered.payload == SENML
        assert delivered.qos == 1
        await robot.publish(plant.topic("marker"), SENML, qos=1)
        assert (await asyncio.wait_for(tap.get(), 10)).subtopic == "marker"  # taken once
        assert (await next_message(robot)).topic.value == plant.topic("marker")


@pytest.mark.parametrize("wildcard", ["+", "#", "line/+/press"])
async def test_a_wildcard_publish_disconnects_and_its_payload_is_never_read_as_packets(
    plant: Plant, wildcard: str
) -> None:
    smuggled = publish_packet(plant.topic("smuggled"), SENML, qos=1, packet_id=7)
    async with bus_tap(plant.bus) as tap:
        reader, writer, code = await raw_connect(
            plant.broker.port, "press-1", *plant.things["press"]
        )
        assert code == 0
        try:
            writer.write(publish_packet(plant.topic(wildcard), smuggled, qos=1, packet_id=9))
            await writer.drain()
            # MQTT 3.1.1 section 3.3.2: a protocol violation; the broker closes at once,
            # without a PUBACK for either packet id.
            assert await asyncio.wait_for(reader.read(), 10) == b""
        finally:
            writer.close()
        async with plant.client("press") as press:
            await press.publish(plant.topic("marker"), SENML, qos=1)
        assert (await asyncio.wait_for(tap.get(), 10)).subtopic == "marker"
    assert plant.rejected("protocol_violation") == 1


async def test_a_malformed_remaining_length_disconnects(plant: Plant) -> None:
    reader, writer, _code = await raw_connect(plant.broker.port, "press-1", *plant.things["press"])
    try:
        writer.write(b"\x30\xff\xff\xff\xff\x7f" + publish_packet(plant.topic("x"), SENML))
        await writer.drain()
        assert await asyncio.wait_for(reader.read(), 10) == b""
    finally:
        writer.close()


async def test_reports_reach_every_session_of_the_publishing_thing_and_no_other(
    plant: Plant,
) -> None:
    async with (
        plant.client("robot", identifier="robot-a") as publisher,
        plant.client("robot", identifier="robot-b") as watcher,
        plant.client("press", identifier="press-a") as other,
    ):
        for client in (publisher, watcher, other):
            await client.subscribe(plant.errors(), qos=1)
        await publisher.publish(plant.topic("a"), b"[{not json", qos=1)

        for client in (publisher, watcher):
            report = await next_json(client)
            assert (report["code"], report["topic"]) == ("invalid_json", plant.topic("a"))
        # The other thing's first report is its own: it never got the robot's.
        await other.publish(plant.topic("b"), b'[{"n": "t"}]', qos=1)
        assert (await next_json(other))["code"] == "invalid_senml"


@pytest.mark.parametrize(
    "payload", [b'[{"n": "x", "vs": "t", "t": 1e10}]', b'[{"bt": 1e300, "n": "x", "v": 1}]']
)
async def test_a_time_no_store_can_hold_is_reported_not_stored(
    plant: Plant, payload: bytes
) -> None:
    async with bus_tap(plant.bus) as tap, plant.client("robot") as robot:
        await robot.subscribe(plant.errors())
        await robot.publish(plant.topic("a"), payload, qos=1)
        assert (await next_json(robot))["code"] == "time_out_of_range"
        await robot.publish(plant.topic("marker"), SENML, qos=1)
        assert (await asyncio.wait_for(tap.get(), 10)).subtopic == "marker"
