"""The submodel repository and the submodel interface (Part 2's
SubmodelRepositoryServiceSpecification and SubmodelServiceSpecification): `/submodels`,
and under one submodel its `$metadata`, `$value`, `$reference`, `$path` and its elements
by idShortPath, with attachments of File elements.

`submodel_router` is mounted twice: under `/submodels/{submodelIdentifier}` and under
`/shells/{aasIdentifier}/submodels/{submodelIdentifier}` (the superpath, which answers
404 unless the shell refers to the submodel). Every element write is one
`AasStore.update`: read, change in place, write over the version read.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any

from basyx.aas import model
from fastapi import APIRouter, Body, Depends, Request, Response

from .._errors import AasNotFound, InvalidAasRequest
from .._store import AasStore, Kind
from . import _metadata, _values
from ._http import (
    Json,
    Limit,
    Part2Route,
    ReadOrg,
    StoreDep,
    WriteOrg,
    decode_object,
    json_response,
    page_out,
    read_upload,
    slice_page,
    to_json,
)
from ._ids import decode_id, encode_id
from ._paths import Segment, Slot, add_child, format_path, parse, resolve, walk
from ._shape import Extent, Level, shaped

__all__ = ["ReadTarget", "Target", "WriteTarget", "repository_router", "submodel_router"]

repository_router = APIRouter(route_class=Part2Route, tags=["AAS submodels (IDTA Part 2)"])
submodel_router = APIRouter(route_class=Part2Route, tags=["AAS submodels (IDTA Part 2)"])


@dataclass(frozen=True, slots=True)
class Target:
    """The submodel a request is about, in the caller's organisation."""

    org_id: str
    submodel_id: str
    store: AasStore

    async def submodel(self) -> model.Submodel:
        held = await self.store.get(self.org_id, Kind.SUBMODEL, self.submodel_id)
        assert isinstance(held.obj, model.Submodel)
        return held.obj

    async def element(self, path: str) -> Slot:
        return resolve(await self.submodel(), parse(path))

    async def change(self, change: Callable[[model.Submodel], None]) -> None:
        def on_submodel(obj: model.Identifiable) -> None:
            assert isinstance(obj, model.Submodel)
            change(obj)

        await self.store.update(self.org_id, Kind.SUBMODEL, self.submodel_id, on_submodel)

    async def change_element(self, path: str, change: Callable[[Slot], None]) -> None:
        segments = parse(path)
        await self.change(lambda submodel: change(resolve(submodel, segments)))


async def _target(request: Request, org_id: str, store: AasStore) -> Target:
    submodel_id = decode_id(request.path_params["submodelIdentifier"])
    aas_id = request.path_params.get("aasIdentifier")
    if aas_id is not None:
        shell = await store.get(org_id, Kind.SHELL, decode_id(aas_id))
        assert isinstance(shell.obj, model.AssetAdministrationShell)
        if not any(ref.key and ref.key[0].value == submodel_id for ref in shell.obj.submodel):
            raise AasNotFound(
                f"the shell {shell.id!r} refers to no submodel {submodel_id!r}",
                code="aas_not_found",
            )
    return Target(org_id, submodel_id, store)


async def _read_target(request: Request, org_id: ReadOrg, store: StoreDep) -> Target:
    return await _target(request, org_id, store)


async def _write_target(request: Request, org_id: WriteOrg, store: StoreDep) -> Target:
    return await _target(request, org_id, store)


ReadTarget = Annotated[Target, Depends(_read_target)]
WriteTarget = Annotated[Target, Depends(_write_target)]
AnyBody = Annotated[Any, Body()]


def _element(data: Any) -> model.SubmodelElement:
    return decode_object(data, model.SubmodelElement, "SubmodelElement")  # type: ignore[type-abstract]


def _reference(element: model.Referable) -> Any:
    return to_json(model.ModelReference.from_referable(element))


