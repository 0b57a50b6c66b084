"""The shell repository (Part 2's AssetAdministrationShellRepositoryServiceSpecification):
`/shells`, one shell, its asset information and thumbnail, its submodel references."""

from __future__ import annotations

import json
from typing import Annotated, Any

from basyx.aas import model
from fastapi import APIRouter, Body, Query, Response

from .._errors import AasConflict, AasNotFound, InvalidAasRequest
from .._store import AasStore, Kind, StoredObject
from ._http import (
    Limit,
    Part2Route,
    ReadOrg,
    StoreDep,
    WriteOrg,
    decode_object,
    json_response,
    page_out,
    slice_page,
    to_json,
)
from ._ids import decode_id, encode_id

__all__ = ["router", "shell_reference", "shells_of"]

router = APIRouter(route_class=Part2Route, tags=["AAS shells (IDTA Part 2)"])

AasId = Annotated[str, "the shell's id, base64url"]


def shell_reference(shell_id: str) -> dict[str, Any]:
    return {
        "type": "ModelReference",
        "keys": [{"type": "AssetAdministrationShell", "value": shell_id}],
    }


def _asset_ids(encoded: list[str]) -> list[tuple[str, str]]:
    """`assetIds`: each a base64url-encoded SpecificAssetId (`{"name", "value"}`); the
    name `globalAssetId` means the asset's global id."""
    pairs = []
    for text in encoded:
        try:
            found = json.loads(decode_id(text))
            pairs.append((str(found["name"]), str(found["value"])))
        except (ValueError, KeyError, TypeError) as exc:
            raise InvalidAasRequest(
                "assetIds are base64url-encoded JSON objects with a name and a value",
                code="invalid_asset_id",
            ) from exc
    return pairs


def _has_asset_ids(shell: model.AssetAdministrationShell, pairs: list[tuple[str, str]]) -> bool:
    info = shell.asset_information
    held = {(s.name, s.value) for s in info.specific_asset_id}
    if info.global_asset_id is not None:
        held.add(("globalAssetId", info.global_asset_id))
    return all(pair in held for pair in pairs)


async def _shell_page(
    store: AasStore, org_id: str, *, id_short: str | None, asset_ids: list[str],
    cursor: str | None, limit: int,
) -> tuple[list[StoredObject], str | None]:  # fmt: skip
    pairs = _asset_ids(asset_ids)
    global_id = next((value for name, value in pairs if name == "globalAssetId"), None)
    found: list[StoredObject] = []
    # The store filters by idShort and global asset id; specific asset ids are matched
    # here, reading on until the page is full: the cursor is the store's, after the last
    # shell looked at.
    while True:
        page = await store.page(
            org_id, Kind.SHELL, id_short=id_short, global_asset_id=global_id,
            cursor=cursor, limit=limit - len(found),
        )  # fmt: skip
        found.extend(
            item for item in page.items
            if isinstance(item.obj, model.AssetAdministrationShell)
            and _has_asset_ids(item.obj, pairs)
        )  # fmt: skip
        cursor = page.cursor
        if cursor is None or len(found) >= limit:
            return found, cursor


async def _shell(store: AasStore, org_id: str, aas_id: str) -> model.AssetAdministrationShell:
    held = await store.get(org_id, Kind.SHELL, decode_id(aas_id))
    assert isinstance(held.obj, model.AssetAdministrationShell)
    return held.obj


async def shells_of(store: AasStore, org_id: str, submodel_id: str) -> list[str]:
    """The ids of the shells that refer to the submodel."""
    return await store.shells_referring(org_id, submodel_id)


def _refers_to(ref: model.Reference, submodel_id: str) -> bool:
    return bool(ref.key) and ref.key[0].value == submodel_id


@router.get("/shells")
async def get_all_shells(
    org_id: ReadOrg, store: StoreDep, limit: Limit = 100, cursor: str | None = None,
    idShort: str | None = None, assetIds: Annotated[list[str] | None, Query()] = None,
) -> Response:  # fmt: skip
    items, next_cursor = await _shell_page(
        store, org_id, id_short=idShort, asset_ids=assetIds or [], cursor=cursor, limit=limit
    )
    return json_response(page_out([to_json(item.obj) for item in items], next_cursor))


@router.get("/shells/$reference")
async def get_all_shell_references(
    org_id: ReadOrg, store: StoreDep, limit: Limit = 100, cursor: str | None = None,
    idShort: str | None = None, assetIds: Annotated[list[str] | None, Query()] = None,
) -> Response:  # fmt: skip
    items, next_cursor = await _shell_page(
        store, org_id, id_short=idShort, asset_ids=assetIds or [], cursor=cursor, limit=limit
    )
    return json_response(page_out([shell_reference(item.id) for item in items], next_cursor))


@router.post("/shells", status_code=201)
async def post_shell(org_id: WriteOrg, store: StoreDep, body: Annotated[Any, Body()]) -> Response:
    shell = decode_object(body, model.AssetAdministrationShell, "AssetAdministrationShell")
    await store.put(org_id, shell, create=True)
    return json_response(to_json(shell), 201, {"Location": f"shells/{encode_id(shell.id)}"})


@router.get("/shells/{aasIdentifier}")
async def get_shell(aasIdentifier: str, org_id: ReadOrg, store: StoreDep) -> Response:
    return json_response(to_json(await _shell(store, org_id, aasIdentifier)))


