"""`/api/v1/dashboards`: the organisation's dashboards.

Every member reads and exports; creating, changing, importing and deleting need
`manage_dashboards` (engineer, admin). A document is checked whole before anything is
stored and a refusal names each wrong field (`error.details`, `field` and `problem`).
`PUT` carries the `version` it was made from: over any other the answer is `409
dashboard_version_conflict`, the change is not written and the caller reloads.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Body, Response, status
from fastapi.responses import JSONResponse

from shopfloor.api import PagingDep, PlatformDep, PrincipalDep
from shopfloor.auth import Action

from ._errors import InvalidDashboard
from ._model import DashboardDocument, check_document
from ._store import DashboardStore
from .capability import DashboardsService

__all__ = ["export_response", "import_document", "router"]

router = APIRouter(prefix="/api/v1/dashboards", tags=["dashboards"])

#: Fields of an answer or an export that an imported document may carry; not its own.
_NOT_DOCUMENT = ("id", "version", "created_at", "updated_at")


def _store(platform: PlatformDep) -> DashboardStore:
    return platform.get(DashboardsService).store


def import_document(raw: object) -> DashboardDocument:
    """An exported (or hand-written) document, whatever id and version it came with."""
    if isinstance(raw, dict):
        raw = {k: v for k, v in raw.items() if k not in _NOT_DOCUMENT}
    return check_document(raw)


def export_response(document: DashboardDocument) -> JSONResponse:
    """The document as a file to save (`<title>.dashboard.json`)."""
    stem = re.sub(r"[^A-Za-z0-9_-]+", "-", document.title).strip("-")[:60] or "dashboard"
    return JSONResponse(
        document.to_json(),
        headers={"Content-Disposition": f'attachment; filename="{stem}.dashboard.json"'},
    )


@router.get("")
async def list_dashboards(
    platform: PlatformDep, principal: PrincipalDep, paging: PagingDep
) -> dict[str, Any]:
    """The organisation's dashboards by title, paged (`offset`, `limit`)."""
    org_id = principal.require_org()
    page = await _store(platform).page(org_id, offset=paging.offset, limit=paging.limit)
    return {
        "total": page.total, "offset": paging.offset, "limit": paging.limit,
        "items": [
            {
                "id": d.id, "title": d.document.title, "version": d.version,
                "panels": len(d.document.panels), "updated_at": d.updated_at.isoformat(),
            }
            for d in page.items
        ],
    }  # fmt: skip


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_dashboard(
    body: Annotated[dict[str, Any], Body()],
    platform: PlatformDep,
    principal: PrincipalDep,
) -> dict[str, Any]:
    """A new dashboard from a document (`title` at least); answered with its id and
    version 1."""
    org_id = principal.require(Action.MANAGE_DASHBOARDS)
    dashboard = await _store(platform).create(org_id, check_document(body))
    return dashboard.to_json()


@router.post("/import", status_code=status.HTTP_201_CREATED)
async def import_dashboard(
    body: Annotated[dict[str, Any], Body()], platform: PlatformDep, principal: PrincipalDep
) -> dict[str, Any]:
    """A new dashboard (a new id) from an exported document; an older `schemaVersion` is
    migrated, a newer one refused (`dashboard_schema_unsupported`)."""
    org_id = principal.require(Action.MANAGE_DASHBOARDS)
    dashboard = await _store(platform).create(org_id, import_document(body))
    return dashboard.to_json()


@router.get("/{dashboard_id}")
async def get_dashboard(
    dashboard_id: str, platform: PlatformDep, principal: PrincipalDep
) -> dict[str, Any]:
    dashboard = await _store(platform).get(principal.require_org(), dashboard_id)
    return dashboard.to_json()


@router.put("/{dashboard_id}")
async def put_dashboard(
    dashboard_id: str,
    body: Annotated[dict[str, Any], Body()],
    platform: PlatformDep,
    principal: PrincipalDep,
) -> dict[str, Any]:
    """The whole document with the `version` it was made from; answered with the new
    version (one more), or `409 dashboard_version_conflict`."""
    org_id = principal.require(Action.MANAGE_DASHBOARDS)
    version = body.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        problem = "the version the change was made from (a whole number from 1)"
        raise InvalidDashboard(
            f"version: {problem}", details=[{"field": "version", "problem": problem}]
        )
    document = import_document(body)
    dashboard = await _store(platform).put(org_id, dashboard_id, document, version=version)
    return dashboard.to_json()


@router.delete("/{dashboard_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_dashboard(
    dashboard_id: str, platform: PlatformDep, principal: PrincipalDep
) -> Response:
    org_id = principal.require(Action.MANAGE_DASHBOARDS)
    await _store(platform).delete(org_id, dashboard_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/{dashboard_id}/export", response_model=None)
async def export_dashboard(
    dashboard_id: str, platform: PlatformDep, principal: PrincipalDep
) -> JSONResponse:
    """The document alone (no id, no version), as a file to import elsewhere."""
    dashboard = await _store(platform).get(principal.require_org(), dashboard_id)
    return export_response(dashboard.document)