def _paths(elements: Sequence[model.SubmodelElement], prefix: tuple[Segment, ...],
           *, in_list: bool, level: Level) -> list[str]:  # fmt: skip
    return [format_path(p) for p, _ in walk(elements, prefix, in_list=in_list, depth=level.depth)]


# -- the repository ------------------------------------------------------------------


def _has_semantic_id(submodel: model.Submodel, semantic_id: str) -> bool:
    ref = submodel.semantic_id
    return ref is not None and any(key.value == semantic_id for key in ref.key)


async def _submodel_page(
    store: AasStore, org_id: str, *, id_short: str | None, semantic_id: str | None,
    cursor: str | None, limit: int,
) -> tuple[list[model.Submodel], str | None]:  # fmt: skip
    wanted = None if semantic_id is None else decode_id(semantic_id)
    found: list[model.Submodel] = []
    # The store filters by idShort; a semantic id is matched here, reading on until the
    # page is full (the cursor is the store's, after the last submodel looked at).
    while True:
        page = await store.page(
            org_id, Kind.SUBMODEL, id_short=id_short, cursor=cursor, limit=limit - len(found)
        )
        found.extend(
            item.obj for item in page.items
            if isinstance(item.obj, model.Submodel)
            and (wanted is None or _has_semantic_id(item.obj, wanted))
        )  # fmt: skip
        cursor = page.cursor
        if cursor is None or len(found) >= limit:
            return found, cursor


_SHOWN: dict[str, Callable[[model.Submodel, Level, Extent], Any]] = {
    "": lambda sm, level, extent: shaped(
        to_json(sm), depth=level.depth, with_blob=extent.with_blob
    ),
    "$metadata": lambda sm, level, extent: _metadata.metadata(to_json(sm)),
    "$value": lambda sm, level, extent: {
        str(sm.id_short): _values.submodel_value(
            to_json(sm), depth=level.depth, with_blob=extent.with_blob
        )
    },
    "$reference": lambda sm, level, extent: _reference(sm),
}


def _all_paths(found: list[model.Submodel], level: Level) -> list[str]:
    """`/submodels/$path`: Part 2 gives a list of strings for a page of submodels and
    does not say how they are told apart; here each submodel's paths follow each other,
    in the order of the page."""
    return [
        path for sm in found
        for path in _paths(list(sm.submodel_element), (), in_list=False, level=level)
    ]  # fmt: skip


def _listing(suffix: str) -> Callable[..., Any]:
    async def get_all_submodels(
        org_id: ReadOrg, store: StoreDep, limit: Limit = 100, cursor: str | None = None,
        semanticId: str | None = None, idShort: str | None = None,
        level: Level = Level.DEEP, extent: Extent = Extent.WITHOUT_BLOB_VALUE,
    ) -> Response:  # fmt: skip
        found, next_cursor = await _submodel_page(
            store, org_id, id_short=idShort, semantic_id=semanticId, cursor=cursor, limit=limit
        )
        if suffix == "$path":
            return json_response(page_out(_all_paths(found, level), next_cursor))
        shown = [_SHOWN[suffix](sm, level, extent) for sm in found]
        return json_response(page_out(shown, next_cursor))

    return get_all_submodels


for _suffix in (*_SHOWN, "$path"):
    repository_router.add_api_route(
        f"/submodels/{_suffix}".rstrip("/"), _listing(_suffix), methods=["GET"],
        name=f"get_all_submodels{_suffix.replace('$', '_')}",
    )  # fmt: skip


@repository_router.post("/submodels", status_code=201)
async def post_submodel(org_id: WriteOrg, store: StoreDep, body: AnyBody) -> Response:
    submodel = decode_object(body, model.Submodel, "Submodel")
    await store.put(org_id, submodel, create=True)
    return json_response(
        to_json(submodel), 201, {"Location": f"submodels/{encode_id(submodel.id)}"}
    )


# -- one submodel --------------------------------------------------------------------


@submodel_router.get("")
async def get_submodel(
    target: ReadTarget, level: Level = Level.DEEP, extent: Extent = Extent.WITHOUT_BLOB_VALUE
) -> Response:
    return json_response(_SHOWN[""](await target.submodel(), level, extent))


