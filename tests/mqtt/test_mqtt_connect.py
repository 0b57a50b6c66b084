"""Connecting to the embedded broker: credentials, client ids, keep-alive, the port."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import aiomqtt
import pytest
from prometheus_client import CollectorRegistry

from shopfloor.adapters.mqtt import BrokerLimits, EmbeddedBroker, MqttPortInUse
from shopfloor.messaging import Envelope

from .conftest import Plant, mqtt_client, next_message, return_codes, running_plant, wait_until
from .mqtt_wire import CONNACK_ACCEPTED, puback_packet, publish_packet, raw_connect

NOT_AUTHORISED = 5
IDENTIFIER_REJECTED = 2


async def test_thing_connects_with_its_id_and_key(plant: Plant) -> None:
    async with plant.client("robot") as robot:
        granted = await robot.subscribe(plant.topic("#"))
        assert return_codes(granted) == [0]
        gauge = plant.metrics.get_sample_value("shopfloor_mqtt_connections")
        assert gauge == 1
    assert plant.broker.ready


@pytest.mark.parametrize(
    ("username", "password"),
    [
        ("robot", "wrong-key"),
        ("robot", ""),
        ("", ""),
        ("someone-else", "robot"),  # the robot's key under another thing id
    ],
    ids=["wrong-key", "no-key", "anonymous", "key-of-another-thing"],
)
async def test_bad_credentials_are_not_authorised(
    plant: Plant, username: str, password: str
) -> None:
    thing_id, key = plant.things["robot"]
    username = thing_id if username == "robot" else username
    password = key if password == "robot" else password
    _reader, writer, code = await raw_connect(plant.broker.port, "c1", username, password)
    try:
        assert code == NOT_AUTHORISED
    finally:
        writer.close()
    refused = plant.metrics.get_sample_value(
        "shopfloor_mqtt_connections_refused_total", {"reason": "not_authorised"}
    )
    assert refused == 1


@pytest.mark.parametrize(
    "protocol", [aiomqtt.ProtocolVersion.V5, aiomqtt.ProtocolVersion.V31], ids=["v5", "v3.1"]
)
async def test_other_protocol_versions_are_told_at_once(
    plant: Plant, protocol: aiomqtt.ProtocolVersion
) -> None:
    thing_id, key = plant.things["robot"]
    client = aiomqtt.Client(
        "127.0.0.1", plant.broker.port, username=thing_id, password=key, protocol=protocol
    )
    started = asyncio.get_running_loop().time()
    with pytest.raises(aiomqtt.MqttError) as raised:
        async with client:
            pass
    assert asyncio.get_running_loop().time() - started < 2  # not the 10 s connect timeout
    assert "protocol version" in str(raised.value).lower(), raised.value
    refused = plant.metrics.get_sample_value(
        "shopfloor_mqtt_connections_refused_total", {"reason": "protocol_version"}
    )
    assert refused == 1
    async with mqtt_client(plant.broker.port, username=thing_id, password=key):
        pass  # a 3.1.1 client of the same thing is still welcome


async def test_anonymous_client_library_is_refused(plant: Plant) -> None:
    with pytest.raises(aiomqtt.MqttCodeError) as raised:
        async with mqtt_client(plant.broker.port):
            pass
    assert str(raised.value.rc) == "Not authorized"


async def test_a_wrong_key_cannot_take_over_a_connected_client_id(plant: Plant) -> None:
    async with plant.client("robot", identifier="line-1") as robot:
        await robot.subscribe(plant.topic("#"))
        with pytest.raises(aiomqtt.MqttCodeError):
            async with plant.client("robot", identifier="line-1", key="wrong-key"):
                pass
        _reader, writer, code = await raw_connect(
            plant.broker.port, "line-1", *plant.things["press"]
        )
        writer.close()
        assert code == IDENTIFIER_REJECTED  # the client id belongs to another thing
        # The first connection never noticed.
        await plant.bus.publish(_envelope(plant, b'{"still": 1}'))
        message = await next_message(robot)
        assert message.payload == b'{"still": 1}'


async def test_the_same_thing_may_take_over_its_client_id(plant: Plant) -> None:
    async with plant.client("robot", identifier="line-1"):
        _reader, writer, code = await raw_connect(
            plant.broker.port, "line-1", *plant.things["robot"]
        )
        writer.close()
        assert code == CONNACK_ACCEPTED


@pytest.mark.parametrize("clean_session", [True, False])
async def test_a_take_over_disconnects_the_old_connection(
    plant: Plant, clean_session: bool
) -> None:
    # MQTT 3.1.1 section 3.1.4 [MQTT-3.1.4-2]: the server disconnects the existing client.
    old_reader, old_writer, code = await raw_connect(
        plant.broker.port, "line-1", *plant.things["robot"], clean_session=clean_session
    )
    assert code == CONNACK_ACCEPTED
    try:
        new_reader, new_writer, code = await raw_connect(
            plant.broker.port, "line-1", *plant.things["robot"], clean_session=clean_session
        )
        assert code == CONNACK_ACCEPTED
        try:
            assert await asyncio.wait_for(old_reader.read(), 10) == b""
            # the new connection is the one that works
            new_writer.write(publish_packet(plant.topic("x"), b'[{"n": "t", "v": 1}]', qos=1))
            await new_writer.drain()
            assert await asyncio.wait_for(new_reader.readexactly(4), 10) == puback_packet(1)
        finally:
            new_writer.close()
    finally:
        old_writer.close()


async def test_silent_client_is_disconnected_after_one_and_a_half_keep_alives(
    plant: Plant,
) -> None:
    reader, writer, code = await raw_connect(
        plant.broker.port, "quiet", *plant.things["robot"], keepalive=1
    )
    try:
        assert code == CONNACK_ACCEPTED
        started = asyncio.get_running_loop().time()
        assert await asyncio.wait_for(reader.read(), 10) == b""  # EOF: the broker hung up
        assert asyncio.get_running_loop().time() - started >= 1.0
    finally:
        writer.close()
    await wait_until(lambda: plant.metrics.get_sample_value("shopfloor_mqtt_connections") == 0)


async def test_client_that_never_sends_connect_is_dropped(tmp_path: Path) -> None:
    async with running_plant(tmp_path, limits=BrokerLimits(connect_timeout=0.2)) as plant:
        reader, writer = await asyncio.open_connection("127.0.0.1", plant.broker.port)
        try:
            assert await asyncio.wait_for(reader.read(), 10) == b""
        finally:
            writer.close()
        refused = plant.metrics.get_sample_value(
            "shopfloor_mqtt_connections_refused_total", {"reason": "no_connect"}
        )
        assert refused == 1


async def test_taken_port_fails_fast_naming_the_port(plant: Plant) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        broker = EmbeddedBroker(
            plant.ingress,
            plant.bus,
            plant.access,
            host="127.0.0.1",
            port=port,
            metrics_registry=CollectorRegistry(),
        )
        with pytest.raises(MqttPortInUse, match=f"port {port} "):
            async with broker:
                pass
        assert not broker.ready


async def test_port_zero_reports_the_port_bound(plant: Plant) -> None:
    assert plant.broker.port > 0
    with socket.create_connection(("127.0.0.1", plant.broker.port)):
        pass


def _envelope(plant: Plant, payload: bytes) -> Envelope:
    return Envelope(
        channel=plant.channel,
        subtopic="",
        publisher="someone",
        protocol="http",
        payload=payload,
        content_type="application/json",
    )
