"""No acknowledged message is lost or doubled while the consumer side is slow, bounded.

Several paho clients publish 20,000 QoS 1 messages as fast as the broker takes them.
Meanwhile the bus is slow for a while (one publish at a time, with a delay) and refuses
now and then (Ingress answers 503, and the bridge retries), and the broker drops the
bridge's connection once (what was in flight is delivered again). Every message the
broker acknowledged to its publisher must reach the bus exactly once.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from mosquitto_testkit import RunningBroker
from paho.mqtt.enums import CallbackAPIVersion
from test_mosquitto_bridge_kit import Plant, eventually, in_process_platform, sample

from shopfloor.adapters.mosquitto import BRIDGE_USERNAME, DynsecClient
from shopfloor.adapters.mosquitto._dynsec import modify_client
from shopfloor.registry import Permission

CLIENTS = 4
PER_CLIENT = 5_000
SLOW_FOR = 3.0


@pytest.fixture
async def plant(tmp_path: Path, broker: RunningBroker) -> AsyncIterator[Plant]:
    async with in_process_platform(tmp_path, broker) as running:
        yield running


def payload(client: int, seq: int) -> bytes:
    return json.dumps([{"n": f"c{client}", "v": seq}], separators=(",", ":")).encode()


def publish_all(
    broker: RunningBroker, username: str, key: str, topic: str, client: int
) -> set[int]:
    """Publish PER_CLIENT messages at QoS 1; the sequence numbers the broker acknowledged."""
    mqtt = paho.Client(
        CallbackAPIVersion.VERSION2, client_id=f"load-{uuid.uuid4().hex[:8]}", protocol=paho.MQTTv5
    )
    mqtt.username_pw_set(username, key)
    mqtt.max_inflight_messages_set(200)
    mqtt.connect(broker.host, broker.port)
    mqtt.loop_start()
    try:
        sent = [
            (seq, mqtt.publish(topic, payload(client, seq), qos=1)) for seq in range(PER_CLIENT)
        ]
        deadline = time.monotonic() + 60
        for _, info in sent:
            # wait_for_publish: PUBACK received (QoS 1); raises if the message was refused.
            info.wait_for_publish(timeout=max(0.0, deadline - time.monotonic()))
        return {seq for seq, info in sent if info.is_published()}
    finally:
        mqtt.disconnect()
        mqtt.loop_stop()


async def test_every_acknowledged_message_reaches_the_bus_exactly_once(plant: Plant) -> None:
    press, key = await plant.thing("press", Permission.PUBLISH)
    plant.bus.slow(0.0005)
    plant.bus.refuse_every(97)

    async with plant.service() as (service, metrics):
        publishers = [
            asyncio.to_thread(publish_all, plant.broker, press.id, key, plant.topic("load"), n)
            for n in range(CLIENTS)
        ]
        publishing = asyncio.gather(*publishers)
        await asyncio.sleep(SLOW_FOR / 2)
        async with DynsecClient.from_url(plant.broker.admin_url, timeout=5.0) as admin:
            # Writing the bridge's client record makes the broker drop its connection.
            await admin.run([modify_client(BRIDGE_USERNAME, textname="Shopfloor bridge")])
        await asyncio.sleep(SLOW_FOR / 2)
        plant.bus.slow(0.0)
        plant.bus.refuse_every(0)
        acknowledged = await publishing
        expected = {payload(n, seq) for n, seqs in enumerate(acknowledged) for seq in seqs}
        await plant.bus.wait_until(lambda: len(plant.bus.taken) >= len(expected), within=45)
        await eventually(lambda: service.ready)

    taken = [e.payload for e in plant.bus.taken]
    assert len(expected) == CLIENTS * PER_CLIENT
    assert len(taken) == len(set(taken)), "a message reached the bus twice"
    assert set(taken) == expected
    assert plant.bus.refused > 0, "the bus never refused: the retry path was not exercised"
    assert sample(metrics, "shopfloor_mqtt_bridge_connects_total") == 2