@router.get("/shells/{aasIdentifier}/$reference")
async def get_shell_reference(aasIdentifier: str, org_id: ReadOrg, store: StoreDep) -> Response:
    shell = await _shell(store, org_id, aasIdentifier)
    return json_response(shell_reference(shell.id))


@router.put("/shells/{aasIdentifier}", status_code=204)
async def put_shell(
    aasIdentifier: str,
    org_id: WriteOrg,
    store: StoreDep,
    body: Annotated[Any, Body()],
) -> Response:
    shell_id = decode_id(aasIdentifier)
    shell = decode_object(body, model.AssetAdministrationShell, "AssetAdministrationShell")
    if shell.id != shell_id:
        raise InvalidAasRequest(
            f"the body's id {shell.id!r} is not the path's {shell_id!r}", code="aas_id_mismatch"
        )
    held = await store.get(org_id, Kind.SHELL, shell_id)
    await store.put(org_id, shell, version=held.version)
    return Response(status_code=204)


@router.delete("/shells/{aasIdentifier}", status_code=204)
async def delete_shell(aasIdentifier: str, org_id: WriteOrg, store: StoreDep) -> Response:
    await store.delete(org_id, Kind.SHELL, decode_id(aasIdentifier))
    return Response(status_code=204)


# -- asset information ---------------------------------------------------------------


@router.get("/shells/{aasIdentifier}/asset-information")
async def get_asset_information(aasIdentifier: str, org_id: ReadOrg, store: StoreDep) -> Response:
    shell = await _shell(store, org_id, aasIdentifier)
    return json_response(to_json(shell.asset_information))


def _with_part(
    shell: model.AssetAdministrationShell, key: str, part: Any
) -> model.AssetAdministrationShell:
    """The shell with one part of its JSON replaced, read strictly (so a part is checked
    as the metamodel checks it inside a shell)."""
    data = to_json(shell)
    data[key] = part
    return decode_object(data, model.AssetAdministrationShell, "AssetAdministrationShell")


@router.put("/shells/{aasIdentifier}/asset-information", status_code=204)
async def put_asset_information(
    aasIdentifier: str,
    org_id: WriteOrg,
    store: StoreDep,
    body: Annotated[Any, Body()],
) -> Response:
    def change(obj: model.Identifiable) -> None:
        assert isinstance(obj, model.AssetAdministrationShell)
        obj.asset_information = _with_part(obj, "assetInformation", body).asset_information

    await store.update(org_id, Kind.SHELL, decode_id(aasIdentifier), change)
    return Response(status_code=204)


@router.get("/shells/{aasIdentifier}/asset-information/thumbnail")
async def get_thumbnail(aasIdentifier: str, org_id: ReadOrg, store: StoreDep) -> Response:
    shell = await _shell(store, org_id, aasIdentifier)
    thumbnail = shell.asset_information.default_thumbnail
    if thumbnail is None:
        raise AasNotFound(f"the shell {shell.id!r} has no thumbnail", code="aas_file_not_found")
    stored = await store.file(org_id, thumbnail.path)
    return Response(stored.data, media_type=thumbnail.content_type or stored.content_type)


# -- submodel references -------------------------------------------------------------


@router.get("/shells/{aasIdentifier}/submodel-refs")
async def get_submodel_references(
    aasIdentifier: str, org_id: ReadOrg, store: StoreDep, limit: Limit = 100,
    cursor: str | None = None,
) -> Response:  # fmt: skip
    shell = await _shell(store, org_id, aasIdentifier)
    refs = to_json(shell).get("submodels", [])
    items, next_cursor = slice_page(refs, cursor, limit)
    return json_response(page_out(items, next_cursor))


@router.post("/shells/{aasIdentifier}/submodel-refs", status_code=201)
async def post_submodel_reference(
    aasIdentifier: str,
    org_id: WriteOrg,
    store: StoreDep,
    body: Annotated[Any, Body()],
) -> Response:
    def change(obj: model.Identifiable) -> None:
        assert isinstance(obj, model.AssetAdministrationShell)
        data = to_json(obj)
        if body in data.get("submodels", []):
            raise AasConflict("the shell refers to this submodel already", code="aas_exists")
        data["submodels"] = [*data.get("submodels", []), body]
        new = decode_object(data, model.AssetAdministrationShell, "AssetAdministrationShell")
        obj.submodel = new.submodel

    await store.update(org_id, Kind.SHELL, decode_id(aasIdentifier), change)
    return json_response(body, 201)


@router.delete("/shells/{aasIdentifier}/submodel-refs/{submodelIdentifier}", status_code=204)
async def delete_submodel_reference(
    aasIdentifier: str,
    submodelIdentifier: str,
    org_id: WriteOrg,
    store: StoreDep,
) -> Response:
    submodel_id = decode_id(submodelIdentifier)

    def change(obj: model.Identifiable) -> None:
        assert isinstance(obj, model.AssetAdministrationShell)
        refs = {ref for ref in obj.submodel if _refers_to(ref, submodel_id)}
        if not refs:
            raise AasNotFound(
                f"the shell refers to no submodel {submodel_id!r}", code="aas_reference_not_found"
            )
        obj.submodel -= refs

    await store.update(org_id, Kind.SHELL, decode_id(aasIdentifier), change)
    return Response(status_code=204)
