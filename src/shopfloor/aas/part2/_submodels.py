"""The submodel repository and the submodel interface (Part 2's
SubmodelRepositoryServiceSpecification and SubmodelServiceSpecification): `/submodels`,
and under one submodel its `$metadata`, `$value`, `$reference` and `$path` (its elements
are `_elements.py`'s); the request's `Target`, which every route under a submodel uses.

`submodel_router`, `_elements.router` and `_operations.router` are mounted twice:
under `/submodels/{submodelIdentifier}` and under
`/shells/{aasIdentifier}/submodels/{submodelIdentifier}` (the superpath, which answers
404 unless the shell refers to the submodel). Every change of a submodel is one
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
    to_json,
)
from ._ids import decode_id, encode_id
from ._paths import Segment, Slot, format_path, parse, resolve, walk
from ._shape import Extent, Level, shaped

__all__ = [
    "AnyBody",
    "ReadTarget",
    "Target",
    "WriteTarget",
    "element_from",
    "patched",
    "paths_of",
    "reference_to",
    "repository_router",
    "submodel_router",
]

repository_router = APIRouter(route_class=Part2Route, tags=["AAS submodels (IDTA Part 2)"])
submodel_router = APIRouter(route_class=Part2Route, tags=["AAS submodels (IDTA Part 2)"])


@dataclass(frozen=True, slots=True)
class Target:
    """The submodel a request is about, in the caller's organisation."""

    org_id: str
    submodel_id: str
    store: AasStore
    #: The shell of the superpath the request came by, if it came by one.
    aas_id: str | None = None

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
    encoded_aas_id = request.path_params.get("aasIdentifier")
    aas_id = None if encoded_aas_id is None else decode_id(encoded_aas_id)
    if aas_id is not None:
        shell = await store.get(org_id, Kind.SHELL, aas_id)
        assert isinstance(shell.obj, model.AssetAdministrationShell)
        if not any(ref.key and ref.key[0].value == submodel_id for ref in shell.obj.submodel):
            raise AasNotFound(
                f"the shell {shell.id!r} refers to no submodel {submodel_id!r}",
                code="aas_not_found",
            )
    return Target(org_id, submodel_id, store, aas_id)


async def _read_target(request: Request, org_id: ReadOrg, store: StoreDep) -> Target:
    return await _target(request, org_id, store)


async def _write_target(request: Request, org_id: WriteOrg, store: StoreDep) -> Target:
    return await _target(request, org_id, store)


ReadTarget = Annotated[Target, Depends(_read_target)]
WriteTarget = Annotated[Target, Depends(_write_target)]
AnyBody = Annotated[Any, Body()]


def element_from(data: Any) -> model.SubmodelElement:
    return decode_object(data, model.SubmodelElement, "SubmodelElement")  # type: ignore[type-abstract]


def reference_to(element: model.Referable) -> Any:
    return to_json(model.ModelReference.from_referable(element))


def paths_of(elements: Sequence[model.SubmodelElement], prefix: tuple[Segment, ...],
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
    "$reference": lambda sm, level, extent: reference_to(sm),
}


def _all_paths(found: list[model.Submodel], level: Level) -> list[str]:
    """`/submodels/$path`: Part 2 gives a list of strings for a page of submodels and
    does not say how they are told apart; here each submodel's paths follow each other,
    in the order of the page."""
    return [
        path for sm in found
        for path in paths_of(list(sm.submodel_element), (), in_list=False, level=level)
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
    return json_response(reference_to(await target.submodel()))


@submodel_router.get("/$path")
async def get_submodel_paths(target: ReadTarget, level: Level = Level.DEEP) -> Response:
    submodel = await target.submodel()
    return json_response(paths_of(list(submodel.submodel_element), (), in_list=False, level=level))


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
    decode_object(body, model.Submodel, "Submodel")  # a 400 before the store is asked
    # Read anew for every attempt of the update: one attempt moves its elements out.
    await target.change(
        lambda held: _replace_submodel(held, decode_object(body, model.Submodel, "Submodel"))
    )
    return Response(status_code=204)


def _merged_submodel(held: model.Submodel, body: Any, merge: Callable[[Json, Any], Json]) -> None:
    _replace_submodel(held, decode_object(merge(to_json(held), body), model.Submodel, "Submodel"))


def patched(held: Json, body: Any) -> Json:
    if not isinstance(body, dict):
        raise InvalidAasRequest("a PATCH body is a JSON object", code="invalid_aas_body")
    return {**held, **body}


@submodel_router.patch("", status_code=204)
async def patch_submodel(target: WriteTarget, body: AnyBody) -> Response:
    await target.change(lambda held: _merged_submodel(held, body, patched))
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
    """Deleted by its shell's superpath, the submodel goes from the shell's references too."""
    await target.store.delete(target.org_id, Kind.SUBMODEL, target.submodel_id)
    if target.aas_id is not None:

        def forget(shell: model.Identifiable) -> None:
            assert isinstance(shell, model.AssetAdministrationShell)
            shell.submodel = {
                ref
                for ref in shell.submodel
                if not ref.key or ref.key[0].value != target.submodel_id
            }

        await target.store.update(target.org_id, Kind.SHELL, target.aas_id, forget)
    return Response(status_code=204)