@submodel_router.get("/$metadata")
async def get_submodel_metadata(target: ReadTarget) -> Response:
    return json_response(_metadata.metadata(to_json(await target.submodel())))


@submodel_router.get("/$value")
async def get_submodel_value(
    target: ReadTarget, level: Level = Level.DEEP, extent: Extent = Extent.WITHOUT_BLOB_VALUE
) -> Response:
    submodel = to_json(await target.submodel())
    return json_response(
        _values.submodel_value(submodel, depth=level.depth, with_blob=extent.with_blob)
    )


@submodel_router.get("/$reference")
async def get_submodel_reference(target: ReadTarget) -> Response:
    return json_response(_reference(await target.submodel()))


@submodel_router.get("/$path")
async def get_submodel_paths(target: ReadTarget, level: Level = Level.DEEP) -> Response:
    submodel = await target.submodel()
    return json_response(_paths(list(submodel.submodel_element), (), in_list=False, level=level))


def _replace_submodel(held: model.Submodel, new: model.Submodel) -> None:
    """Make `held` what `new` is, in place (`AasStore.update` writes the object it read)."""
    if new.id != held.id:
        raise InvalidAasRequest(
            f"the body's id {new.id!r} is not the path's {held.id!r}", code="aas_id_mismatch"
        )
    elements = list(new.submodel_element)
    new.submodel_element.clear()
    held.submodel_element.clear()
    for element in elements:
        held.submodel_element.add(element)
    for name in ("qualifier", "extension"):
        items = list(getattr(new, name))
        getattr(new, name).clear()
        getattr(held, name).clear()
        for item in items:
            getattr(held, name).add(item)
    for name in (
        "id_short", "display_name", "category", "description", "administration",
        "semantic_id", "supplemental_semantic_id", "kind", "embedded_data_specifications",
    ):  # fmt: skip
        setattr(held, name, getattr(new, name))


@submodel_router.put("", status_code=204)
async def put_submodel(target: WriteTarget, body: AnyBody) -> Response:
    new = decode_object(body, model.Submodel, "Submodel")
    await target.change(lambda held: _replace_submodel(held, new))
    return Response(status_code=204)


def _merged_submodel(held: model.Submodel, body: Any, merge: Callable[[Json, Any], Json]) -> None:
    _replace_submodel(held, decode_object(merge(to_json(held), body), model.Submodel, "Submodel"))


def _patched(held: Json, body: Any) -> Json:
    if not isinstance(body, dict):
        raise InvalidAasRequest("a PATCH body is a JSON object", code="invalid_aas_body")
    return {**held, **body}


@submodel_router.patch("", status_code=204)
async def patch_submodel(target: WriteTarget, body: AnyBody) -> Response:
    await target.change(lambda held: _merged_submodel(held, body, _patched))
    return Response(status_code=204)


@submodel_router.patch("/$metadata", status_code=204)
async def patch_submodel_metadata(target: WriteTarget, body: AnyBody) -> Response:
    await target.change(lambda held: _merged_submodel(held, body, _metadata.with_metadata))
    return Response(status_code=204)


@submodel_router.patch("/$value", status_code=204)
async def patch_submodel_value(target: WriteTarget, body: AnyBody) -> Response:
    await target.change(lambda held: _merged_submodel(held, body, _values.with_submodel_value))
    return Response(status_code=204)


@submodel_router.delete("", status_code=204)
async def delete_submodel(target: WriteTarget) -> Response:
    await target.store.delete(target.org_id, Kind.SUBMODEL, target.submodel_id)
    return Response(status_code=204)


# -- its elements --------------------------------------------------------------------


