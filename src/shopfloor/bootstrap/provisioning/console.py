"""The device templates page of the console: the templates the organisation can use
(the plant's files and its own), upload a template or a new version, every version of
one, a preview with a device's name, external id and variables, delete.

Every step is the API's own (`routes.add_template`, `template_versions`,
`preview_template`, `delete_template`) called with the caller: what
`/api/v1/provision/templates` refuses, the page refuses, in the API's words.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request
from fastapi.responses import Response
from starlette.datastructures import UploadFile

from shopfloor.api import Paging
from shopfloor.ui import (
    PAGE_SIZES,
    PREFIX,
    InvalidForm,
    SignedFormDep,
    SignedIn,
    checked,
    console_page,
    paging,
    platform_of,
    render,
)
from shopfloor.ui.capability import console_router

from . import routes

__all__ = ["router"]

router = console_router()

BASE = PREFIX + "/device-templates"


@router.get(BASE)
async def templates_page(request: Request) -> Response:
    async def build(caller: SignedIn) -> Response:
        window = paging(request)
        listing = {**window, "sort": "name"}
        page = await routes.list_templates(
            platform_of(request), caller.principal, Paging(window["offset"], window["limit"])
        )
        context = {
            "page": page, "listing": listing, "page_sizes": PAGE_SIZES,
            "max_bytes": routes.MAX_TEMPLATE_BYTES,
        }  # fmt: skip
        return render(request, "provisioning/templates.html", context, caller=caller)

    return await console_page(request, build)


@router.post(BASE)
async def upload(request: Request, sent: SignedFormDep) -> Response:
    """A template from the form's text, or from the file chosen (which wins)."""
    chosen = sent.form.get("file")
    if isinstance(chosen, UploadFile) and chosen.filename:
        body = await chosen.read(routes.MAX_TEMPLATE_BYTES + 1)
    else:
        text = sent.form.get("source", "")
        body = text.encode() if isinstance(text, str) else b""
    if not body.strip():
        problem = "paste a template or choose a file"
        raise InvalidForm(problem, details=[{"field": "source", "problem": problem}])
    stored = await routes.add_template(
        platform_of(request), sent.caller.principal, body, "application/yaml"
    )
    context = {"key": "device_templates.added", "name": stored.name, "version": stored.version}
    return render(request, "provisioning/notice.html", context, caller=sent.caller)


@router.get(BASE + "/{name}")
async def template_page(name: str, request: Request) -> Response:
    async def build(caller: SignedIn) -> Response:
        versions = await routes.template_versions(name, platform_of(request), caller.principal)
        if not versions:  # as the API's `get`: a name with no version is not there
            await routes.get_template(name, platform_of(request), caller.principal)
        context = {"name": name, "versions": list(reversed(versions))}
        return render(request, "provisioning/template.html", context, caller=caller)

    return await console_page(request, build)


def _variables(text: str) -> dict[str, str]:
    """`key=value` lines of the preview form."""
    values: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        key, equals, value = line.partition("=")
        if not equals or not key.strip():
            problem = f"line {number}: write variables as name=value, one a line"
            raise InvalidForm(problem, details=[{"field": "variables", "problem": problem}])
        values[key.strip()] = value.strip()
    return values


@router.post(BASE + "/{name}/preview")
async def preview(name: str, request: Request, sent: SignedFormDep) -> Response:
    body: routes.Variables = checked(
        routes.Variables,
        {"name": sent.text("name"), "external_id": sent.text("external_id"),
         "variables": _variables(sent.text("variables"))},
    )  # fmt: skip
    version = _version(sent.text("version"))
    plan = await routes.preview_template(
        name, body, platform_of(request), sent.caller.principal, version=version
    )
    context = {"plan": json.dumps(plan, indent=2, ensure_ascii=False, default=str)}
    return render(request, "provisioning/preview.html", context, caller=sent.caller)


@router.post(BASE + "/{name}/delete")
async def delete(name: str, request: Request, sent: SignedFormDep) -> Response:
    version = _version(sent.text("version"))
    await routes.delete_template(name, platform_of(request), sent.caller.principal, version)
    context: dict[str, Any] = {"key": "device_templates.deleted", "name": name, "version": version}
    return render(request, "provisioning/notice.html", context, caller=sent.caller)


def _version(text: str) -> int | None:
    if not text:
        return None
    if not text.isdigit() or int(text) < 1:
        problem = "a version is a whole number from 1"
        raise InvalidForm(problem, details=[{"field": "version", "problem": problem}])
    return int(text)
