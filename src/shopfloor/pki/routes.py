"""Certificates routes: issue, list, revoke and renew; the CA certificate and CRL (public)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Response, status
from pydantic import BaseModel, ConfigDict, Field

from shopfloor.api import PageOut, PagingDep, PlatformDep, PrincipalDep
from shopfloor.auth import Action, Forbidden

from ._certificates import CertificateRecord, IssuedCertificate
from ._errors import InvalidCertificateRequest
from ._identity import Entity, EntityType
from ._x509 import parse_duration
from .capability import PkiService

router = APIRouter(prefix="/api/v1")

PEM = "application/x-pem-file"
#: Who may issue and revoke: the roles that manage the registry (admins, engineers).
MANAGE = Action.MANAGE_REGISTRY

Ttl = Annotated[
    int | str | None,
    Field(
        description="Life: seconds, or a duration such as `720h`, `30m` (default: the "
        "server's SHOPFLOOR_CA_DEFAULT_TTL)."
    ),
]
Csr = Annotated[
    str | None,
    Field(max_length=16_384, description="PEM CSR; without one a key is made and returned."),
]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class IssueBody(_Body):
    entity_type: EntityType
    entity_id: Annotated[str, Field(min_length=1, max_length=128)]
    ttl: Ttl = None
    csr: Csr = None


class RenewBody(_Body):
    ttl: Ttl = None
    csr: Csr = None


class RevokeBody(_Body):
    reason: Annotated[str, Field(max_length=40)] = "unspecified"


class IssuedOut(BaseModel):
    serial: str
    cert_pem: str
    key_pem: str | None = Field(description="Only when the server made the key; shown once.")
    ca_pem: str
    expires_at: datetime


class CertificateOut(BaseModel):
    serial: str
    entity_type: EntityType
    entity_id: str
    org_id: str | None
    issued_at: datetime
    expires_at: datetime
    backend: str
    cert_pem: str
    revoked_at: datetime | None
    revocation_reason: str | None


def _issued_out(issued: IssuedCertificate) -> IssuedOut:
    return IssuedOut(
        serial=issued.serial,
        cert_pem=issued.cert_pem,
        key_pem=issued.key_pem,
        ca_pem=issued.ca_pem,
        expires_at=issued.expires_at,
    )


def _record_out(record: CertificateRecord) -> CertificateOut:
    return CertificateOut(
        serial=record.serial,
        entity_type=record.entity.type,
        entity_id=record.entity.id,
        org_id=record.org_id,
        issued_at=record.issued_at,
        expires_at=record.expires_at,
        backend=record.backend,
        cert_pem=record.cert_pem,
        revoked_at=record.revoked_at,
        revocation_reason=record.revocation_reason,
    )


def _not_a_flow(entity_type: EntityType) -> None:
    """A flow's certificate is made by the flows service for itself, its key held in
    memory only (docs/flows.md): nobody is handed one, through the API either."""
    if entity_type is EntityType.FLOW:
        raise InvalidCertificateRequest(
            "flow certificates are made by the flows service for its own calls only",
            code="invalid_entity_type",
        )


def _may_name(entity: Entity, org_id: str, *, platform_admin: bool) -> None:
    """Whom the caller may have a certificate made for: its organisation's things (the
    registry checks) and agents, and, as a platform admin, the platform's services.

    An agent of the agents service is `<org_id>/<name>`, and its peers believe the
    organisation its certificate names: a certificate naming another organisation's
    agent would let its holder call that organisation's agents as one of theirs."""
    organisation, named, _ = entity.id.partition("/")
    if entity.type is EntityType.AGENT and named and organisation != org_id:
        raise Forbidden(
            f"agent {entity.id!r} is not of your organisation ({org_id}/<name> is)",
            code="entity_of_another_organisation",
        )
    if entity.type is EntityType.SERVICE and not platform_admin:
        raise Forbidden(
            "certificates of the platform's services are a platform admin's to issue",
            code="platform_admin_required",
        )


