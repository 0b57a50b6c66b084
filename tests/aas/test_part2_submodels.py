"""The submodel repository and the submodel interface of the Part 2 API on basyx's full
example: listings, one submodel and its `$value`, `$metadata`, `$reference`, `$path`,
elements by idShortPath into collections and lists, writes, attachments, superpaths."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from shopfloor.aas import AasNotFound, AasStore, Kind
from shopfloor.aas.capability import AasService
from shopfloor.aas.part2 import encode_id
from tests.api.conftest import Api

from ._part2 import (
    BASE,
    BILL_OF_MATERIAL,
    IDENTIFICATION,
    SHELL,
    TEST_SUBMODEL,
    Example,
    assert_part2_error,
    load_example,
)

COLLECTION = "ExampleSubmodelCollection"
LIST = f"{COLLECTION}.ExampleSubmodelList"
REF = {"type": "ModelReference", "keys": [{"type": "Submodel", "value": "urn:sm:x"}]}
SECOND = {
    "type": "ModelReference", "keys": [
        {"type": "Submodel", "value": "http://example.org/Test_Submodel"},
        {"type": "Property", "value": "ExampleProperty2"},
    ],
}  # fmt: skip
OTHER_REF = {
    "type": "ExternalReference", "keys": [{"type": "GlobalReference", "value": "urn:thing"}]
}  # fmt: skip

#: (submodel, idShortPath) of an element of every type with a value in the example.
EVERY_TYPE = [
    (IDENTIFICATION, "ManufacturerName"),  # Property
    (TEST_SUBMODEL, f"{COLLECTION}.ExampleMultiLanguageProperty"),
    (TEST_SUBMODEL, f"{COLLECTION}.ExampleRange"),
    (TEST_SUBMODEL, f"{COLLECTION}.ExampleFile"),
    (TEST_SUBMODEL, f"{COLLECTION}.ExampleBlob"),
    (TEST_SUBMODEL, f"{COLLECTION}.ExampleReferenceElement"),
    (TEST_SUBMODEL, "ExampleRelationshipElement"),
    (TEST_SUBMODEL, "ExampleAnnotatedRelationshipElement"),
    (BILL_OF_MATERIAL, "ExampleEntity"),
    (TEST_SUBMODEL, COLLECTION),
    (TEST_SUBMODEL, LIST),
    (TEST_SUBMODEL, f"{LIST}[1]"),
    (TEST_SUBMODEL, "ExampleBasicEventElement"),
]

#: (submodel, idShortPath, a new value, the value then) for every type: what a PATCH of
#: $value sets. A value naming some of the elements a container holds changes those.
NEW_VALUES: list[tuple[str, str, Any, Any]] = [
    (IDENTIFICATION, "ManufacturerName", "ACME", "ACME"),
    (
        TEST_SUBMODEL, f"{COLLECTION}.ExampleMultiLanguageProperty",
        [{"en": "new"}, {"fr": "neuf"}], [{"en": "new"}, {"fr": "neuf"}],
    ),
    (TEST_SUBMODEL, f"{COLLECTION}.ExampleRange", {"min": -3, "max": 7}, {"min": -3, "max": 7}),
    (
        TEST_SUBMODEL, f"{COLLECTION}.ExampleFile", {"contentType": "text/plain", "value": "/a"},
        {"contentType": "text/plain", "value": "/a"},
    ),
    (
        TEST_SUBMODEL, f"{COLLECTION}.ExampleBlob", {"value": "aGk="},
        {"contentType": "application/pdf", "value": "aGk="},
    ),
    (TEST_SUBMODEL, f"{COLLECTION}.ExampleReferenceElement", OTHER_REF, OTHER_REF),
    (
        TEST_SUBMODEL, "ExampleRelationshipElement", {"first": REF, "second": OTHER_REF},
        {"first": REF, "second": OTHER_REF},
    ),
    (
        TEST_SUBMODEL, "ExampleAnnotatedRelationshipElement",
        {"first": OTHER_REF, "annotations": [{"ExampleAnnotatedProperty": "x"}]},
        {
            "first": OTHER_REF, "second": SECOND,
            # By idShort: basyx holds annotations as a set, the API writes them in order.
            "annotations": [{"ExampleAnnotatedProperty": "x"},
                            {"ExampleAnnotatedRange": {"min": 1, "max": 5}}],
        },
    ),
    (
        BILL_OF_MATERIAL, "ExampleEntity",
        {"statements": {"ExampleProperty": "changed"}, "globalAssetId": "urn:asset:9"},
        {
            "statements": {"ExampleProperty": "changed", "ExampleProperty2": "exampleValue2"},
            "entityType": "SelfManagedEntity", "globalAssetId": "urn:asset:9",
            "specificAssetIds": [{
                "name": "TestKey", "value": "TestValue",
                "externalSubjectId": {"type": "ExternalReference", "keys": [
                    {"type": "GlobalReference", "value": "http://example.org/SpecificAssetId/"}
                ]},
            }],
        },
    ),
    (TEST_SUBMODEL, LIST, ["first", "second"], ["first", "second"]),
    (TEST_SUBMODEL, f"{LIST}[0]", "zero", "zero"),
    (TEST_SUBMODEL, "ExampleBasicEventElement", {"observed": REF}, {"observed": REF}),
]  # fmt: skip


@pytest.fixture
async def example(api: Api, store: AasStore) -> Example:
    return await load_example(api, store)


async def _value(example: Example, submodel: str, path: str) -> Any:
    response = await example.get(
        f"{example.element(path, submodel)}/$value", extent="withBlobValue"
    )
    assert response.status_code == 200, response.text
    return response.json()


async def _patch(example: Example, url: str, body: Any) -> None:
    response = await example.http.patch(BASE + url, json=body, headers=example.engineer)
    assert response.status_code == 204, response.text


# -- the repository ------------------------------------------------------------------


async def test_submodels_page_by_cursor_and_filter(example: Example) -> None:
    first = (await example.get("/submodels", limit=2)).json()
    assert [sm["id"] for sm in first["result"]] == [BILL_OF_MATERIAL, IDENTIFICATION]
    rest = await example.get("/submodels", limit=2, cursor=first["paging_metadata"]["cursor"])
    assert [sm["id"] for sm in rest.json()["result"]] == [TEST_SUBMODEL]
    assert "cursor" not in rest.json()["paging_metadata"]

    by_id_short = (await example.get("/submodels", idShort="Identification")).json()["result"]
    assert [sm["id"] for sm in by_id_short] == [IDENTIFICATION]
    held = (await example.get(example.submodel())).json()
    semantic = held["semanticId"]["keys"][0]["value"]
    by_semantic = await example.get("/submodels", semanticId=encode_id(semantic))
    assert [sm["id"] for sm in by_semantic.json()["result"]] == [TEST_SUBMODEL]
    one_by_one = await example.get("/submodels", semanticId=encode_id(semantic), limit=1)
    assert [sm["id"] for sm in one_by_one.json()["result"]] == [TEST_SUBMODEL]

    refs = (await example.get("/submodels/$reference")).json()["result"]
    assert [r["keys"] for r in refs][2] == [{"type": "Submodel", "value": TEST_SUBMODEL}]
    metadata = (await example.get("/submodels/$metadata")).json()["result"]
    assert all("submodelElements" not in sm and sm["modelType"] == "Submodel" for sm in metadata)
    values = (await example.get("/submodels/$value")).json()["result"]
    assert values[1] == {
        "Identification": {"ManufacturerName": "ACPLT", "InstanceId": "978-8234-234-342"}
    }
    paths = (await example.get("/submodels/$path", idShort="Identification")).json()["result"]
    assert paths == ["ManufacturerName", "InstanceId"]


async def test_a_submodel_is_posted_replaced_patched_and_deleted(example: Example) -> None:
    body = {"modelType": "Submodel", "id": "urn:sm:1", "idShort": "Speed", "submodelElements": [
        {"modelType": "Property", "idShort": "rpm", "valueType": "xs:int", "value": "5"}
    ]}  # fmt: skip
    posted = await example.http.post(f"{BASE}/submodels", json=body, headers=example.engineer)
    assert posted.status_code == 201, posted.text
    assert posted.headers["location"] == f"submodels/{encode_id('urn:sm:1')}"
    url = example.submodel("urn:sm:1")
    assert (await example.get(f"{url}/$value")).json() == {"rpm": 5}

    put = await example.http.put(BASE + url, json={**body, "idShort": "Rotation"},
                                 headers=example.engineer)  # fmt: skip
    assert put.status_code == 204, put.text
    assert (await example.get(url)).json()["idShort"] == "Rotation"
    await _patch(example, url, {"category": "VARIABLE"})
    held = (await example.get(url)).json()
    assert held["category"] == "VARIABLE" and held["idShort"] == "Rotation"
    assert held["submodelElements"][0]["value"] == "5"
    await _patch(example, f"{url}/$value", {"rpm": 6})
    assert (await example.get(f"{url}/$value")).json() == {"rpm": 6}
    await _patch(example, f"{url}/$metadata", {"modelType": "Submodel", "idShort": "Speed2"})
    after = (await example.get(url)).json()
    assert after["idShort"] == "Speed2" and after["submodelElements"][0]["value"] == "6"
    assert "category" not in after  # the metadata is replaced, the value kept

    wrong = await example.http.put(BASE + url, json={**body, "id": "urn:sm:2"},
                                   headers=example.engineer)  # fmt: skip
    assert_part2_error(wrong, 400, "aas_id_mismatch")
    deleted = await example.http.delete(BASE + url, headers=example.engineer)
    assert deleted.status_code == 204
    assert_part2_error(await example.get(url), 404, "aas_not_found")


async def test_one_submodel_in_every_form(example: Example) -> None:
    url = example.submodel()
    whole = (await example.get(url)).json()
    assert whole["id"] == TEST_SUBMODEL
    collection = next(e for e in whole["submodelElements"] if e["idShort"] == COLLECTION)
    blob = next(e for e in collection["value"] if e["idShort"] == "ExampleBlob")
    assert "value" not in blob  # extent=withoutBlobValue is the default
    with_blob = (await example.get(url, extent="withBlobValue")).json()
    assert "AQIDBAU=" in str(with_blob)
    core = (await example.get(url, level="core")).json()
    core_collection = next(e for e in core["submodelElements"] if e["idShort"] == COLLECTION)
    assert "value" not in core_collection
    assert (await example.get(f"{url}/$reference")).json() == {
        "type": "ModelReference", "keys": [{"type": "Submodel", "value": TEST_SUBMODEL}]
    }  # fmt: skip
    metadata = (await example.get(f"{url}/$metadata")).json()
    assert "submodelElements" not in metadata and metadata["idShort"] == "TestSubmodel"
    value = (await example.get(f"{url}/$value")).json()
    assert "ExampleOperation" not in value and "ExampleCapability" not in value
    assert value[COLLECTION]["ExampleSubmodelList"] == ["exampleValue", "exampleValue"]
    assert (await example.get(f"{url}/$value", level="core")).json()[COLLECTION] == {}
    paths = (await example.get(f"{url}/$path")).json()
    assert f"{LIST}[1]" in paths and "ExampleOperation" in paths
    assert (await example.get(f"{url}/$path", level="core")).json() == [
        e["idShort"] for e in whole["submodelElements"]
    ]
    assert_part2_error(await example.get(url, level="shallow"), 400, "invalid_aas_request")


# -- elements ------------------------------------------------------------------------


async def test_elements_page_by_cursor_in_every_form(example: Example) -> None:
    url = f"{example.submodel()}/submodel-elements"
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 4} | ({"cursor": cursor} if cursor else {})
        page = (await example.get(url, **params)).json()
        seen += [e["idShort"] for e in page["result"]]
        cursor = page["paging_metadata"].get("cursor")
        if cursor is None:
            break
    assert seen == [
        "ExampleRelationshipElement", "ExampleAnnotatedRelationshipElement", "ExampleOperation",
        "ExampleCapability", "ExampleBasicEventElement", COLLECTION,
    ]  # fmt: skip
    values = (await example.get(f"{url}/$value")).json()["result"]
    assert [next(iter(v)) for v in values] == [s for s in seen if "Op" not in s and "Cap" not in s]
    refs = (await example.get(f"{url}/$reference", limit=1)).json()
    assert refs["result"][0]["keys"][1] == {
        "type": "RelationshipElement", "value": "ExampleRelationshipElement"
    }  # fmt: skip
    paths = (await example.get(f"{url}/$path", limit=3)).json()
    assert paths["result"] == [
        "ExampleRelationshipElement", "ExampleAnnotatedRelationshipElement",
        "ExampleAnnotatedRelationshipElement.ExampleAnnotatedProperty",
    ]  # fmt: skip
    more = await example.get(f"{url}/$path", limit=100, cursor=paths["paging_metadata"]["cursor"])
    assert more.json()["result"][0] == "ExampleAnnotatedRelationshipElement.ExampleAnnotatedRange"
    metadata = (await example.get(f"{url}/$metadata")).json()["result"]
    assert all("value" not in m for m in metadata)


async def test_id_short_paths_reach_into_collections_and_lists(example: Example) -> None:
    item = (await example.get(example.element(f"{LIST}[1]"))).json()
    assert item["modelType"] == "Property" and "idShort" not in item
    assert (await _value(example, TEST_SUBMODEL, f"{LIST}[0]")) == "exampleValue"
    ref = (await example.get(f"{example.element(f'{LIST}[1]')}/$reference")).json()
    assert ref["keys"][-1] == {"type": "Property", "value": "1"}
    statement = await _value(example, BILL_OF_MATERIAL, "ExampleEntity.ExampleProperty2")
    assert statement == "exampleValue2"
    annotation = await _value(
        example, TEST_SUBMODEL, "ExampleAnnotatedRelationshipElement.ExampleAnnotatedRange"
    )
    assert annotation == {"min": 1, "max": 5}
    assert (await example.get(f"{example.element(LIST)}/$path")).json() == [
        LIST, f"{LIST}[0]", f"{LIST}[1]"
    ]  # fmt: skip
    for missing in (f"{LIST}[2]", f"{COLLECTION}.Nope", f"{COLLECTION}[0]", "Nope.x"):
        assert_part2_error(
            await example.get(example.element(missing)), 404, "aas_element_not_found"
        )
    assert_part2_error(await example.get(example.element("a..b")), 400, "invalid_id_short_path")
    assert_part2_error(
        await example.get(f"{example.element('ExampleCapability')}/$path"), 400, "aas_no_path"
    )


async def test_every_value_round_trips(example: Example) -> None:
    # One platform for every element type (a platform per case costs seconds each).
    for submodel, path in EVERY_TYPE:
        element_url = example.element(path, submodel)
        before = (await example.get(element_url, extent="withBlobValue")).json()
        value = await _value(example, submodel, path)
        await _patch(example, f"{element_url}/$value", value)
        assert await _value(example, submodel, path) == value, path
        assert (await example.get(element_url, extent="withBlobValue")).json() == before, path


async def test_every_value_is_set(example: Example) -> None:
    for submodel, path, new, then in NEW_VALUES:
        element_url = example.element(path, submodel)
        await _patch(example, f"{element_url}/$value", new)
        assert await _value(example, submodel, path) == then, path


async def test_a_collection_value_changes_the_elements_it_names(example: Example) -> None:
    before = await _value(example, TEST_SUBMODEL, COLLECTION)
    await _patch(
        example, f"{example.element(COLLECTION)}/$value", {"ExampleRange": {"min": 1, "max": 2}}
    )
    assert await _value(example, TEST_SUBMODEL, COLLECTION) == {
        **before, "ExampleRange": {"min": 1, "max": 2}
    }  # fmt: skip


async def test_typed_values_read_as_their_json_types(example: Example) -> None:
    url = f"{example.submodel()}/submodel-elements"
    for id_short, value_type, lexical in [
        ("Count", "xs:int", "3"), ("Ratio", "xs:double", "0.5"), ("On", "xs:boolean", "true")
    ]:  # fmt: skip
        body = {"modelType": "Property", "idShort": id_short, "valueType": value_type,
                "value": lexical}  # fmt: skip
        posted = await example.http.post(BASE + url, json=body, headers=example.engineer)
        assert posted.status_code == 201, posted.text
    values = {k: v for entry in (await example.get(f"{url}/$value")).json()["result"]
              for k, v in entry.items()}  # fmt: skip
    assert (values["Count"], values["Ratio"], values["On"]) == (3, 0.5, True)
    await _patch(example, f"{url}/Count/$value", 4)
    assert (await example.get(f"{url}/Count")).json()["value"] == "4"
    bad = await example.http.patch(
        f"{BASE}{url}/Count/$value", json="many", headers=example.engineer
    )
    assert_part2_error(bad, 400, "invalid_aas_value")
    not_an_object = await example.http.patch(
        f"{BASE}{url}/{COLLECTION}/$value", json=[1], headers=example.engineer
    )
    assert_part2_error(not_an_object, 400, "invalid_aas_value")


async def test_operations_and_capabilities_have_no_value_nor_metadata(example: Example) -> None:
    for path in ("ExampleOperation", "ExampleCapability"):
        assert_part2_error(
            await example.get(f"{example.element(path)}/$value"), 400, "aas_no_value_only"
        )
        assert_part2_error(
            await example.get(f"{example.element(path)}/$metadata"), 400, "aas_no_metadata"
        )
        assert (await example.get(example.element(path))).json()["idShort"] == path


async def test_metadata_patch_changes_the_metadata_and_keeps_the_value(example: Example) -> None:
    url = example.element(f"{COLLECTION}.ExampleRange")
    metadata = (await example.get(f"{url}/$metadata")).json()
    assert "min" not in metadata and metadata["valueType"] == "xs:int"
    await _patch(example, f"{url}/$metadata", {**metadata, "category": "VARIABLE"})
    element = (await example.get(url)).json()
    assert element["category"] == "VARIABLE" and (element["min"], element["max"]) == ("0", "100")
    renamed = await example.http.patch(
        f"{BASE}{url}/$metadata", json={**metadata, "idShort": "Other"}, headers=example.engineer
    )
    assert_part2_error(renamed, 400, "invalid_aas_metadata")
    entity = await example.get(f"{example.element('ExampleEntity', BILL_OF_MATERIAL)}/$metadata")
    assert entity.json()["entityType"] == "SelfManagedEntity" and "statements" not in entity.json()


async def test_elements_are_added_replaced_patched_and_deleted(example: Example) -> None:
    prop = {"modelType": "Property", "idShort": "Added", "valueType": "xs:string", "value": "a"}
    into_collection = await example.http.post(
        BASE + example.element(COLLECTION), json=prop, headers=example.engineer
    )
    assert into_collection.status_code == 201, into_collection.text
    assert await _value(example, TEST_SUBMODEL, f"{COLLECTION}.Added") == "a"
    taken = await example.http.post(
        BASE + example.element(COLLECTION), json=prop, headers=example.engineer
    )
    assert_part2_error(taken, 409, "aas_id_short_taken")
    item = {"modelType": "Property", "valueType": "xs:string", "value": "third"}
    into_list = await example.http.post(
        BASE + example.element(LIST), json=item, headers=example.engineer
    )
    assert into_list.status_code == 201, into_list.text
    assert await _value(example, TEST_SUBMODEL, LIST) == ["exampleValue", "exampleValue", "third"]
    not_a_container = await example.http.post(
        BASE + example.element(f"{COLLECTION}.Added"), json=prop, headers=example.engineer
    )
    assert_part2_error(not_a_container, 400, "aas_not_a_container")

    replaced = await example.http.put(
        BASE + example.element(f"{LIST}[1]"), json={**item, "value": "one"},
        headers=example.engineer,
    )  # fmt: skip
    assert replaced.status_code == 204, replaced.text
    # A list keeps its order when an element is replaced.
    assert await _value(example, TEST_SUBMODEL, LIST) == ["exampleValue", "one", "third"]
    renamed = await example.http.put(
        BASE + example.element(f"{COLLECTION}.Added"), json={**prop, "idShort": "B"},
        headers=example.engineer,
    )  # fmt: skip
    assert_part2_error(renamed, 400, "aas_id_mismatch")
    await _patch(example, example.element(f"{COLLECTION}.Added"), {"value": "b"})
    assert await _value(example, TEST_SUBMODEL, f"{COLLECTION}.Added") == "b"

    deleted = await example.http.delete(
        BASE + example.element(f"{LIST}[0]"), headers=example.engineer
    )
    assert deleted.status_code == 204
    assert await _value(example, TEST_SUBMODEL, LIST) == ["one", "third"]
    await example.http.delete(
        BASE + example.element(f"{COLLECTION}.Added"), headers=example.engineer
    )
    assert_part2_error(
        await example.get(example.element(f"{COLLECTION}.Added")), 404, "aas_element_not_found"
    )


async def test_a_write_keeps_what_another_write_changed(example: Example, store: AasStore) -> None:
    url = example.element("ManufacturerName", IDENTIFICATION)
    await _patch(example, f"{url}/$value", "first")
    held = await store.get(example.org_id, Kind.SUBMODEL, IDENTIFICATION)
    await _patch(example, f"{example.element('InstanceId', IDENTIFICATION)}/$value", "second")
    after = await store.get(example.org_id, Kind.SUBMODEL, IDENTIFICATION)
    assert after.version == held.version + 1
    assert (await example.get(f"{example.submodel(IDENTIFICATION)}/$value")).json() == {
        "ManufacturerName": "first", "InstanceId": "second"
    }  # fmt: skip


# -- attachments -----------------------------------------------------------------------


async def test_a_file_element_takes_an_attachment_and_gives_it_back(
    example: Example, store: AasStore
) -> None:
    url = example.element(f"{COLLECTION}.ExampleFile")
    assert_part2_error(await example.get(f"{url}/attachment"), 404, "aas_file_not_found")
    uploaded = await example.http.put(
        f"{BASE}{url}/attachment", headers=example.engineer,
        files={"file": ("manual.pdf", b"%PDF-1.7 bytes", "application/pdf")},
        data={"fileName": "manual.pdf"},
    )  # fmt: skip
    assert uploaded.status_code == 204, uploaded.text
    got = await example.get(f"{url}/attachment")
    assert got.status_code == 200 and got.content == b"%PDF-1.7 bytes"
    assert got.headers["content-type"] == "application/pdf"
    value = await _value(example, TEST_SUBMODEL, f"{COLLECTION}.ExampleFile")
    assert value["value"].endswith("/manual.pdf") and value["contentType"] == "application/pdf"
    first_path = value["value"]
    assert (await store.file(example.org_id, first_path)).data == b"%PDF-1.7 bytes"

    # Another upload takes the place of the first; a name is only a name.
    again = await example.http.put(
        f"{BASE}{url}/attachment", headers=example.engineer,
        files={"file": ("../../etc/passwd", b"second", "text/plain")},
    )  # fmt: skip
    assert again.status_code == 204, again.text
    assert (await example.get(f"{url}/attachment")).content == b"second"
    value = await _value(example, TEST_SUBMODEL, f"{COLLECTION}.ExampleFile")
    assert value == {
        "contentType": "text/plain",
        "value": f"/aasx/files/{encode_id(TEST_SUBMODEL)}/{COLLECTION}.ExampleFile/passwd",
    }
    with pytest.raises(AasNotFound):
        await store.file(example.org_id, first_path)

    deleted = await example.http.delete(f"{BASE}{url}/attachment", headers=example.engineer)
    assert deleted.status_code == 204
    assert_part2_error(await example.get(f"{url}/attachment"), 404, "aas_file_not_found")
    assert "value" not in await _value(example, TEST_SUBMODEL, f"{COLLECTION}.ExampleFile")

    service = example.api.platform.get(AasService)
    service.settings = service.settings.model_copy(update={"max_file_bytes": 1024})
    too_large = await example.http.put(
        f"{BASE}{url}/attachment", headers=example.engineer,
        files={"file": ("big.bin", b"x" * 1025, "application/octet-stream")},
    )  # fmt: skip
    assert_part2_error(too_large, 413, "aas_file_too_large")

    not_a_file = example.element(f"{COLLECTION}.ExampleBlob")
    assert_part2_error(await example.get(f"{not_a_file}/attachment"), 400, "aas_not_a_file")
    not_multipart = await example.http.put(
        f"{BASE}{url}/attachment", content=b"raw", headers=example.engineer
    )
    assert_part2_error(not_multipart, 400, "invalid_aas_upload")


# -- superpaths, and who may ---------------------------------------------------------


async def test_a_submodel_answers_under_its_shell_too(example: Example) -> None:
    under_shell = f"/shells/{encode_id(SHELL)}{example.submodel()}"
    assert (await example.get(f"{under_shell}/$value")).json() == (
        await example.get(f"{example.submodel()}/$value")
    ).json()
    await _patch(example, f"{under_shell}/submodel-elements/{LIST}[0]/$value", "via the shell")
    assert await _value(example, TEST_SUBMODEL, f"{LIST}[0]") == "via the shell"
    stranger = f"/shells/{encode_id(SHELL)}{example.submodel('urn:not:referred')}"
    assert_part2_error(await example.get(stranger), 404, "aas_not_found")
    no_shell = f"/shells/{encode_id('urn:no:shell')}{example.submodel()}"
    assert_part2_error(await example.get(no_shell), 404, "aas_not_found")

    # Deleted by the superpath, the submodel goes from the shell's references too.
    deleted = await example.http.delete(BASE + under_shell, headers=example.engineer)
    assert deleted.status_code == 204
    assert_part2_error(await example.get(example.submodel()), 404, "aas_not_found")
    refs = (await example.get(f"/shells/{encode_id(SHELL)}/submodel-refs")).json()["result"]
    assert TEST_SUBMODEL not in [ref["keys"][0]["value"] for ref in refs] and len(refs) == 2


async def test_viewers_read_members_of_others_find_nothing(api: Api, example: Example) -> None:
    url = example.element("ManufacturerName", IDENTIFICATION)
    forbidden = await example.http.patch(f"{BASE}{url}/$value", json="x", headers=example.viewer)
    assert_part2_error(forbidden, 403, "insufficient_role")
    assert_part2_error(await example.http.get(BASE + url), 401, "missing_credentials")
    other = await api.org("Plant South")
    stranger = await api.member(other, "engineer")
    assert_part2_error(await api.http.get(BASE + url, headers=stranger), 404, "aas_not_found")
    patched = await api.http.patch(f"{BASE}{url}/$value", json="x", headers=stranger)
    assert_part2_error(patched, 404, "aas_not_found")
    assert await _value(example, IDENTIFICATION, "ManufacturerName") == "ACPLT"


async def test_concurrent_replacements_each_write_the_whole_body(example: Example) -> None:
    url = example.submodel(IDENTIFICATION)
    body = (await example.get(url)).json()

    async def put(n: int) -> None:
        response = await example.http.put(
            BASE + url, json={**body, "idShort": f"Identification{n}"}, headers=example.engineer
        )
        assert response.status_code == 204, response.text

    # Writers that collide read again and apply their change again: from the body each time.
    await asyncio.gather(*(put(n) for n in range(12)))
    after = (await example.get(url)).json()
    assert after["submodelElements"] == body["submodelElements"]
    assert after["idShort"].startswith("Identification")
