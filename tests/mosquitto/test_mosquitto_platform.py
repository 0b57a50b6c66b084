"""Mosquitto mode end to end: the whole platform with SHOPFLOOR_MQTT_BROKER_URL set.

A real `mosquitto_pub` with a thing's id and key publishes to a real Mosquitto; the
platform's bridge takes the message, the writer stores it, the readers API returns it.
"""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Callable

from mosquitto_testkit import RunningBroker
from tests.pipeline.conftest import build_plant, running

from shopfloor.adapters.capability import MqttService
from shopfloor.settings import Settings


async def test_mosquitto_pub_ends_up_in_the_readers_api(
    make_settings: Callable[..., Settings], broker: RunningBroker
) -> None:
    settings = make_settings(
        mqtt_broker_url=broker.admin_url,
        mqtt_bridge_password="bridge-password-0123456789",
    )
    async with running(settings) as api:
        assert api.platform.get(MqttService).broker is None  # no embedded broker here
        plant = await build_plant(api)
        press = plant.things["press"]
        topic = f"channels/{plant.channel}/messages/line-a"

        def publish(key: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                ["mosquitto_pub", "-h", broker.host, "-p", str(broker.port), "-V", "mqttv5",
                 "-q", "1", "-u", press["id"], "-P", key, "-t", topic,
                 "-m", '[{"n": "spindle-rpm", "v": 1480}]'],
                capture_output=True, text=True, timeout=30,
            )  # fmt: skip

        # The thing was created and connected after the platform started: the live sync
        # adds its client, then its ACLs. Until both are in, Mosquitto refuses the
        # connection or drops the publish, so publish until one is stored.
        deadline = asyncio.get_running_loop().time() + 60
        while True:
            result = await asyncio.to_thread(publish, press["key"])
            stored = (await plant.read(subtopic="line-a")).json()
            for _ in range(20):
                if stored["total"]:
                    break
                await asyncio.sleep(0.1)
                stored = (await plant.read(subtopic="line-a")).json()
            if stored["total"]:
                break
            assert asyncio.get_running_loop().time() < deadline, (result.stderr, stored)
        message = stored["messages"][0]
        assert (message["name"], message["value"]) == ("spindle-rpm", 1480)
        assert (message["publisher"], message["protocol"]) == (press["id"], "mqtt")
        refused = await asyncio.to_thread(publish, "not-the-key")
        assert refused.returncode != 0
