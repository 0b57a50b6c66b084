"""Part 2's serialization interface: `GET /serialization` gives an environment of the
organisation's shells and submodels (those named by `aasIds` and `submodelIds`, or all)
and its concept descriptions, as JSON or (`Accept: application/xml`) XML."""

from __future__ import annotations

import io
from typing import Annotated

from basyx.aas import model
from fastapi import APIRouter, Query, Request, Response

from .._errors import InvalidAasRequest
from .._store import Kind, StoredObject
from ._http import Part2Route, ReadOrg, StoreDep, json_response, to_json
from ._ids import decode_id

__all__ = ["router"]

router = APIRouter(route_class=Part2Route, tags=["AAS serialization (IDTA Part 2)"])

JSON = "application/json"
XML = "application/xml"


def _wants(request: Request) -> str:
    accept = request.headers.get("accept", "*/*")
    for media in (part.split(";")[0].strip().lower() for part in accept.split(",")):
        if media in (JSON, "*/*", "application/*"):
            return JSON
        if media in (XML, "text/xml"):
            return XML
    raise InvalidAasRequest(
        f"an environment is served as {JSON} or {XML}, not {accept}",
        code="aas_unsupported_format",
    )


@router.get("/serialization")
async def generate_serialization(
    request: Request, org_id: ReadOrg, store: StoreDep,
    aasIds: Annotated[list[str] | None, Query()] = None,
    submodelIds: Annotated[list[str] | None, Query()] = None,
    includeConceptDescriptions: bool = True,
) -> Response:  # fmt: skip
    media = _wants(request)

    async def chosen(kind: Kind, encoded: list[str] | None) -> list[StoredObject]:
        if not encoded:
            return await store.all(org_id, kind)
        return [await store.get(org_id, kind, decode_id(text)) for text in encoded]

    shells = await chosen(Kind.SHELL, aasIds)
    submodels = await chosen(Kind.SUBMODEL, submodelIds)
    descriptions = (
        await store.all(org_id, Kind.CONCEPT_DESCRIPTION) if includeConceptDescriptions else []
    )
    if media == XML:
        objects: model.DictIdentifiableStore[model.Identifiable] = model.DictIdentifiableStore(
            item.obj for item in [*shells, *submodels, *descriptions]
        )
        # basyx's adapters import lxml (0.3 s at every command's start): imported when used
        from basyx.aas.adapter.xml import write_aas_xml_file

        out = io.BytesIO()
        write_aas_xml_file(out, objects)
        return Response(out.getvalue(), media_type=XML)
    environment = {
        "assetAdministrationShells": [to_json(item.obj) for item in shells],
        "submodels": [to_json(item.obj) for item in submodels],
        "conceptDescriptions": [to_json(item.obj) for item in descriptions],
    }
    return json_response({key: value for key, value in environment.items() if value})
