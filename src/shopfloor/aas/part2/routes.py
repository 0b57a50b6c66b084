"""The AAS HTTP API (IDTA-01002 Part 2, v3.1) under `/aas/api/v3.0` and its alias
`/aas/api/v3`: the shell and submodel repositories, the submodel interface of each
submodel (also under its shell: `/shells/{aasIdentifier}/submodels/{submodelIdentifier}`),
`/serialization` and `/description`. Same sign-in and organisations as the rest of the
API; Part 2's error body (`_http.Part2Route`)."""

from __future__ import annotations

from fastapi import APIRouter, Response

from ._elements import router as elements_router
from ._http import Part2Route, json_response
from ._operations import router as operations_router
from ._serialization import router as serialization_router
from ._shells import router as shells_router
from ._submodels import repository_router, submodel_router

__all__ = ["PROFILES", "router"]

_PROFILE = "https://admin-shell.io/aas/API/3/{version}/{spec}/SSP-{number}"
#: The service profiles answered: full (001) and read (002) of each repository and of
#: the submodel interface, as Part 2 v3.0 and v3.1 name them.
PROFILES = tuple(
    _PROFILE.format(version=version, spec=spec, number=number)
    for version in ("0", "1")
    for spec in (
        "AssetAdministrationShellRepositoryServiceSpecification",
        "SubmodelRepositoryServiceSpecification",
    )
    for number in ("001", "002")
)

_api = APIRouter(route_class=Part2Route)


@_api.get("/description")
async def get_description() -> Response:
    """The service profiles this server answers (public, as Part 2 has it)."""
    return json_response({"profiles": list(PROFILES)})


_api.include_router(shells_router)
_api.include_router(serialization_router)
_api.include_router(repository_router)
for _prefix in (
    "/submodels/{submodelIdentifier}",
    "/shells/{aasIdentifier}/submodels/{submodelIdentifier}",
):
    for _router in (submodel_router, elements_router, operations_router):
        _api.include_router(_router, prefix=_prefix)

router = APIRouter()
router.include_router(_api, prefix="/aas/api/v3.0")
router.include_router(_api, prefix="/aas/api/v3", include_in_schema=False)
