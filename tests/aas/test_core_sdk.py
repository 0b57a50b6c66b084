"""The Core SDK: the thread-style SyncCore, where a Core finds its configuration, the
Manager's routes, and a SMIA v0.1 request answered in kind."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from basyx.aas import model
from basyx.aas.adapter import json as aas_json
from basyx.aas.adapter import xml as aas_xml

from shopfloor.aas import (
    AasStore,
    CoreConfig,
    ExecutionState,
    InvalidAasRequest,
    Invocation,
    Manager,
    SyncCore,
)
from shopfloor.aas.protocol import MessageKind, Side, State, message_key
from shopfloor.aas.transports import create_transport
from tests.messaging.bus_testkit import eventually

from .brokers import Broker
from .shells import AAS_ID, SUBMODEL_ID, encoded, plant, press

ORG = "org-sdk"


async def test_a_sync_core_runs_operations_in_threads_and_blocks_on_requests(
    store: AasStore, broker: Broker
) -> None:
    await store.put_environment(ORG, press())
    topic = broker.topic()
    core = SyncCore(topic=topic, transport=broker.url)
    threads: list[str] = []

    @core.operation("Controls.start")
    def start(arguments: dict[str, Any]) -> dict[str, Any]:
        threads.append(threading.current_thread().name)
        return {"rpm": arguments["speed"] * 100}

    transport = create_transport(broker.url)
    manager = Manager(store, transport, org_id=ORG, aas_id=AAS_ID, topic=topic)
    async with transport, manager:
        await asyncio.to_thread(core.start)
        try:
            await asyncio.to_thread(core.wait_running, within=20)
            speed = await asyncio.to_thread(core.get_value, SUBMODEL_ID, "Controls.speed")
            result = await manager.invoke(
                Invocation(
                    org_id=ORG,
                    aas_id=AAS_ID,
                    submodel_id=SUBMODEL_ID,
                    path="Controls.start",
                    input_arguments={"speed": 3},
                    timeout=20,
                )
            )
        finally:
            await asyncio.to_thread(core.stop)
        await eventually(lambda: manager.peer_state is State.IDLE)
    assert speed == 10
    assert result.execution_state is ExecutionState.COMPLETED
    assert result.output_arguments == {"rpm": 300}
    assert threads and threads[0] != threading.main_thread().name


def test_a_core_reads_its_configuration_from_a_file_and_the_environment(tmp_path: Path) -> None:
    file = tmp_path / "core.json"
    file.write_text(
        json.dumps(
            {
                "transport_url": "kafka://kafka:9092",
                "topic": "aas.x.0",
                "aas_id": "urn:x",
                "unknown": 1,
            }
        )
    )
    config = CoreConfig.from_env(
        {"SHOPFLOOR_CORE_CONFIG": str(file), "SHOPFLOOR_CORE_TOPIC": "aas.y.1"}
    )
    assert config == CoreConfig(transport_url="kafka://kafka:9092", topic="aas.y.1", aas_id="urn:x")
    assert CoreConfig.from_env(config.environment()) == config
    with pytest.raises(InvalidAasRequest, match="SHOPFLOOR_CORE_TOPIC"):
        CoreConfig.from_env(
            {"SHOPFLOOR_CORE_TRANSPORT_URL": "memory://", "SHOPFLOOR_CORE_AAS_ID": "a"}
        )


@pytest.mark.parametrize("suffix", [".xml", ".json"])
def test_a_core_reads_the_aas_definition_it_was_given(tmp_path: Path, suffix: str) -> None:
    store = model.DictIdentifiableStore(press())
    file = tmp_path / f"press{suffix}"
    writer = aas_json.write_aas_json_file if suffix == ".json" else aas_xml.write_aas_xml_file
    writer(file, store)
    config = CoreConfig(
        transport_url="memory://", topic="aas.x.0", aas_id=AAS_ID, aas_file=str(file)
    )
    assert sorted(obj.id for obj in config.read_aas()) == sorted([AAS_ID, SUBMODEL_ID])
    file.write_text("<environment" if suffix == ".xml" else "{")
    with pytest.raises(InvalidAasRequest, match="cannot read the AAS file"):
        config.read_aas()


async def test_the_managers_of_shells_are_added_listed_and_removed(
    make_settings: Callable[..., Any],
) -> None:
    async with plant(make_settings, "memory://routes", managed=False) as shop:
        http, headers = shop.api.http, shop.headers
        missing = await http.post(
            "/api/v1/aas/managers", json={"aas_id": "urn:none"}, headers=headers
        )
        added = await http.post("/api/v1/aas/managers", json={"aas_id": AAS_ID}, headers=headers)
        again = await http.post("/api/v1/aas/managers", json={"aas_id": AAS_ID}, headers=headers)
        body = added.json()
        env = body["core"]["environment"]
        one = await http.get(f"/api/v1/aas/managers/{encoded(AAS_ID)}", headers=headers)
        deleted = await http.delete(f"/api/v1/aas/managers/{encoded(AAS_ID)}", headers=headers)
        gone = await http.get(f"/api/v1/aas/managers/{encoded(AAS_ID)}", headers=headers)
        listed = await http.get("/api/v1/aas/managers", headers=headers)
    assert missing.status_code == 404
    assert added.status_code == 201 and again.status_code == 409
    assert again.json()["error"]["code"] == "aas_manager_exists"
    assert env == {
        "SHOPFLOOR_CORE_TRANSPORT_URL": "memory://routes",
        "SHOPFLOOR_CORE_TOPIC": body["topic"],
        "SHOPFLOOR_CORE_AAS_ID": AAS_ID,
    }
    assert one.json()["topic"] == body["topic"]
    assert deleted.status_code == 204
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "aas_manager_not_found"
    assert listed.json() == {"items": []}


async def test_a_smia_request_of_a_core_is_answered_in_the_smia_shape(
    store: AasStore, broker: Broker
) -> None:
    await store.put_environment(ORG, press())
    topic = broker.topic()
    request = {
        "interactionID": "core-1",
        "thread": "smia-thread",
        "serviceID": "GetSubmodelElementValue",
        "serviceType": "SubmodelService",
        "serviceData": {
            "serviceCategory": "service-request",
            "timestamp": 1700000000,
            "serviceParams": {"submodel_id": SUBMODEL_ID, "path": "Controls.speed"},
        },
    }
    async with create_transport(broker.url) as transport:
        await transport.ensure_topic(topic)
        await transport.publish(
            topic,
            1,
            "core-status",
            b'{"interactionID": "core-0", "serviceData": {"serviceStatus": "Running"}}',
        )
        await transport.publish(
            topic, 1, message_key(Side.CORE, MessageKind.REQUEST), json.dumps(request).encode()
        )
        async with Manager(store, transport, org_id=ORG, aas_id=AAS_ID, topic=topic):

            async def answered() -> list[dict[str, Any]]:
                return [
                    json.loads(r.value)
                    for r in await transport.snapshot(topic, 0)
                    if r.key == "manager-service-response"
                ]

            async def one_answer() -> bool:
                return len(await answered()) == 1

            await eventually(one_answer, within=20)
            [answer] = await answered()
    assert answer["interactionID"] == "core-1" and answer["thread"] == "smia-thread"
    assert answer["serviceData"]["serviceCategory"] == "service-response"
    assert answer["serviceData"]["serviceStatus"] == "Completed"
    assert answer["serviceData"]["serviceParams"] == {"value": 10}