def _show_element(
    element: model.SubmodelElement, path: tuple[Segment, ...], suffix: str, level: Level,
    extent: Extent,
) -> Any:  # fmt: skip
    data = to_json(element)
    if suffix == "":
        return shaped(data, depth=level.depth, with_blob=extent.with_blob)
    if suffix == "$metadata":
        return _metadata.metadata(data)
    if suffix == "$value":
        return _values.value_of(data, depth=level.depth, with_blob=extent.with_blob)
    if suffix == "$reference":
        return _reference(element)
    if not isinstance(element, model.SubmodelElementCollection | model.SubmodelElementList
                      | model.Entity):  # fmt: skip
        raise InvalidAasRequest(
            f"a {type(element).__name__} holds no elements, so has no $path",
            code="aas_no_path",
        )
    held = list(element.value if not isinstance(element, model.Entity) else element.statement)
    in_list = isinstance(element, model.SubmodelElementList)
    return [format_path(path), *_paths(held, path, in_list=in_list, level=level)]


def _element_listing(suffix: str) -> Callable[..., Any]:
    async def get_all_submodel_elements(
        target: ReadTarget, limit: Limit = 100, cursor: str | None = None,
        level: Level = Level.DEEP, extent: Extent = Extent.WITHOUT_BLOB_VALUE,
    ) -> Response:  # fmt: skip
        submodel = await target.submodel()
        elements = list(submodel.submodel_element)
        if suffix in ("$metadata", "$value"):
            # Operations and Capabilities have neither: a listing leaves them out.
            elements = [e for e in elements if _values.has_value(to_json(e))]
        if suffix == "$path":
            # A page of paths, not of elements: `limit` counts what the result holds.
            paths, next_cursor = slice_page(
                _paths(elements, (), in_list=False, level=level), cursor, limit
            )
            return json_response(page_out(paths, next_cursor))
        page, next_cursor = slice_page(elements, cursor, limit)
        if suffix == "$value":
            shown: list[Any] = [
                {str(e.id_short): _show_element(e, (), suffix, level, extent)} for e in page
            ]
        else:
            shown = [_show_element(e, (), suffix, level, extent) for e in page]
        return json_response(page_out(shown, next_cursor))

    return get_all_submodel_elements


def _element_getter(suffix: str) -> Callable[..., Any]:
    async def get_submodel_element(
        idShortPath: str, target: ReadTarget, level: Level = Level.DEEP,
        extent: Extent = Extent.WITHOUT_BLOB_VALUE,
    ) -> Response:  # fmt: skip
        slot = await target.element(idShortPath)
        return json_response(_show_element(slot.element, slot.path, suffix, level, extent))

    return get_submodel_element


for _suffix in ("", "$metadata", "$value", "$reference", "$path"):
    _name = _suffix.replace("$", "_")
    submodel_router.add_api_route(
        f"/submodel-elements/{_suffix}".rstrip("/"), _element_listing(_suffix),
        methods=["GET"], name=f"get_all_submodel_elements{_name}",
    )  # fmt: skip
for _suffix in ("", "$metadata", "$value", "$reference", "$path"):
    _name = _suffix.replace("$", "_")
    submodel_router.add_api_route(
        f"/submodel-elements/{{idShortPath}}/{_suffix}".rstrip("/"), _element_getter(_suffix),
        methods=["GET"], name=f"get_submodel_element{_name}",
    )  # fmt: skip


@submodel_router.post("/submodel-elements", status_code=201)
async def post_submodel_element(target: WriteTarget, body: AnyBody) -> Response:
    element = _element(body)
    await target.change(lambda submodel: add_child(submodel, _element(body)))
    return json_response(to_json(element), 201)


@submodel_router.post("/submodel-elements/{idShortPath}", status_code=201)
async def post_submodel_element_by_path(
    idShortPath: str,
    target: WriteTarget,
    body: AnyBody,
) -> Response:
    element = _element(body)
    await target.change_element(idShortPath, lambda slot: add_child(slot.element, _element(body)))
    return json_response(to_json(element), 201)


def _replace_with(body: Any, merge: Callable[[Json, Any], Json]) -> Callable[[Slot], None]:
    def change(slot: Slot) -> None:
        slot.replace(_element(merge(to_json(slot.element), body)))

    return change


