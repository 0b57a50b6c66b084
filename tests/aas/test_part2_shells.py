"""The shell repository of the Part 2 API: listing with filters and cursors, one shell,
its asset information and submodel references; sign-in, roles, organisations and Part
2's error body."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from shopfloor.aas import AasStore
from shopfloor.aas.part2 import encode_id
from tests.api.conftest import Api

from ._part2 import BASE, SHELL, TEST_SUBMODEL, Example, assert_part2_error, load_example


@pytest.fixture
async def example(api: Api, store: AasStore) -> Example:
    return await load_example(api, store)


def _shell(n: int, *, asset: str | None = None, key: str | None = None) -> dict[str, Any]:
    info: dict[str, Any] = {"assetKind": "Instance", "globalAssetId": asset or f"urn:asset:{n}"}
    if key is not None:
        info["specificAssetIds"] = [{"name": "serial", "value": key}]
    return {
        "modelType": "AssetAdministrationShell", "id": f"urn:shell:{n}",
        "idShort": "Pump" if n % 2 else "Valve", "assetInformation": info,
    }  # fmt: skip


def _asset_id(name: str, value: str) -> str:
    return encode_id(json.dumps({"name": name, "value": value}))


async def test_shells_page_by_cursor_until_every_one_was_seen(example: Example) -> None:
    for n in range(5):
        posted = await example.http.post(f"{BASE}/shells", json=_shell(n), headers=example.engineer)
        assert posted.status_code == 201, posted.text
        assert posted.headers["location"] == f"shells/{encode_id(f'urn:shell:{n}')}"
    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = (await example.get("/shells", **params)).json()
        assert len(page["result"]) <= 2
        seen += [shell["id"] for shell in page["result"]]
        pages += 1
        cursor = page["paging_metadata"].get("cursor")
        if cursor is None:
            break
    assert pages == 3
    assert sorted(seen) == sorted([SHELL, *(f"urn:shell:{n}" for n in range(5))])
    assert len(set(seen)) == len(seen)


async def test_shells_filter_by_id_short_and_asset_ids(example: Example) -> None:
    for n, key in enumerate(["A-1", "B-2", "A-1"]):
        await example.http.post(f"{BASE}/shells", json=_shell(n, key=key), headers=example.engineer)
    valves = (await example.get("/shells", idShort="Valve")).json()["result"]
    assert sorted(s["id"] for s in valves) == ["urn:shell:0", "urn:shell:2"]
    by_global = await example.get("/shells", assetIds=_asset_id("globalAssetId", "urn:asset:1"))
    assert [s["id"] for s in by_global.json()["result"]] == ["urn:shell:1"]
    by_serial = await example.get("/shells", assetIds=_asset_id("serial", "A-1"))
    assert sorted(s["id"] for s in by_serial.json()["result"]) == ["urn:shell:0", "urn:shell:2"]
    # Filtered one at a time, the cursor still walks every match.
    first = (await example.get("/shells", assetIds=_asset_id("serial", "A-1"), limit=1)).json()
    assert [s["id"] for s in first["result"]] == ["urn:shell:0"]
    rest = await example.get(
        "/shells", assetIds=_asset_id("serial", "A-1"), limit=1,
        cursor=first["paging_metadata"]["cursor"],
    )  # fmt: skip
    assert [s["id"] for s in rest.json()["result"]] == ["urn:shell:2"]
    both = await example.get(
        "/shells", assetIds=[_asset_id("serial", "A-1"), _asset_id("globalAssetId", "urn:asset:2")]
    )
    assert [s["id"] for s in both.json()["result"]] == ["urn:shell:2"]
    refs = (await example.get("/shells/$reference", idShort="Pump")).json()["result"]
    assert refs == [
        {
            "type": "ModelReference",
            "keys": [{"type": "AssetAdministrationShell", "value": "urn:shell:1"}],
        }
    ]
    bad = await example.get("/shells", assetIds=encode_id("not json"))
    assert_part2_error(bad, 400, "invalid_asset_id")


async def test_one_shell_reads_replaces_and_deletes(example: Example) -> None:
    path = f"/shells/{encode_id(SHELL)}"
    shell = (await example.get(path)).json()
    assert shell["id"] == SHELL and shell["modelType"] == "AssetAdministrationShell"
    # The alias answers the same.
    alias = await example.http.get(f"/aas/api/v3{path}", headers=example.viewer)
    assert alias.json() == shell
    reference = (await example.get(f"{path}/$reference")).json()
    assert reference["keys"] == [{"type": "AssetAdministrationShell", "value": SHELL}]

    renamed = {**shell, "idShort": "Renamed"}
    put = await example.http.put(BASE + path, json=renamed, headers=example.engineer)
    assert put.status_code == 204, put.text
    assert (await example.get(path)).json()["idShort"] == "Renamed"
    other_id = {**shell, "id": "urn:other"}
    mismatch = await example.http.put(BASE + path, json=other_id, headers=example.engineer)
    assert_part2_error(mismatch, 400, "aas_id_mismatch")
    taken = await example.http.post(f"{BASE}/shells", json=shell, headers=example.engineer)
    assert_part2_error(taken, 409, "aas_exists")
    invalid = await example.http.post(
        f"{BASE}/shells", json={"modelType": "AssetAdministrationShell"}, headers=example.engineer
    )
    assert_part2_error(invalid, 400, "invalid_aas_body")

    deleted = await example.http.delete(BASE + path, headers=example.engineer)
    assert deleted.status_code == 204
    assert_part2_error(await example.get(path), 404, "aas_not_found")
    again = await example.http.delete(BASE + path, headers=example.engineer)
    assert_part2_error(again, 404, "aas_not_found")


async def test_asset_information_reads_and_is_replaced(example: Example) -> None:
    path = f"/shells/{encode_id(SHELL)}/asset-information"
    info = (await example.get(path)).json()
    assert info["globalAssetId"] == "http://example.org/TestAsset/"
    changed = {**info, "globalAssetId": "urn:asset:new", "assetKind": "Type"}
    put = await example.http.put(BASE + path, json=changed, headers=example.engineer)
    assert put.status_code == 204, put.text
    assert (await example.get(path)).json() == changed
    # The store's filter follows the new global asset id.
    found = await example.get("/shells", assetIds=_asset_id("globalAssetId", "urn:asset:new"))
    assert [s["id"] for s in found.json()["result"]] == [SHELL]
    wrong = await example.http.put(
        BASE + path, json={"assetKind": "Sometimes"}, headers=example.engineer
    )
    assert_part2_error(wrong, 400, "invalid_aas_body")


async def test_the_thumbnail_is_the_stored_file_the_asset_information_names(
    example: Example, store: AasStore
) -> None:
    path = f"/shells/{encode_id(SHELL)}/asset-information/thumbnail"
    assert_part2_error(await example.get(path), 404, "aas_file_not_found")
    png = base64.b64decode("iVBORw0KGgo=")
    await store.put_file(example.org_id, "file:///path/to/thumbnail.png", "image/png", png)
    got = await example.get(path)
    assert got.status_code == 200
    assert got.content == png and got.headers["content-type"] == "image/png"


async def test_submodel_references_page_add_and_remove(example: Example) -> None:
    path = f"/shells/{encode_id(SHELL)}/submodel-refs"
    first = (await example.get(path, limit=2)).json()
    assert len(first["result"]) == 2
    rest = (await example.get(path, limit=2, cursor=first["paging_metadata"]["cursor"])).json()
    assert "cursor" not in rest["paging_metadata"]
    ids = [ref["keys"][0]["value"] for ref in first["result"] + rest["result"]]
    assert len(ids) == 3 and TEST_SUBMODEL in ids

    ref = {"type": "ModelReference", "keys": [{"type": "Submodel", "value": "urn:sm:new"}]}
    added = await example.http.post(BASE + path, json=ref, headers=example.engineer)
    assert added.status_code == 201, added.text
    again = await example.http.post(BASE + path, json=ref, headers=example.engineer)
    assert_part2_error(again, 409, "aas_exists")
    all_ids = [r["keys"][0]["value"] for r in (await example.get(path)).json()["result"]]
    assert "urn:sm:new" in all_ids

    removed = await example.http.delete(
        f"{BASE}{path}/{encode_id('urn:sm:new')}", headers=example.engineer
    )
    assert removed.status_code == 204
    after = [r["keys"][0]["value"] for r in (await example.get(path)).json()["result"]]
    assert sorted(after) == sorted(ids)
    missing = await example.http.delete(
        f"{BASE}{path}/{encode_id('urn:sm:new')}", headers=example.engineer
    )
    assert_part2_error(missing, 404, "aas_reference_not_found")


async def test_without_sign_in_401_in_part2_shape(example: Example) -> None:
    response = await example.http.get(f"{BASE}/shells")
    assert_part2_error(response, 401, "missing_credentials")
    assert response.headers["www-authenticate"].startswith("Bearer")


async def test_a_viewer_reads_but_may_not_write(example: Example) -> None:
    assert (await example.get("/shells")).status_code == 200
    response = await example.http.post(f"{BASE}/shells", json=_shell(9), headers=example.viewer)
    assert_part2_error(response, 403, "insufficient_role")
    path = f"{BASE}/shells/{encode_id(SHELL)}"
    assert_part2_error(await example.http.delete(path, headers=example.viewer), 403)


async def test_another_organisation_sees_nothing_of_it(api: Api, example: Example) -> None:
    other = await api.org("Plant South")
    stranger = await api.member(other, "engineer")
    listing = await api.http.get(f"{BASE}/shells", headers=stranger)
    assert listing.json()["result"] == []
    path = f"{BASE}/shells/{encode_id(SHELL)}"
    assert_part2_error(await api.http.get(path, headers=stranger), 404, "aas_not_found")
    assert_part2_error(await api.http.delete(path, headers=stranger), 404)
    assert (await example.get(f"/shells/{encode_id(SHELL)}")).status_code == 200


async def test_bad_identifiers_cursors_and_limits_are_400(example: Example) -> None:
    assert_part2_error(await example.get("/shells/!!!"), 400, "invalid_aas_identifier")
    assert_part2_error(await example.get("/shells", cursor="%%%"), 400, "invalid_cursor")
    assert_part2_error(await example.get("/shells", limit=0), 400, "invalid_aas_request")


async def test_the_rest_of_the_api_keeps_its_own_error_shape(example: Example) -> None:
    response = await example.http.get("/api/v1/orgs/nope", headers=example.viewer)
    assert "error" in response.json() and "messages" not in response.json()


async def test_the_description_names_the_repository_profiles(example: Example) -> None:
    response = await example.http.get(f"{BASE}/description")
    profiles = response.json()["profiles"]
    assert (
        "https://admin-shell.io/aas/API/3/1/SubmodelRepositoryServiceSpecification/SSP-002"
        in profiles
    )
