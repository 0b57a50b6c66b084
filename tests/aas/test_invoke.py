"""An Operation invoked through the service's invoker reaches the shell's Core over every
transport and comes back with the Core's answer; the Core reads and writes the shell."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from shopfloor.aas import ExecutionState, Invocation, Kind
from shopfloor.aas.core import Core, ServiceFailed
from shopfloor.aas.protocol import State

from .brokers import Broker
from .shells import AAS_ID, SUBMODEL_ID, plant


def _start(org_id: str, speed: int, *, timeout: float = 10.0) -> Invocation:
    return Invocation(
        org_id=org_id,
        aas_id=AAS_ID,
        submodel_id=SUBMODEL_ID,
        path="Controls.start",
        input_arguments={"speed": speed},
        timeout=timeout,
    )


async def test_an_operation_runs_on_the_core_and_returns_its_result(
    make_settings: Callable[..., Any], broker: Broker
) -> None:
    async with plant(make_settings, broker.url) as shop:
        broker.topics.append(shop.topic)
        core = Core(topic=shop.topic, transport=broker.url)
        calls: list[dict[str, Any]] = []

        @core.operation("Controls.start")
        async def start(arguments: dict[str, Any]) -> dict[str, Any]:
            calls.append(arguments)
            return {"rpm": arguments["speed"] * 100}

        async with core:
            await core.wait_running(within=20)
            result = await shop.service.invoker.invoke(_start(shop.org_id, 7))
            # Without the shell's id the Manager is found by the submodel.
            anonymous = _start(shop.org_id, 2)
            found = await shop.service.invoker.invoke(
                Invocation(**{**_fields(anonymous), "aas_id": None})
            )
            listed = await shop.api.http.get("/api/v1/aas/managers", headers=shop.headers)
        assert result.execution_state is ExecutionState.COMPLETED and result.success
        assert result.output_arguments == {"rpm": 700}
        assert found.output_arguments == {"rpm": 200}
        assert calls == [{"speed": 7}, {"speed": 2}]
        [item] = listed.json()["items"]
        assert (item["state"], item["core_state"]) == ("running", "running")


def _fields(invocation: Invocation) -> dict[str, Any]:
    return {name: getattr(invocation, name) for name in Invocation.__slots__}


async def test_the_core_reads_and_writes_values_of_its_shell(
    make_settings: Callable[..., Any], broker: Broker
) -> None:
    async with plant(make_settings, broker.url) as shop:
        broker.topics.append(shop.topic)
        async with Core(topic=shop.topic, transport=broker.url) as core:
            await core.wait_running(within=20)
            assert await core.get_value(SUBMODEL_ID, "Controls.speed") == 10
            await core.set_value(SUBMODEL_ID, "Controls.speed", 42)
            await core.set_value(SUBMODEL_ID, "Controls.limits", {"min": 0.5, "max": 2})
            await core.set_value(SUBMODEL_ID, "Controls.label", [{"en": "Big press"}])
            label = await core.get_value(SUBMODEL_ID, "Controls.label")
            limits = await core.get_value(SUBMODEL_ID, "Controls.limits")
            with pytest.raises(ServiceFailed, match="xs:int"):
                await core.set_value(SUBMODEL_ID, "Controls.speed", "fast")
            # Every element with a value-only form, as the HTTP API's `$value` has it.
            manual = await core.get_value(SUBMODEL_ID, "Controls.manual")
            await core.set_value(SUBMODEL_ID, "Controls.manual", {"value": "/docs/press.pdf"})
            controls = await core.get_value(SUBMODEL_ID, "Controls")
            with pytest.raises(ServiceFailed, match="has no value-only serialisation"):
                await core.get_value(SUBMODEL_ID, "Controls.start")
            with pytest.raises(ServiceFailed, match="no element"):
                await core.get_value(SUBMODEL_ID, "Controls.missing")
            with pytest.raises(ServiceFailed, match="has no submodel"):
                await core.get_value("https://example.org/sm/other", "x")
        stored = await shop.service.store.get(shop.org_id, Kind.SUBMODEL, SUBMODEL_ID)
        speed = stored.obj.get_referable("Controls.speed")  # type: ignore[attr-defined]
        assert speed.value == 42
        assert label == [{"en": "Big press"}]
        assert limits == {"min": 0.5, "max": 2.0}
        assert manual == {"contentType": "application/pdf"}
        assert controls == {
            "speed": 42,
            "limits": {"min": 0.5, "max": 2.0},
            "label": [{"en": "Big press"}],
            "manual": {"contentType": "application/pdf", "value": "/docs/press.pdf"},
        }


async def test_an_operation_without_a_running_core_times_out_saying_so(
    make_settings: Callable[..., Any],
) -> None:
    async with plant(make_settings, "memory://no-core") as shop:
        result = await shop.service.invoker.invoke(_start(shop.org_id, 1, timeout=0.3))
        info = await shop.service.managers.get(shop.org_id, AAS_ID)
    assert result.execution_state is ExecutionState.FAILED and not result.success
    assert "the core is not connected" in result.messages[0]
    assert info.state is State.BOOTED and info.core_state is None


async def test_an_operation_of_a_shell_without_a_manager_fails_saying_so(
    make_settings: Callable[..., Any],
) -> None:
    async with plant(make_settings, "memory://unmanaged", managed=False) as shop:
        result = await shop.service.invoker.invoke(_start(shop.org_id, 1))
    assert result.execution_state is ExecutionState.FAILED
    assert "no AAS Manager runs" in result.messages[0]
