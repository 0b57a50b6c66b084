"""The broker on a real platform (app, registry, bus, writer): HTTP and MQTT, one pipeline."""

from __future__ import annotations

from collections.abc import Callable

from shopfloor.adapters.capability import MqttService
from shopfloor.adapters.mqtt import EmbeddedBroker
from shopfloor.settings import Settings

from ..pipeline.conftest import build_plant, running
from .conftest import mqtt_client, next_message


async def test_http_and_mqtt_messages_reach_mqtt_subscribers_and_storage(
    make_settings: Callable[..., Settings],
) -> None:
    async with running(make_settings()) as api:
        plant = await build_plant(api)
        broker = api.platform.get(MqttService).broker  # the platform's own, on a free port
        assert isinstance(broker, EmbeddedBroker) and broker.ready
        press, reader = plant.things["press"], plant.things["reader"]
        topic = f"channels/{plant.channel}/messages"
        async with (
            mqtt_client(broker.port, username=reader["id"], password=reader["key"]) as subscriber,
            mqtt_client(broker.port, username=press["id"], password=press["key"]) as publisher,
        ):
            await subscriber.subscribe(f"{topic}/#", qos=1)

            response = await plant.publish("press", '[{"n": "temp", "v": 1}]', subtopic="web")
            assert response.status_code == 202
            from_http = await next_message(subscriber)
            assert from_http.topic.value == f"{topic}/web"

            await publisher.publish(f"{topic}/line", b'[{"n": "temp", "v": 2}]', qos=1)
            from_mqtt = await next_message(subscriber)
            assert from_mqtt.payload == b'[{"n": "temp", "v": 2}]'

            # Acknowledged means stored: the writer puts both into the time-series store.
            stored = await plant.wait_for(2)
        by_protocol = {row["protocol"]: row for row in stored["messages"]}
        assert set(by_protocol) == {"http", "mqtt"}
        assert by_protocol["mqtt"]["publisher"] == press["id"]
        assert by_protocol["mqtt"]["subtopic"] == "line"
        assert by_protocol["mqtt"]["value"] == 2