def _ttl(service: PkiService, value: int | str | None) -> timedelta:
    return service.settings.default_ttl if value is None else parse_duration(value)


@router.post(
    "/certs", response_model=IssuedOut, status_code=status.HTTP_201_CREATED, tags=["certificates"]
)
async def issue_certificate(
    body: IssueBody, platform: PlatformDep, principal: PrincipalDep
) -> IssuedOut:
    """Issue a client certificate to a thing of the organisation, an agent or a service."""
    org_id = principal.require(MANAGE)
    _not_a_flow(body.entity_type)
    entity = Entity(body.entity_type, body.entity_id)  # invalid_entity_id
    _may_name(entity, org_id, platform_admin=principal.platform_admin)
    service = platform.get(PkiService)
    issued = await service.certs.issue(
        entity,
        ttl=_ttl(service, body.ttl),
        csr_pem=body.csr,
        org_id=org_id,
    )
    return _issued_out(issued)


@router.get("/certs", response_model=PageOut[CertificateOut], tags=["certificates"])
async def list_certificates(
    platform: PlatformDep,
    principal: PrincipalDep,
    paging: PagingDep,
    entity_id: Annotated[str | None, Query(max_length=128)] = None,
) -> PageOut[Any]:
    page = await platform.get(PkiService).certs.list(
        principal.require_org(), entity_id=entity_id, offset=paging.offset, limit=paging.limit
    )
    items = [_record_out(record) for record in page.items]
    return PageOut(total=page.total, offset=page.offset, limit=page.limit, items=items)


@router.get("/certs/{serial}", response_model=CertificateOut, tags=["certificates"])
async def get_certificate(
    serial: str, platform: PlatformDep, principal: PrincipalDep
) -> CertificateOut:
    record = await platform.get(PkiService).certs.get(principal.require_org(), serial)
    return _record_out(record)


@router.delete("/certs/{serial}", response_model=CertificateOut, tags=["certificates"])
async def revoke_certificate(
    serial: str,
    platform: PlatformDep,
    principal: PrincipalDep,
    body: Annotated[RevokeBody | None, Body()] = None,
    reason: Annotated[str | None, Query(max_length=40)] = None,
) -> CertificateOut:
    """Revoke: refused by every process at once, listed in the CRL from now on."""
    org_id = principal.require(MANAGE)
    if body is not None and reason is not None and body.reason != reason:
        raise InvalidCertificateRequest(
            "reason is given twice, differently", code="invalid_revocation_reason"
        )
    chosen = reason or (body.reason if body is not None else "unspecified")
    record = await platform.get(PkiService).certs.revoke(org_id, serial, chosen)
    return _record_out(record)


@router.post(
    "/certs/{serial}/renew",
    response_model=IssuedOut,
    status_code=status.HTTP_201_CREATED,
    tags=["certificates"],
)
async def renew_certificate(
    serial: str,
    platform: PlatformDep,
    principal: PrincipalDep,
    body: Annotated[RenewBody | None, Body()] = None,
) -> IssuedOut:
    """A new certificate for the same entity; the old one stays valid until it expires
    unless it is revoked."""
    org_id = principal.require(MANAGE)
    service = platform.get(PkiService)
    body = body or RenewBody()
    _not_a_flow((await service.certs.get(org_id, serial)).entity.type)
    issued = await service.certs.renew(
        org_id, serial, ttl=_ttl(service, body.ttl), csr_pem=body.csr
    )
    return _issued_out(issued)


@router.get("/pki/ca.pem", response_class=Response, tags=["certificates"])
async def ca_certificate(platform: PlatformDep) -> Response:
    """The CA certificate (no credentials needed)."""
    return Response(await platform.get(PkiService).certs.ca_pem(), media_type=PEM)


@router.get("/pki/crl.pem", response_class=Response, tags=["certificates"])
async def revocation_list(platform: PlatformDep) -> Response:
    """The CRL, signed now (no credentials needed)."""
    return Response(await platform.get(PkiService).certs.crl_pem(), media_type=PEM)
