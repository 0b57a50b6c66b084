"""The certificates page of the console: the organisation's certificates (paged, sorted,
filtered by entity), issue one (its key shown once when the platform made it), download
a certificate and the CA's, revoke.

Every change is the API's own route (`routes.issue_certificate`,
`routes.revoke_certificate`) called with the same body and caller, so the console
refuses what `POST /api/v1/certs` refuses (another organisation's agent, a service
certificate for anyone but a platform admin, a flow's), in the API's words.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import Request
from fastapi.responses import Response

from shopfloor.auth.capability import IdentityService
from shopfloor.ui import (
    PAGE_SIZES,
    PREFIX,
    SignedFormDep,
    SignedIn,
    checked,
    console_page,
    paging,
    platform_of,
    render,
    sort_of,
)
from shopfloor.ui.capability import console_router

from . import routes
from ._certificates import CERTIFICATE_SORTS, CertificateSort
from ._identity import EntityType
from ._x509 import REVOCATION_REASONS
from .capability import PkiService

__all__ = ["router"]

router = console_router()

BASE = PREFIX + "/certificates"
#: Who a person may have a certificate made for: a flow's is the flows service's own.
ISSUABLE = [kind for kind in EntityType if kind is not EntityType.FLOW]


def _listing(request: Request) -> dict[str, Any]:
    return {
        **paging(request),
        "sort": sort_of(request, CERTIFICATE_SORTS),
        "entity": request.query_params.get("entity", "").strip()[:128],
        "also": ("entity",),
    }


@router.get(BASE)
async def certificates_page(request: Request) -> Response:
    async def build(caller: SignedIn) -> Response:
        org_id = caller.principal.require_org()  # as `GET /api/v1/certs`
        platform = platform_of(request)
        listing = _listing(request)
        sort: CertificateSort = listing["sort"]
        page = await platform.get(PkiService).certs.list(
            org_id, entity_id=listing["entity"] or None, offset=listing["offset"],
            limit=listing["limit"], sort=sort,
        )  # fmt: skip
        things = await platform.get(IdentityService).registry.list_things(org_id, limit=100)
        context = {
            "page": page, "listing": listing, "page_sizes": PAGE_SIZES, "now": datetime.now(UTC),
            "kinds": ISSUABLE, "reasons": list(REVOCATION_REASONS), "things": things.items,
        }  # fmt: skip
        return render(request, "pki/certificates.html", context, caller=caller)

    return await console_page(request, build)


@router.post(BASE)
async def issue(request: Request, sent: SignedFormDep) -> Response:
    body: routes.IssueBody = checked(
        routes.IssueBody,
        {"entity_type": sent.text("entity_type"), "entity_id": sent.text("entity_id"),
         "ttl": sent.text("ttl") or None, "csr": sent.text("csr") or None},
    )  # fmt: skip
    issued = await routes.issue_certificate(body, platform_of(request), sent.caller.principal)
    context = {"issued": issued, "entity_type": body.entity_type, "entity_id": body.entity_id}
    return render(request, "pki/issued.html", context, caller=sent.caller)


@router.get(BASE + "/{serial}/cert.pem")
async def download(serial: str, request: Request) -> Response:
    """The certificate's PEM as a file (`GET /api/v1/certs/{serial}`'s `cert_pem`)."""

    async def build(caller: SignedIn) -> Response:
        record = await routes.get_certificate(serial, platform_of(request), caller.principal)
        return Response(
            record.cert_pem, media_type=routes.PEM,
            headers={"Content-Disposition": f'attachment; filename="{record.serial}.pem"'},
        )  # fmt: skip

    return await console_page(request, build)


@router.post(BASE + "/{serial}/revoke")
async def revoke(serial: str, request: Request, sent: SignedFormDep) -> Response:
    body: routes.RevokeBody = checked(
        routes.RevokeBody, {"reason": sent.text("reason") or "unspecified"}
    )
    record = await routes.revoke_certificate(
        serial, platform_of(request), sent.caller.principal, body=body, reason=None
    )
    context = {"record": record}
    return render(request, "pki/revoked.html", context, caller=sent.caller)
