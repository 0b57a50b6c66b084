"""Restarting the Manager or the Core mid-conversation neither loses a request nor
handles one twice, over every transport (the broker keeps running)."""

from __future__ import annotations

import asyncio
from typing import Any

from shopfloor.aas import AasStore, ExecutionState, Invocation, Kind, Manager
from shopfloor.aas.core import Core
from shopfloor.aas.protocol import MessageKind, Request, Response, Side, decode, encode, message_key
from shopfloor.aas.transports import Transport, create_transport
from tests.messaging.bus_testkit import eventually

from .brokers import Broker
from .shells import AAS_ID, SUBMODEL_ID, press

ORG = "org-restarts"


def _start(speed: int, *, timeout: float = 30.0) -> Invocation:
    return Invocation(
        org_id=ORG,
        aas_id=AAS_ID,
        submodel_id=SUBMODEL_ID,
        path="Controls.start",
        input_arguments={"speed": speed},
        timeout=timeout,
    )


async def _records(transport: Transport, topic: str, side: Side, kind: MessageKind) -> list[Any]:
    """The messages of `kind` that `side` wrote to the topic."""
    found = []
    for record in await transport.snapshot(topic, side.writes):
        if record.key == message_key(side, kind):
            found.append(decode(record.key, record.value).message)
    return found


async def _speed(store: AasStore) -> Any:
    stored = await store.get(ORG, Kind.SUBMODEL, SUBMODEL_ID)
    return stored.obj.get_referable("Controls.speed").value  # type: ignore[attr-defined]


async def test_a_core_restarted_before_it_answered_runs_the_request_once(
    store: AasStore, broker: Broker
) -> None:
    await store.put_environment(ORG, press())
    topic = broker.topic()
    async with create_transport(broker.url) as transport:
        manager = Manager(store, transport, org_id=ORG, aas_id=AAS_ID, topic=topic)
        async with manager:
            first = Core(topic=topic, transport=broker.url, grace=0.05)
            started = asyncio.Event()

            @first.operation("Controls.start")
            async def stuck(arguments: dict[str, Any]) -> dict[str, Any]:
                started.set()
                await asyncio.Event().wait()  # the asset never finishes: cancelled on stop
                return {}

            async with first:
                await first.wait_running(within=20)
                invocation = asyncio.create_task(manager.invoke(_start(7)))
                await asyncio.wait_for(started.wait(), 20)
            # The first Core stopped without answering; the invocation still waits.

            def restarted_core(calls: list[int]) -> Core:
                core = Core(topic=topic, transport=broker.url)

                @core.operation("Controls.start")
                async def start(arguments: dict[str, Any]) -> dict[str, Any]:
                    calls.append(arguments["speed"])
                    return {"rpm": arguments["speed"] * 100}

                return core

            second_calls: list[int] = []
            async with restarted_core(second_calls):
                result = await asyncio.wait_for(invocation, 30)
            third_calls: list[int] = []
            async with restarted_core(third_calls) as third:
                await third.wait_running(within=20)
                # Read after the old request: once it is answered, the old one was seen.
                marker = await manager.invoke(_start(8))
        responses = await _records(transport, topic, Side.CORE, MessageKind.RESPONSE)
    assert result.execution_state is ExecutionState.COMPLETED
    assert result.output_arguments == {"rpm": 700}
    assert marker.output_arguments == {"rpm": 800}
    assert (second_calls, third_calls) == ([7], [8])
    ids = [response.interaction_id for response in responses]
    assert len(ids) == 2 and len(set(ids)) == 2


async def test_a_manager_restarted_while_the_core_works_neither_repeats_nor_reuses(
    store: AasStore, broker: Broker
) -> None:
    await store.put_environment(ORG, press())
    topic = broker.topic()
    calls: list[int] = []
    finish = asyncio.Event()
    async with create_transport(broker.url) as transport:
        core = Core(topic=topic, transport=broker.url)

        @core.operation("Controls.start")
        async def start(arguments: dict[str, Any]) -> dict[str, Any]:
            calls.append(arguments["speed"])
            if arguments["speed"] == 1:
                await finish.wait()
            return {"rpm": arguments["speed"] * 100}

        async with core:
            async with Manager(store, transport, org_id=ORG, aas_id=AAS_ID, topic=topic) as first:
                await core.wait_running(within=20)
                pending = asyncio.create_task(first.invoke(_start(1)))
                await eventually(lambda: calls == [1], within=20)
            lost = await asyncio.wait_for(pending, 20)
            finish.set()  # the Core answers now, to a Manager that is gone
            async with Manager(store, transport, org_id=ORG, aas_id=AAS_ID, topic=topic) as second:
                await second.wait_running(within=20)
                result = await second.invoke(_start(2))
        requests = await _records(transport, topic, Side.MANAGER, MessageKind.REQUEST)
        responses = await _records(transport, topic, Side.CORE, MessageKind.RESPONSE)
    assert lost.execution_state is ExecutionState.FAILED and "stopping" in lost.messages[0]
    assert result.output_arguments == {"rpm": 200}
    assert calls == [1, 2]
    assert [r.interaction_id for r in requests] == [r.interaction_id for r in responses]
    assert requests[0].interaction_id < requests[1].interaction_id
    assert all(r.interaction_id % 2 == 0 for r in requests)


async def test_a_core_request_left_while_the_manager_was_down_is_answered_once(
    store: AasStore, broker: Broker
) -> None:
    await store.put_environment(ORG, press())
    topic = broker.topic()
    async with create_transport(broker.url) as transport:

        def manager() -> Manager:
            return Manager(store, transport, org_id=ORG, aas_id=AAS_ID, topic=topic)

        async with Core(topic=topic, transport=broker.url) as core:
            async with manager():
                await core.wait_running(within=20)
            # A hand-written Core may ask while the Manager is down: the log keeps it.
            left = Request(
                interaction_id=101,
                service_id="SetSubmodelElementValue",
                service_type="SubmodelService",
                timestamp=0,
                timeout=10**10,
                parameters={"submodel_id": SUBMODEL_ID, "path": "Controls.speed", "value": 5},
            )
            key = message_key(Side.CORE, MessageKind.REQUEST)
            await transport.publish(topic, Side.CORE.writes, key, encode(left))
            async with manager():

                async def speed_is_5() -> bool:
                    return await _speed(store) == 5

                await eventually(speed_is_5, within=20)

            def reset(submodel: Any) -> None:
                submodel.get_referable("Controls.speed").value = 10

            await store.update(ORG, Kind.SUBMODEL, SUBMODEL_ID, reset)
            async with manager():
                await core.wait_running(within=20)
                # Answered after the third Manager read past the old request.
                assert await core.get_value(SUBMODEL_ID, "Controls.speed") == 10
        responses = await _records(transport, topic, Side.MANAGER, MessageKind.RESPONSE)
    assert await _speed(store) == 10
    answers: list[Response] = [r for r in responses if r.interaction_id == 101]
    assert len(answers) == 1 and answers[0].status.value == "Completed"
