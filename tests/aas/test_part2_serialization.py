"""`/serialization` of the Part 2 API: an environment of chosen shells and submodels, as
JSON or XML, read back by basyx."""

from __future__ import annotations

import io
import json

import pytest
from basyx.aas import model
from basyx.aas.adapter.json import StrictAASFromJsonDecoder
from basyx.aas.adapter.xml import read_aas_xml_file

from shopfloor.aas import AasStore
from shopfloor.aas.part2 import encode_id
from tests.api.conftest import Api

from ._part2 import BASE, IDENTIFICATION, SHELL, Example, assert_part2_error, load_example


@pytest.fixture
async def example(api: Api, store: AasStore) -> Example:
    return await load_example(api, store)


async def test_everything_by_default_and_what_is_chosen(example: Example) -> None:
    everything = (await example.get("/serialization")).json()
    assert [s["id"] for s in everything["assetAdministrationShells"]] == [SHELL]
    assert len(everything["submodels"]) == 3 and len(everything["conceptDescriptions"]) == 1
    # basyx reads it back, strictly.
    for key in ("assetAdministrationShells", "submodels", "conceptDescriptions"):
        for item in everything[key]:
            assert isinstance(json.loads(json.dumps(item), cls=StrictAASFromJsonDecoder),
                              model.Identifiable)  # fmt: skip
    chosen = await example.get(
        "/serialization", submodelIds=encode_id(IDENTIFICATION), includeConceptDescriptions=False
    )
    body = chosen.json()
    assert [s["id"] for s in body["submodels"]] == [IDENTIFICATION]
    assert "conceptDescriptions" not in body
    missing = await example.get("/serialization", aasIds=encode_id("urn:none"))
    assert_part2_error(missing, 404, "aas_not_found")


async def test_xml_when_asked_and_nothing_else(example: Example) -> None:
    chosen = {"aasIds": encode_id(SHELL), "submodelIds": encode_id(IDENTIFICATION)}
    response = await example.http.get(
        f"{BASE}/serialization", params=chosen,
        headers={**example.viewer, "Accept": "application/xml"},
    )  # fmt: skip
    assert response.status_code == 200 and response.headers["content-type"] == "application/xml"
    objects = read_aas_xml_file(io.BytesIO(response.content), failsafe=False)
    assert sorted(obj.id for obj in objects) == sorted([
        SHELL, IDENTIFICATION, "https://example.org/Test_ConceptDescription"
    ])  # fmt: skip
    aasx = await example.http.get(
        f"{BASE}/serialization",
        headers={**example.viewer, "Accept": "application/asset-administration-shell-package"},
    )
    assert_part2_error(aasx, 400, "aas_unsupported_format")
