"""Operations through the Part 2 API: `/invoke` and `/invoke-async` hand an Invocation
to the service's invoker (here a test double of the Managers that echoes its
arguments), and without a Manager the default answers Failed, saying why."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from shopfloor.aas import (
    AasStore,
    AasUnavailable,
    ExecutionState,
    Invocation,
    InvocationResult,
)
from shopfloor.aas.capability import AasService
from shopfloor.aas.part2 import encode_id
from tests.api.conftest import Api

from ..relations.conftest import served
from ._part2 import BASE, SHELL, TEST_SUBMODEL, Example, assert_part2_error, load_example

OPERATION = "ExampleOperation"


@dataclass
class Echo:
    """Answers every Operation Completed, its outputs the inputs (by idShort, Input ->
    Output) and its in-outputs as given; remembers what it was asked."""

    asked: list[Invocation] = field(default_factory=list)

    async def invoke(self, invocation: Invocation) -> InvocationResult:
        self.asked.append(invocation)
        return InvocationResult(
            execution_state=ExecutionState.COMPLETED,
            success=True,
            messages=("echoed",),
            output_arguments={
                name.replace("Input", "Output"): value
                for name, value in invocation.input_arguments.items()
            },
            inoutput_arguments=dict(invocation.inoutput_arguments),
        )


@pytest.fixture
async def example(api: Api, store: AasStore) -> Example:
    return await load_example(api, store)


@pytest.fixture
def echo(api: Api) -> Echo:
    invoker = Echo()
    api.platform.get(AasService).invoker = invoker
    return invoker


def _argument(id_short: str, value: str) -> dict[str, Any]:
    return {"value": {"modelType": "Property", "idShort": id_short, "valueType": "xs:string",
                      "value": value}}  # fmt: skip


def _url(example: Example, suffix: str) -> str:
    return f"{BASE}{example.element(OPERATION)}/{suffix}"


async def test_invoke_hands_the_arguments_over_and_answers_the_result(
    example: Example, echo: Echo
) -> None:
    body = {
        "inputArguments": [_argument("ExamplePropertyInput", "in")],
        "inoutputArguments": [_argument("ExamplePropertyInOutput", "both")],
        "clientTimeoutDuration": "PT1M30S",
    }
    response = await example.http.post(_url(example, "invoke"), json=body, headers=example.engineer)
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["executionState"] == "Completed" and result["success"] is True
    assert [m["text"] for m in result["messages"]] == ["echoed"]
    outputs = result["outputArguments"]
    assert len(outputs) == 1
    assert outputs[0]["value"]["idShort"] == "ExamplePropertyOutput"
    assert outputs[0]["value"]["value"] == "in"
    assert outputs[0]["value"]["modelType"] == "Property"
    assert result["inoutputArguments"][0]["value"]["value"] == "both"

    [asked] = echo.asked
    assert asked.org_id == example.org_id and asked.aas_id == SHELL
    assert asked.submodel_id == TEST_SUBMODEL and asked.path == OPERATION
    assert asked.input_arguments == {"ExamplePropertyInput": "in"}
    assert asked.inoutput_arguments == {"ExamplePropertyInOutput": "both"}
    assert asked.timeout == 90.0


async def test_invoke_value_only_takes_and_gives_values(example: Example, echo: Echo) -> None:
    body = {"inputArguments": {"ExamplePropertyInput": "v"}}
    response = await example.http.post(
        _url(example, "invoke/$value"), json=body, headers=example.engineer
    )
    assert response.status_code == 200, response.text
    assert response.json()["outputArguments"] == {"ExamplePropertyOutput": "v"}
    assert echo.asked[0].timeout == 30.0


async def test_invoke_async_answers_a_handle_whose_result_is_the_invocations(
    example: Example, echo: Echo
) -> None:
    body = {"inputArguments": [_argument("ExamplePropertyInput", "later")]}
    accepted = await example.http.post(
        _url(example, "invoke-async"), json=body, headers=example.engineer
    )
    assert accepted.status_code == 202, accepted.text
    status_url = accepted.headers["location"]
    assert "/operation-status/" in status_url and status_url.startswith(BASE)
    # httpx's ASGI transport returns once the app is done, background work included.
    status = await example.http.get(status_url, headers=example.viewer)
    assert status.status_code == 302
    assert status.json()["executionState"] == "Completed"
    result = await example.http.get(status.headers["location"], headers=example.viewer)
    assert result.status_code == 200
    assert result.json()["outputArguments"][0]["value"]["value"] == "later"
    assert len(echo.asked) == 1

    unknown = status_url.rsplit("/", 1)[0] + "/bm9wZQ"
    assert_part2_error(
        await example.http.get(unknown, headers=example.viewer), 404, "aas_handle_not_found"
    )


async def test_a_handle_is_the_organisations_own(api: Api, example: Example, echo: Echo) -> None:
    accepted = await example.http.post(
        _url(example, "invoke-async"), json={}, headers=example.engineer
    )
    other = await api.org("Plant South")
    stranger = await api.member(other, "viewer")
    response = await api.http.get(accepted.headers["location"], headers=stranger)
    assert_part2_error(response, 404)


async def test_without_a_manager_an_invocation_fails_and_says_why(example: Example) -> None:
    # The service's invoker is its Managers; no shell of the example has one.
    response = await example.http.post(_url(example, "invoke"), json={}, headers=example.engineer)
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["executionState"] == "Failed" and result["success"] is False
    assert "no AAS Manager runs" in result["messages"][0]["text"]
    assert result["messages"][0]["messageType"] == "Error"
    assert result["outputArguments"] == []


async def test_what_is_no_operation_or_no_request_is_refused(example: Example, echo: Echo) -> None:
    not_operation = f"{BASE}{example.element('ExampleCapability')}/invoke"
    response = await example.http.post(not_operation, json={}, headers=example.engineer)
    assert_part2_error(response, 400, "aas_not_an_operation")
    for body, code in [
        ({"clientTimeoutDuration": "soon"}, "invalid_aas_duration"),
        ({"inputArguments": [{"value": 3}]}, "invalid_aas_body"),
        ([], "invalid_aas_body"),
    ]:
        refused = await example.http.post(
            _url(example, "invoke"), json=body, headers=example.engineer
        )
        assert_part2_error(refused, 400, code)
    viewer = await example.http.post(_url(example, "invoke"), json={}, headers=example.viewer)
    assert_part2_error(viewer, 403, "insufficient_role")
    assert echo.asked == []


async def test_concurrent_invocations_each_get_their_own_answer(
    example: Example, echo: Echo
) -> None:
    async def one(n: int) -> Any:
        body = {"inputArguments": {"ExamplePropertyInput": str(n)}}
        response = await example.http.post(
            _url(example, "invoke/$value"), json=body, headers=example.engineer
        )
        return response.json()["outputArguments"]["ExamplePropertyOutput"]

    assert await asyncio.gather(*(one(n) for n in range(5))) == [str(n) for n in range(5)]


@dataclass
class Held:
    """Runs an Operation until told to finish; or fails as a transport that is down."""

    release: asyncio.Event = field(default_factory=asyncio.Event)
    started: asyncio.Event = field(default_factory=asyncio.Event)
    down: bool = False

    async def invoke(self, invocation: Invocation) -> InvocationResult:
        self.started.set()
        if self.down:
            raise AasUnavailable("the Core does not answer", retry_after=2)
        await self.release.wait()
        return InvocationResult(execution_state=ExecutionState.COMPLETED, success=True)


async def test_an_async_invocation_is_running_until_it_is_done(api: Api, example: Example) -> None:
    held = Held()
    api.platform.get(AasService).invoker = held
    # Over real HTTP: the 202 reaches the client while the Operation still runs.
    async with served(api) as url, httpx.AsyncClient(base_url=url) as http:
        accepted = await http.post(_url(example, "invoke-async"), json={}, headers=example.engineer)
        assert accepted.status_code == 202, accepted.text
        await asyncio.wait_for(held.started.wait(), 10)
        running = await http.get(accepted.headers["location"], headers=example.viewer)
        assert running.status_code == 200
        assert running.json()["executionState"] == "Running"
        early = await http.get(
            accepted.headers["location"].replace("operation-status", "operation-results"),
            headers=example.viewer,
        )
        assert early.json() == {"executionState": "Running", "success": False, "messages": []}
        held.release.set()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        while (
            done := await http.get(accepted.headers["location"], headers=example.viewer)
        ).status_code == 200:
            assert loop.time() < deadline, "the invocation did not finish"
            await asyncio.sleep(0.01)
        assert done.status_code == 302
        result = await http.get(done.headers["location"], headers=example.viewer)
        assert result.json()["executionState"] == "Completed"


async def test_a_core_that_does_not_answer(api: Api, example: Example) -> None:
    api.platform.get(AasService).invoker = Held(down=True)
    sync = await example.http.post(_url(example, "invoke"), json={}, headers=example.engineer)
    assert_part2_error(sync, 503, "aas_unavailable")
    assert sync.headers["retry-after"] == "2"
    accepted = await example.http.post(
        _url(example, "invoke-async"), json={}, headers=example.engineer
    )
    status = await example.http.get(accepted.headers["location"], headers=example.viewer)
    result = await example.http.get(status.headers["location"], headers=example.viewer)
    assert result.json()["executionState"] == "Failed"
    assert result.json()["messages"][0]["text"] == "the Core does not answer"


class Broken:
    async def invoke(self, invocation: Invocation) -> InvocationResult:
        raise RuntimeError("a bug")


async def test_a_bug_is_a_500_in_part2_shape_and_tells_nothing(api: Api, example: Example) -> None:
    api.platform.get(AasService).invoker = Broken()
    response = await example.http.post(_url(example, "invoke"), json={}, headers=example.engineer)
    assert_part2_error(response, 500, "internal_error")
    assert "a bug" not in response.text


async def test_invoked_under_a_shell_the_invocation_is_that_shells(
    example: Example, echo: Echo
) -> None:
    second = {
        "modelType": "AssetAdministrationShell", "id": "urn:shell:second",
        "assetInformation": {"assetKind": "Instance", "globalAssetId": "urn:asset:2"},
        "submodels": [{"type": "ModelReference",
                       "keys": [{"type": "Submodel", "value": TEST_SUBMODEL}]}],
    }  # fmt: skip
    posted = await example.http.post(f"{BASE}/shells", json=second, headers=example.engineer)
    assert posted.status_code == 201, posted.text
    under = f"{BASE}/shells/{encode_id('urn:shell:second')}{example.element(OPERATION)}/invoke"
    response = await example.http.post(under, json={}, headers=example.engineer)
    assert response.status_code == 200, response.text
    await example.http.post(_url(example, "invoke"), json={}, headers=example.engineer)
    assert [asked.aas_id for asked in echo.asked] == ["urn:shell:second", SHELL]