def _put(held: Json, body: Any) -> Json:
    if not isinstance(body, dict) or body.get("idShort") != held.get("idShort"):
        raise InvalidAasRequest(
            f"the body's idShort is not the path's {held.get('idShort')!r}",
            code="aas_id_mismatch",
        )
    return body


@submodel_router.put("/submodel-elements/{idShortPath}", status_code=204)
async def put_submodel_element(idShortPath: str, target: WriteTarget, body: AnyBody) -> Response:
    await target.change_element(idShortPath, _replace_with(body, _put))
    return Response(status_code=204)


def _patched_element(held: Json, body: Any) -> Json:
    merged = _patched(held, body)
    return _put(held, merged)


@submodel_router.patch("/submodel-elements/{idShortPath}", status_code=204)
async def patch_submodel_element(idShortPath: str, target: WriteTarget, body: AnyBody) -> Response:
    await target.change_element(idShortPath, _replace_with(body, _patched_element))
    return Response(status_code=204)


@submodel_router.patch("/submodel-elements/{idShortPath}/$metadata", status_code=204)
async def patch_submodel_element_metadata(
    idShortPath: str,
    target: WriteTarget,
    body: AnyBody,
) -> Response:
    await target.change_element(idShortPath, _replace_with(body, _metadata.with_metadata))
    return Response(status_code=204)


@submodel_router.patch("/submodel-elements/{idShortPath}/$value", status_code=204)
async def patch_submodel_element_value(
    idShortPath: str,
    target: WriteTarget,
    body: AnyBody,
) -> Response:
    await target.change_element(idShortPath, _replace_with(body, _values.with_value))
    return Response(status_code=204)


@submodel_router.delete("/submodel-elements/{idShortPath}", status_code=204)
async def delete_submodel_element(idShortPath: str, target: WriteTarget) -> Response:
    await target.change_element(idShortPath, lambda slot: slot.remove())
    return Response(status_code=204)


# -- attachments of File elements ----------------------------------------------------


def _file(slot: Slot) -> model.File:
    if not isinstance(slot.element, model.File):
        raise InvalidAasRequest(
            f"{format_path(slot.path)!r} is a {type(slot.element).__name__}, not a File",
            code="aas_not_a_file",
        )
    return slot.element


@submodel_router.get("/submodel-elements/{idShortPath}/attachment")
async def get_attachment(idShortPath: str, target: ReadTarget) -> Response:
    file = _file(await target.element(idShortPath))
    if not file.value:
        raise AasNotFound("the File element names no file", code="aas_file_not_found")
    stored = await target.store.file(target.org_id, file.value)
    return Response(stored.data, media_type=file.content_type or stored.content_type)


@submodel_router.put("/submodel-elements/{idShortPath}/attachment", status_code=204)
async def put_attachment(idShortPath: str, target: WriteTarget, request: Request) -> Response:
    file_name, content_type, data = await read_upload(request)
    # One path per File element: another element's file is never overwritten.
    path = f"/aasx/files/{encode_id(target.submodel_id)}/{idShortPath}/{file_name}"
    _file(await target.element(idShortPath))  # a File, before the bytes are kept
    await target.store.put_file(target.org_id, path, content_type, data)

    def point_at(slot: Slot) -> None:
        file = _file(slot)
        file.value = path
        file.content_type = content_type

    await target.change_element(idShortPath, point_at)
    return Response(status_code=204)


@submodel_router.delete("/submodel-elements/{idShortPath}/attachment", status_code=204)
async def delete_attachment(idShortPath: str, target: WriteTarget) -> Response:
    file = _file(await target.element(idShortPath))
    if not file.value:
        raise AasNotFound("the File element names no file", code="aas_file_not_found")
    await target.store.delete_file(target.org_id, file.value)

    def forget(slot: Slot) -> None:
        _file(slot).value = None

    await target.change_element(idShortPath, forget)
    return Response(status_code=204)
