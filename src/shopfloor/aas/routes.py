"""AAS environment routes (`/api/v1/aas`): whole environments in and out as XML, JSON
or AASX (`_formats`), and the supplementary files their File elements name.

Everything is the caller's organisation's; uploading needs `manage_registry`, reading
any member. A file is read, and refused whole with every defect, before anything is
stored; then it is stored in one transaction.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import quote, unquote

from basyx.aas import model
from basyx.aas.util import traversal
from fastapi import APIRouter, Query, Request, Response, status
from pydantic import BaseModel, Field

from shopfloor.api import PlatformDep, PrincipalDep, read_bounded
from shopfloor.auth import Action
from shopfloor.core import ErrorKind

from ._errors import AasNotFound, InvalidAasFile, InvalidAasRequest
from ._formats import MEDIA_TYPES, Format, read_environment, write_environment
from ._multipart import field_name, form_parts
from ._store import Kind
from .capability import AasService

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/aas", tags=["aas"])

#: What a URI path holds unencoded besides letters and digits (RFC 3986 pchar and "/").
_PATH_SAFE = "/-._~!$&'()*+,;=:@"
#: Room for a multipart envelope around a file of the largest size.
MULTIPART_OVERHEAD = 64 * 1024
_UPLOAD_TYPES = {media: {"schema": {"type": "string", "format": "binary"}} for media in
                 (*MEDIA_TYPES.values(), "multipart/form-data")}  # fmt: skip


class FileOut(BaseModel):
    path: str
    content_type: str
    size: int


class StoredOut(BaseModel):
    format: Format
    version: str = Field(
        description="The metamodel version it was read as: 3.0 for a 3.0 XML file (or "
        "package), else 3.1 (a JSON file names none; 3.0 JSON is valid 3.1)."
    )
    upgraded: bool = Field(description="True: read as 3.0 and stored as 3.1.")
    ids: dict[Kind, list[str]] = Field(description="The identifiers stored, by kind.")
    files: list[FileOut] = Field(description="The supplementary files stored (AASX).")


def _service(platform: PlatformDep) -> AasService:
    return platform.get(AasService)


@router.post(
    "/environments",
    response_model=StoredOut,
    status_code=status.HTTP_201_CREATED,
    openapi_extra={"requestBody": {"required": True, "content": _UPLOAD_TYPES}},
)
async def upload_environment(
    request: Request,
    platform: PlatformDep,
    principal: PrincipalDep,
    replace: Annotated[
        bool, Query(description="False: an identifier that is stored already is a 409.")
    ] = True,
) -> StoredOut:
    """Store every shell, submodel, concept description and supplementary file of an
    XML, JSON or AASX file, sent as the body or as a multipart upload (`file`)."""
    org_id = principal.require(Action.MANAGE_REGISTRY)
    service = _service(platform)
    limit = service.settings.max_file_bytes
    upload = await _upload(request, limit)
    env = await asyncio.to_thread(
        read_environment, upload.data, content_type=upload.content_type,
        filename=upload.filename, max_bytes=limit,
    )  # fmt: skip
    written = await service.store.put_environment(org_id, env.objects, env.files, replace=replace)
    return StoredOut(
        format=env.format, version=env.version, upgraded=env.upgraded, ids=written,
        files=[FileOut(path=path, content_type=content_type, size=len(data))
               for path, (content_type, data) in env.files.items()],
    )  # fmt: skip


@router.get(
    "/environments",
    response_class=Response,
    responses={200: {"content": {media: {} for media in MEDIA_TYPES.values()}}},
)
async def export_environment(
    request: Request,
    platform: PlatformDep,
    principal: PrincipalDep,
    format: Annotated[
        Format | None, Query(description="xml, json or aasx; else the Accept header's.")
    ] = None,
    aas_id: Annotated[
        list[str] | None,
        Query(
            description="Only these shells, their submodels and the concept "
            "descriptions they reference (repeat for more)."
        ),
    ] = None,
) -> Response:
    """The organisation's environment (or the shells asked for) as one file."""
    org_id = principal.require_org()
    store = _service(platform).store
    fmt = format or _accepted(request.headers.get("accept", ""))
    objects = await store.environment(org_id, aas_id)
    files: dict[str, tuple[str, bytes]] = {}
    if fmt is Format.AASX:
        held = await store.files(org_id, _file_paths(objects))
        files = {path: (f.content_type, f.data) for path, f in held.items()}
    data = await asyncio.to_thread(write_environment, objects, fmt, files)
    return Response(
        data, media_type=fmt.media_type,
        headers={"Content-Disposition": f'attachment; filename="environment.{fmt.value}"'},
    )  # fmt: skip


