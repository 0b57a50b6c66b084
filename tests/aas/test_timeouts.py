"""When the other side is gone or silent, requests fail in time, saying which it is."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest

from shopfloor.aas import AasStore, AasUnavailable, Core, ExecutionState, Invocation, Manager
from shopfloor.aas.protocol import MessageKind, Request, Side, State, Status, encode, message_key
from shopfloor.aas.transports import create_transport
from tests.messaging.bus_testkit import eventually

from ..serving import free_port
from .brokers import Broker
from .shells import AAS_ID, SUBMODEL_ID, plant, press

ORG = "org-timeouts"


def _start(org_id: str, *, timeout: float) -> Invocation:
    return Invocation(
        org_id=org_id,
        aas_id=AAS_ID,
        submodel_id=SUBMODEL_ID,
        path="Controls.start",
        input_arguments={"speed": 1},
        timeout=timeout,
    )


async def test_a_core_that_does_not_answer_makes_the_invocation_time_out(
    store: AasStore, broker: Broker
) -> None:
    await store.put_environment(ORG, press())
    topic = broker.topic()
    core = Core(topic=topic, transport=broker.url, grace=0.05)

    @core.operation("Controls.start")
    async def never(arguments: dict[str, Any]) -> dict[str, Any]:
        await asyncio.Event().wait()
        return {}

    transport = create_transport(broker.url)
    manager = Manager(store, transport, org_id=ORG, aas_id=AAS_ID, topic=topic)
    async with transport, manager, core:
        await core.wait_running(within=20)
        result = await manager.invoke(_start(ORG, timeout=0.5))
    assert result.execution_state is ExecutionState.TIMEOUT and not result.success
    assert "did not answer Controls.start within 0.5 s" in result.messages[0]


async def test_a_core_asks_only_a_running_manager_and_says_when_there_is_none(
    broker: Broker,
) -> None:
    async with Core(topic=broker.topic(), transport=broker.url) as core:
        with pytest.raises(AasUnavailable, match="the manager is not connected") as caught:
            await core.get_value(SUBMODEL_ID, "Controls.speed", within=0.3)
    assert caught.value.code == "aas_peer_not_running"


async def test_managers_whose_broker_is_down_are_failed_and_say_why(
    make_settings: Callable[..., Any],
) -> None:
    async with plant(make_settings, f"kafka://127.0.0.1:{free_port()}") as shop:
        managers = shop.service.managers

        async def failed() -> bool:
            info = await managers.get(shop.org_id, AAS_ID)
            return info.error is not None

        await eventually(failed, within=20)
        result = await shop.service.invoker.invoke(_start(shop.org_id, timeout=0.2))
        info = await managers.get(shop.org_id, AAS_ID)
    assert result.execution_state is ExecutionState.FAILED
    assert "is not running: Kafka at 127.0.0.1" in result.messages[0]
    assert info.state is State.FAILED and "not reachable" in (info.error or "")


async def test_a_request_read_after_its_requester_gave_up_is_not_run(broker: Broker) -> None:
    topic = broker.topic()
    calls: list[int] = []
    async with create_transport(broker.url) as transport:
        await transport.ensure_topic(topic)
        for interaction_id, timestamp in ((2, 0.0), (4, time.time())):
            request = Request(
                interaction_id=interaction_id,
                service_id="Controls.start",
                service_type="AssetRelatedService",
                timestamp=timestamp,
                timeout=60,
                parameters={"input_arguments": {"speed": interaction_id}},
            )
            key = message_key(Side.MANAGER, MessageKind.REQUEST)
            await transport.publish(topic, Side.MANAGER.writes, key, encode(request))
        status = Status(state=State.RUNNING, session="gone", timestamp=time.time())
        key = message_key(Side.MANAGER, MessageKind.STATUS)
        await transport.publish(topic, Side.MANAGER.writes, key, encode(status))
        core = Core(topic=topic, transport=broker.url)

        @core.operation("Controls.start")
        async def start(arguments: dict[str, Any]) -> dict[str, Any]:
            calls.append(arguments["speed"])
            return {}

        async with core:
            await eventually(lambda: calls == [4], within=20)
        responses = [
            r
            for r in await transport.snapshot(topic, Side.CORE.writes)
            if r.key == message_key(Side.CORE, MessageKind.RESPONSE)
        ]
    # The late one (older than its 60 s) was read first, and skipped unanswered.
    assert calls == [4] and len(responses) == 1
