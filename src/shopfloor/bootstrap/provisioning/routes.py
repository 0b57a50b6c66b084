"""Provisioning routes: device-type templates, their preview, and provisioning a device."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, status
from pydantic import BaseModel, Field

from shopfloor.api import PageOut, PagingDep, PlatformDep, PrincipalDep
from shopfloor.auth import Action
from shopfloor.core import ErrorKind

from ..routes import ConfigOut, config_out
from ._errors import InvalidTemplate
from ._provision import ProvisionRequest
from ._store import StoredTemplate
from .capability import ProvisionService

router = APIRouter(prefix="/api/v1/provision", tags=["provisioning"])

#: Largest template body taken (a template is a page of YAML, not a data file).
MAX_TEMPLATE_BYTES = 64 * 1024
_YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml")

Version = Annotated[int | None, Query(ge=1, description="A version; the latest if absent.")]


class TemplateOut(BaseModel):
    name: str
    version: int
    description: str
    origin: str = Field(description="`file` (on the server, every organisation's) or `api`.")
    placeholders: list[str]
    created_at: datetime | None
    source: str = Field(description="The template as stored (YAML).")


class Variables(BaseModel):
    name: str = Field(min_length=1, max_length=200, description="The device's name.")
    external_id: str = Field(min_length=1, max_length=256)
    variables: dict[str, Annotated[str, Field(max_length=1000)]] = Field(
        default_factory=dict, max_length=64
    )


class ProvisionBody(Variables):
    external_key: str = Field(min_length=8, max_length=256)
    template: str | None = Field(
        default=None, max_length=80, description="`name` (latest version) or `name@version`."
    )


class ChannelOut(BaseModel):
    id: str
    name: str
    created: bool = Field(description="Created by this provisioning (else reused by name).")


class ThingOut(BaseModel):
    id: str
    name: str
    key: str
    metadata: dict[str, Any]
    tags: list[str]


class CertificateOut(BaseModel):
    serial: str
    cert_pem: str
    ca_pem: str
    expires_at: datetime


class ProvisionedOut(BaseModel):
    template: str
    version: int
    thing: ThingOut
    channels: list[ChannelOut]
    bootstrap: ConfigOut
    certificate: CertificateOut | None = Field(
        description="The device fetches its key with its bootstrap config; it is not shown here."
    )


def _template_out(stored: StoredTemplate) -> TemplateOut:
    template = stored.template
    return TemplateOut(
        name=template.name,
        version=template.version,
        description=template.description,
        origin=stored.origin,
        placeholders=sorted(template.placeholders()),
        created_at=stored.created_at,
        source=stored.source,
    )


def _ref(name: str, version: int | None) -> str:
    """The store's reference of a template version: `name` (the latest) or `name@N`."""
    return name if version is None else f"{name}@{version}"


def _service(platform: PlatformDep) -> ProvisionService:
    return platform.get(ProvisionService)


@router.get("/templates", response_model=PageOut[TemplateOut])
async def list_templates(
    platform: PlatformDep, principal: PrincipalDep, paging: PagingDep
) -> PageOut[TemplateOut]:
    """The latest version of every template the organisation can use."""
    org_id = principal.require(Action.READ)
    latest = await _service(platform).templates.latest(org_id)
    items = [_template_out(t) for t in latest[paging.offset : paging.offset + paging.limit]]
    return PageOut(total=len(latest), offset=paging.offset, limit=paging.limit, items=items)


@router.post("/templates", response_model=TemplateOut, status_code=status.HTTP_201_CREATED)
async def create_template(
    request: Request, platform: PlatformDep, principal: PrincipalDep
) -> TemplateOut:
    """A new template, or a new version of one: YAML (`application/yaml`) or JSON."""
    media = request.headers.get("content-type", "")
    return await add_template(platform, principal, await request.body(), media)


