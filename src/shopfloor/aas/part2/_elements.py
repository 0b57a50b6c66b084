"""The elements of a submodel by idShortPath (Part 2's submodel interface): listing in
every form, reading, adding, replacing, patching, deleting, `$metadata` and `$value`,
and the attachments of File elements. Every write is one `AasStore.update` through the
request's `Target`."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable
from pathlib import PurePosixPath
from typing import Any

from basyx.aas import model
from fastapi import APIRouter, Request, Response

from shopfloor.api import PlatformDep
from shopfloor.core import ErrorKind

from .._errors import AasNotFound, InvalidAasRequest
from ..capability import AasService
from . import _metadata, _values
from ._http import (
    Json,
    Limit,
    Part2Route,
    json_response,
    page_out,
    read_upload,
    slice_page,
    to_json,
)
from ._ids import encode_id
from ._paths import Segment, Slot, add_child, format_path
from ._shape import Extent, Level, shaped
from ._submodels import (
    AnyBody,
    ReadTarget,
    WriteTarget,
    element_from,
    patched,
    paths_of,
    reference_to,
)

__all__ = ["router"]

router = APIRouter(route_class=Part2Route, tags=["AAS submodels (IDTA Part 2)"])


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
        return reference_to(element)
    if not isinstance(element, model.SubmodelElementCollection | model.SubmodelElementList
                      | model.Entity):  # fmt: skip
        raise InvalidAasRequest(
            f"a {type(element).__name__} holds no elements, so has no $path",
            code="aas_no_path",
        )
    held = list(element.value if not isinstance(element, model.Entity) else element.statement)
    in_list = isinstance(element, model.SubmodelElementList)
    return [format_path(path), *paths_of(held, path, in_list=in_list, level=level)]


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
                paths_of(elements, (), in_list=False, level=level), cursor, limit
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
    router.add_api_route(
        f"/submodel-elements/{_suffix}".rstrip("/"), _element_listing(_suffix),
        methods=["GET"], name=f"get_all_submodel_elements{_name}",
    )  # fmt: skip
for _suffix in ("", "$metadata", "$value", "$reference", "$path"):
    _name = _suffix.replace("$", "_")
    router.add_api_route(
        f"/submodel-elements/{{idShortPath}}/{_suffix}".rstrip("/"), _element_getter(_suffix),
        methods=["GET"], name=f"get_submodel_element{_name}",
    )  # fmt: skip


@router.post("/submodel-elements", status_code=201)
async def post_submodel_element(target: WriteTarget, body: AnyBody) -> Response:
    element = element_from(body)
    # A fresh element for every attempt of the update: adding one gives it its parent.
    await target.change(lambda submodel: add_child(submodel, element_from(body)))
    return json_response(to_json(element), 201)


@router.post("/submodel-elements/{idShortPath}", status_code=201)
async def post_submodel_element_by_path(
    idShortPath: str,
    target: WriteTarget,
    body: AnyBody,
) -> Response:
    element = element_from(body)
    await target.change_element(
        idShortPath, lambda slot: add_child(slot.element, element_from(body))
    )
    return json_response(to_json(element), 201)


def _replace_with(body: Any, merge: Callable[[Json, Any], Json]) -> Callable[[Slot], None]:
    def change(slot: Slot) -> None:
        slot.replace(element_from(merge(to_json(slot.element), body)))

    return change


def _put(held: Json, body: Any) -> Json:
    if not isinstance(body, dict) or body.get("idShort") != held.get("idShort"):
        raise InvalidAasRequest(
            f"the body's idShort is not the path's {held.get('idShort')!r}",
            code="aas_id_mismatch",
        )
    return body


@router.put("/submodel-elements/{idShortPath}", status_code=204)
async def put_submodel_element(idShortPath: str, target: WriteTarget, body: AnyBody) -> Response:
    await target.change_element(idShortPath, _replace_with(body, _put))
    return Response(status_code=204)


def _patched_element(held: Json, body: Any) -> Json:
    merged = patched(held, body)
    return _put(held, merged)


@router.patch("/submodel-elements/{idShortPath}", status_code=204)
async def patch_submodel_element(idShortPath: str, target: WriteTarget, body: AnyBody) -> Response:
    await target.change_element(idShortPath, _replace_with(body, _patched_element))
    return Response(status_code=204)


@router.patch("/submodel-elements/{idShortPath}/$metadata", status_code=204)
async def patch_submodel_element_metadata(
    idShortPath: str,
    target: WriteTarget,
    body: AnyBody,
) -> Response:
    await target.change_element(idShortPath, _replace_with(body, _metadata.with_metadata))
    return Response(status_code=204)


@router.patch("/submodel-elements/{idShortPath}/$value", status_code=204)
async def patch_submodel_element_value(
    idShortPath: str,
    target: WriteTarget,
    body: AnyBody,
) -> Response:
    await target.change_element(idShortPath, _replace_with(body, _values.with_value))
    return Response(status_code=204)


@router.delete("/submodel-elements/{idShortPath}", status_code=204)
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


@router.get("/submodel-elements/{idShortPath}/attachment")
async def get_attachment(idShortPath: str, target: ReadTarget) -> Response:
    file = _file(await target.element(idShortPath))
    if not file.value:
        raise AasNotFound("the File element names no file", code="aas_file_not_found")
    stored = await target.store.file(target.org_id, file.value)
    return Response(stored.data, media_type=file.content_type or stored.content_type)


def _safe_name(file_name: str) -> str:
    """The last part of an uploaded file's name, in letters, digits, `.`, `-` and `_`:
    it becomes part of a path inside an AASX package on export."""
    name = re.sub(r"[^A-Za-z0-9._-]", "_", PurePosixPath(file_name.replace("\\", "/")).name)
    return name.strip(".") or "attachment"


@router.put("/submodel-elements/{idShortPath}/attachment", status_code=204)
async def put_attachment(
    idShortPath: str, target: WriteTarget, request: Request, platform: PlatformDep
) -> Response:
    file_name, content_type, data = await read_upload(request)
    # Under the API's body limit (SHOPFLOOR_MAX_BODY_BYTES) for the whole request, too.
    largest = platform.get(AasService).settings.max_file_bytes
    if len(data) > largest:
        raise InvalidAasRequest(
            f"an attachment is at most {largest} bytes (SHOPFLOOR_AAS_MAX_FILE_BYTES)",
            code="aas_file_too_large",
            kind=ErrorKind.TOO_LARGE,
        )
    held = _file(await target.element(idShortPath))  # a File, before the bytes are kept
    # One folder per File element: another element's file is never overwritten.
    folder = f"/aasx/files/{encode_id(target.submodel_id)}/{idShortPath}/"
    path = folder + _safe_name(file_name)
    content_type = content_type or held.content_type or "application/octet-stream"
    await target.store.put_file(target.org_id, path, content_type, data)
    replaced: list[str] = []

    def point_at(slot: Slot) -> None:
        file = _file(slot)
        replaced[:] = [file.value] if file.value and file.value != path else []
        file.value = path
        file.content_type = content_type

    await target.change_element(idShortPath, point_at)
    # The element's earlier upload (under its folder) is nobody's now.
    for old in replaced:
        if old.startswith(folder):
            with contextlib.suppress(AasNotFound):
                await target.store.delete_file(target.org_id, old)
    return Response(status_code=204)


@router.delete("/submodel-elements/{idShortPath}/attachment", status_code=204)
async def delete_attachment(idShortPath: str, target: WriteTarget) -> Response:
    file = _file(await target.element(idShortPath))
    if not file.value:
        raise AasNotFound("the File element names no file", code="aas_file_not_found")
    await target.store.delete_file(target.org_id, file.value)

    def forget(slot: Slot) -> None:
        _file(slot).value = None

    await target.change_element(idShortPath, forget)
    return Response(status_code=204)
