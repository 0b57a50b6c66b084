"""When the other side is gone or silent, requests fail in time, saying which it is."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from shopfloor.aas import AasStore, AasUnavailable, Core, ExecutionState, Invocation, Manager
from shopfloor.aas.protocol import State
from shopfloor.aas.transports import create_transport
from tests.messaging.bus_testkit import eventually

from .brokers import Broker, free_port
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