@router.get("/files/{path:path}", response_class=Response)
async def get_file(path: str, platform: PlatformDep, principal: PrincipalDep) -> Response:
    """A supplementary file by its package path (`/aasx/files/manual.pdf` is
    `/api/v1/aas/files/aasx/files/manual.pdf`)."""
    org_id = principal.require_org()
    store = _service(platform).store
    path = "/" + path.lstrip("/")
    try:
        held = await store.file(org_id, path)
    except AasNotFound:
        # A File names a URI path (`Presse-%C3%BC.pdf`); the URL's arrives decoded.
        encoded = quote(path, safe=_PATH_SAFE)
        if encoded == path:
            raise
        held = await store.file(org_id, encoded)
    name = quote(unquote(held.path.rsplit("/", 1)[-1]), safe="")
    return Response(
        held.data, media_type=held.content_type,
        # What members uploaded is never rendered as a page of this origin.
        headers={"Content-Disposition": f"attachment; filename*=UTF-8''{name}",
                 "X-Content-Type-Options": "nosniff"},
    )  # fmt: skip


# -- uploads ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Upload:
    data: bytes
    content_type: str | None
    filename: str | None


async def _upload(request: Request, limit: int) -> Upload:
    """The file of the body, or of its multipart `file` field (or first file)."""
    content_type = request.headers.get("content-type")
    multipart = (content_type or "").lower().startswith("multipart/form-data")
    body = await _body(request, limit + MULTIPART_OVERHEAD if multipart else limit)
    if not multipart:
        return Upload(body, content_type, None)
    assert content_type is not None
    parts = form_parts(content_type, body)
    chosen = next(
        (p for p in parts if field_name(p) == "file"),
        next((p for p in parts if p.get_filename()), None),
    )
    if chosen is None:
        raise InvalidAasRequest(
            "a multipart upload carries the file in a field `file`", code="aas_upload_no_file"
        )
    payload = chosen.get_payload(decode=True)
    data = payload if isinstance(payload, bytes) else b""
    return Upload(data, chosen.get("content-type"), chosen.get_filename())


async def _body(request: Request, limit: int) -> bytes:
    """The body, refused as soon as it is over `limit` (it is never held whole)."""
    return await read_bounded(
        request, limit,
        lambda: InvalidAasFile(
            f"the file is over the limit of {limit} bytes",
            code="aas_file_too_large", kind=ErrorKind.TOO_LARGE,
        ),
    )  # fmt: skip


# -- exports ---------------------------------------------------------------------------


def _accepted(accept: str) -> Format:
    """The format the Accept header prefers (by q, then order); JSON if it names none."""
    wanted: list[tuple[float, int, str]] = []
    for index, item in enumerate(accept.split(",")):
        media, *params = (piece.strip() for piece in item.split(";"))
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if media and q > 0:
            wanted.append((-q, index, media.lower()))
    by_media = {media: fmt for fmt, media in MEDIA_TYPES.items()}
    by_media |= {"text/xml": Format.XML, "application/asset-administration-shell-package+xml":
                 Format.AASX}  # fmt: skip
    for _q, _index, media in sorted(wanted):
        if media in by_media:
            return by_media[media]
    return Format.JSON


def _file_paths(objects: Iterable[model.Identifiable]) -> Iterator[str]:
    """The paths the File elements and thumbnails name: the files an AASX carries."""
    for obj in objects:
        if isinstance(obj, model.AssetAdministrationShell):
            thumbnail = obj.asset_information.default_thumbnail
            if thumbnail is not None and thumbnail.path:
                yield thumbnail.path
        elif isinstance(obj, model.Submodel):
            for element in traversal.walk_submodel(obj):
                if isinstance(element, model.File) and element.value:
                    yield element.value