async def add_template(
    platform: PlatformDep, principal: PrincipalDep, body: bytes, media_type: str
) -> TemplateOut:
    """`POST /templates` of a body already read (the console's upload form sends one)."""
    org_id = principal.require(Action.MANAGE_REGISTRY)
    source = template_source(body, media_type)
    stored = await _service(platform).templates.add(org_id, source, created_by=principal.subject)
    return _template_out(stored)


@router.get("/templates/{name}", response_model=TemplateOut)
async def get_template(
    name: str, platform: PlatformDep, principal: PrincipalDep, version: Version = None
) -> TemplateOut:
    org_id = principal.require(Action.READ)
    return _template_out(await _service(platform).templates.get(org_id, _ref(name, version)))


@router.get("/templates/{name}/versions", response_model=list[TemplateOut])
async def template_versions(
    name: str, platform: PlatformDep, principal: PrincipalDep
) -> list[TemplateOut]:
    org_id = principal.require(Action.READ)
    return [_template_out(t) for t in await _service(platform).templates.versions(org_id, name)]


@router.delete("/templates/{name}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_template(
    name: str, platform: PlatformDep, principal: PrincipalDep, version: Version = None
) -> None:
    """Delete one version, or every version. Devices provisioned from it keep what they got."""
    await _service(platform).templates.delete(
        principal.require(Action.MANAGE_REGISTRY), name, version
    )


@router.post("/templates/{name}/preview")
async def preview_template(
    name: str,
    body: Variables,
    platform: PlatformDep,
    principal: PrincipalDep,
    version: Version = None,
) -> dict[str, Any]:
    """What provisioning one device with this template would create; nothing is created."""
    org_id = principal.require(Action.READ)
    request = ProvisionRequest(
        external_id=body.external_id, external_key="", name=body.name,
        template=_ref(name, version),
        variables=body.variables,
    )  # fmt: skip
    plan = await _service(platform).provisioner.plan(org_id, request)
    return plan.to_data()


@router.post("", response_model=ProvisionedOut, status_code=status.HTTP_201_CREATED)
async def provision(
    body: ProvisionBody, platform: PlatformDep, principal: PrincipalDep
) -> ProvisionedOut:
    """Create a device's thing, channels, connections, bootstrap config and certificate.

    All of it or nothing: a failure half-way leaves nothing behind.
    """
    org_id = principal.require(Action.MANAGE_REGISTRY)
    service = _service(platform)
    done = await service.provisioner.provision(
        org_id,
        ProvisionRequest(
            external_id=body.external_id,
            external_key=body.external_key,
            name=body.name,
            template=body.template,
            variables=body.variables,
        ),
    )
    certificate = done.certificate
    return ProvisionedOut(
        template=done.plan.template,
        version=done.plan.version,
        thing=ThingOut(
            id=done.thing.id,
            name=done.thing.name,
            key=done.thing_key,
            metadata=dict(done.thing.metadata),
            tags=list(done.thing.tags),
        ),
        channels=[ChannelOut(id=c.id, name=c.name, created=new) for c, new in done.channels],
        bootstrap=config_out(done.config),
        certificate=None
        if certificate is None
        else CertificateOut(
            serial=certificate.serial,
            cert_pem=certificate.cert_pem,
            ca_pem=certificate.ca_pem,
            expires_at=certificate.expires_at,
        ),
    )


def template_source(body: bytes, media_type: str) -> str:
    """A template's text: at most `MAX_TEMPLATE_BYTES` of UTF-8, sent as YAML or JSON."""
    if len(body) > MAX_TEMPLATE_BYTES:
        raise InvalidTemplate(
            f"a template is at most {MAX_TEMPLATE_BYTES // 1024} KiB",
            code="template_too_large",
            kind=ErrorKind.TOO_LARGE,
        )
    media = media_type.split(";", 1)[0].strip().lower()
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidTemplate("a template is UTF-8 text") from exc
    if media in _YAML_TYPES or media == "application/json":
        return text  # JSON is YAML; stored as sent
    raise InvalidTemplate(
        "send a template as application/yaml or application/json",
        code="template_media_type",
        kind=ErrorKind.UNSUPPORTED,
    )
