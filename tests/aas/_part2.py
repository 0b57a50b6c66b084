"""What the Part 2 tests share: basyx's full example stored in one organisation, and who
may read and write it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
from basyx.aas.examples.data import example_aas

from shopfloor.aas import AasStore
from shopfloor.aas.part2 import encode_id
from tests.api.conftest import Api

BASE = "/aas/api/v3.0"
SHELL = "https://example.org/Test_AssetAdministrationShell"
TEST_SUBMODEL = "https://example.org/Test_Submodel"
IDENTIFICATION = "http://example.org/Submodels/Assets/TestAsset/Identification"
BILL_OF_MATERIAL = "http://example.org/Submodels/Assets/TestAsset/BillOfMaterial"


@dataclass
class Example:
    api: Api
    org_id: str
    engineer: dict[str, str]
    viewer: dict[str, str]

    @property
    def http(self) -> httpx.AsyncClient:
        return self.api.http

    async def get(self, path: str, **params: Any) -> httpx.Response:
        return await self.http.get(BASE + path, params=params, headers=self.viewer)

    def submodel(self, submodel_id: str = TEST_SUBMODEL) -> str:
        return f"/submodels/{encode_id(submodel_id)}"

    def element(self, path: str, submodel_id: str = TEST_SUBMODEL) -> str:
        return f"{self.submodel(submodel_id)}/submodel-elements/{path}"


async def load_example(api: Api, store: AasStore, name: str = "Plant North") -> Example:
    org_id = await api.org(name)
    await store.put_environment(org_id, example_aas.create_full_example())
    return Example(
        api, org_id, await api.member(org_id, "engineer"), await api.member(org_id, "viewer")
    )


def assert_part2_error(response: httpx.Response, status: int, code: str | None = None) -> None:
    """A Part 2 error body: one message of type Error with a code, a text and a time."""
    assert response.status_code == status, response.text
    messages = response.json()["messages"]
    assert len(messages) == 1
    assert messages[0]["messageType"] == "Error"
    assert messages[0]["text"] and messages[0]["timestamp"]
    if code is not None:
        assert messages[0]["code"] == code, messages[0]
