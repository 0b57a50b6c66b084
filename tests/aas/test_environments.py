"""The environments API: files in (body or multipart) and out (by format or Accept),
supplementary files, refusals with every reason, organisations and roles."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from basyx.aas import model

from shopfloor.aas import AasStore, Kind
from shopfloor.aas._formats import Format, read_environment, write_environment
from shopfloor.app import create_app
from tests.aas.aaskit import example, serialised
from tests.aas.test_formats import BROKEN_XML, LIMIT, PDF, as_30
from tests.api.conftest import Api
from tests.serving import lifespan

URL = "/api/v1/aas/environments"
SHELL = "https://example.org/Test_AssetAdministrationShell"
XML, JSON = "application/xml", "application/json"
AASX = "application/asset-administration-shell-package"


async def _editor(api: Api, name: str = "plant") -> tuple[str, dict[str, str]]:
    org_id = await api.org(name)
    return org_id, await api.member(org_id, "admin")


def _exported(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return serialised(read_environment(response.content, max_bytes=LIMIT).objects)


async def test_an_xml_body_is_stored_and_served_back_in_every_format(api: Api) -> None:
    _, headers = await _editor(api)
    body = write_environment(example(), Format.XML)
    response = await api.http.post(URL, content=body, headers={**headers, "Content-Type": XML})
    assert response.status_code == 201, response.text
    stored = response.json()
    assert (stored["format"], stored["version"], stored["upgraded"]) == ("xml", "3.1", False)
    assert stored["ids"]["shell"] == [SHELL]
    assert len(stored["ids"]["submodel"]) == 3 and len(stored["ids"]["concept_description"]) == 1
    assert stored["files"] == []

    for params, accept, media in [
        ({"format": "json"}, None, JSON),
        ({}, XML, XML),
        ({}, f"{JSON};q=0.5, text/html, {XML}", XML),
        ({}, None, JSON),
    ]:
        wanted = {**headers, **({"Accept": accept} if accept else {})}
        exported = await api.http.get(URL, params=params, headers=wanted)
        assert exported.headers["content-type"].startswith(media)
        assert _exported(exported) == serialised(example())
    # A package of it lacks /TestFile.pdf, which was never uploaded (the next test has it).
    package = await api.http.get(URL, headers={**headers, "Accept": AASX})
    assert package.headers["content-type"] == AASX
    assert "aasx/data.xml" in zipfile.ZipFile(io.BytesIO(package.content)).namelist()


async def test_an_aasx_upload_keeps_its_files(api: Api) -> None:
    _, headers = await _editor(api)
    package = write_environment(example(), Format.AASX, PDF)
    response = await api.http.post(
        URL, files={"file": ("plant.aasx", package, "application/octet-stream")}, headers=headers
    )
    assert response.status_code == 201, response.text
    (pdf_type, pdf) = PDF["/TestFile.pdf"]
    assert response.json()["format"] == "aasx"
    assert response.json()["files"] == [
        {"path": "/TestFile.pdf", "content_type": pdf_type, "size": len(pdf)}
    ]

    served = await api.http.get("/api/v1/aas/files/TestFile.pdf", headers=headers)
    assert served.status_code == 200 and served.content == pdf
    assert served.headers["content-type"] == pdf_type
    assert served.headers["x-content-type-options"] == "nosniff"

    exported = await api.http.get(URL, params={"format": "aasx"}, headers=headers)
    env = read_environment(exported.content, max_bytes=LIMIT)
    assert serialised(env.objects) == serialised(example()) and env.files == PDF


async def test_a_file_is_served_under_any_name(api: Api) -> None:
    _, headers = await _editor(api)
    # A File names a URI path: what is not ASCII is percent-encoded.
    manual = model.File("Manual", "application/pdf", value="/aasx/files/Presse-%C3%BC%201.pdf")
    submodel = model.Submodel("https://example.org/sm/docs", submodel_element=[manual])
    assert manual.value is not None
    files = {manual.value: ("application/pdf", b"%PDF-1.7")}
    package = write_environment([submodel], Format.AASX, files)
    stored = await api.http.post(URL, content=package, headers={**headers, "Content-Type": AASX})
    assert stored.status_code == 201, stored.text
    served = await api.http.get("/api/v1/aas/files/aasx/files/Presse-ü 1.pdf", headers=headers)
    assert served.status_code == 200 and served.content == b"%PDF-1.7"
    assert (
        served.headers["content-disposition"]
        == "attachment; filename*=UTF-8''Presse-%C3%BC%201.pdf"
    )


async def test_a_30_xml_file_is_stored_upgraded(api: Api, store: AasStore) -> None:
    org_id, headers = await _editor(api)
    xml_30 = as_30(write_environment(example(), Format.XML), default_namespace=True)
    response = await api.http.post(
        URL, files={"file": ("plant.xml", xml_30, "text/xml")}, headers=headers
    )
    assert response.status_code == 201, response.text
    assert (response.json()["version"], response.json()["upgraded"]) == ("3.0", True)
    held = [held.obj for kind in Kind for held in await store.all(org_id, kind)]
    assert serialised(held) == serialised(example())


async def test_a_broken_file_is_refused_with_every_reason_and_nothing_stored(
    api: Api, store: AasStore
) -> None:
    org_id, headers = await _editor(api)
    response = await api.http.post(
        URL, content=BROKEN_XML, headers={**headers, "Content-Type": XML}
    )
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_aas_file"
    assert len(error["reasons"]) == 4
    assert any("AASd-005" in reason for reason in error["reasons"])
    # The good submodel of the file was not stored either.
    assert [await store.all(org_id, kind) for kind in Kind] == [[], [], []]
    assert _exported(await api.http.get(URL, headers=headers)) == []


async def test_without_replace_a_stored_identifier_is_a_conflict(api: Api, store: AasStore) -> None:
    org_id, headers = await _editor(api)
    body = write_environment(example(), Format.JSON)
    first = await api.http.post(URL, content=body, headers={**headers, "Content-Type": JSON})
    assert first.status_code == 201, first.text
    again = await api.http.post(
        URL, content=body, params={"replace": "false"}, headers={**headers, "Content-Type": JSON}
    )
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "aas_exists"
    replaced = await api.http.post(URL, content=body, headers={**headers, "Content-Type": JSON})
    assert replaced.status_code == 201
    assert (await store.get(org_id, Kind.SHELL, SHELL)).version == 2


async def test_an_export_of_shells_takes_their_submodels_and_concepts(api: Api) -> None:
    _, headers = await _editor(api)
    lonely = model.Submodel("https://example.org/sm/lonely", id_short="Lonely")
    other_shell = model.AssetAdministrationShell(
        model.AssetInformation(global_asset_id="https://example.org/asset/2"),
        "https://example.org/aas/2",
        submodel={model.ModelReference.from_referable(lonely)},
    )
    unrelated = model.concept.ConceptDescription("https://example.org/cd/unrelated")
    body = write_environment([*example(), other_shell, lonely, unrelated], Format.JSON)
    stored = await api.http.post(URL, content=body, headers={**headers, "Content-Type": JSON})
    assert stored.status_code == 201, stored.text

    exported = await api.http.get(URL, params={"aas_id": SHELL}, headers=headers)
    assert _exported(exported) == serialised(example())
    both = await api.http.get(
        URL, params=[("aas_id", SHELL), ("aas_id", other_shell.id)], headers=headers
    )
    assert _exported(both) == serialised([*example(), other_shell, lonely])
    missing = await api.http.get(URL, params={"aas_id": "https://nowhere"}, headers=headers)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "aas_not_found"


async def test_another_organisation_sees_nothing(api: Api) -> None:
    _, headers = await _editor(api)
    package = write_environment(example(), Format.AASX, PDF)
    stored = await api.http.post(URL, content=package, headers={**headers, "Content-Type": AASX})
    assert stored.status_code == 201, stored.text

    _, other = await _editor(api, "elsewhere")
    assert _exported(await api.http.get(URL, headers=other)) == []
    shell = await api.http.get(URL, params={"aas_id": SHELL}, headers=other)
    assert shell.status_code == 404
    pdf = await api.http.get("/api/v1/aas/files/TestFile.pdf", headers=other)
    assert pdf.status_code == 404 and pdf.json()["error"]["code"] == "aas_file_not_found"


async def test_a_viewer_reads_but_does_not_upload(api: Api) -> None:
    org_id, headers = await _editor(api)
    viewer = await api.member(org_id, "viewer")
    body = write_environment(example(), Format.XML)
    refused = await api.http.post(URL, content=body, headers={**viewer, "Content-Type": XML})
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "insufficient_role"
    await api.http.post(URL, content=body, headers={**headers, "Content-Type": XML})
    assert _exported(await api.http.get(URL, headers=viewer)) == serialised(example())
    anonymous = await api.http.get(URL)
    assert anonymous.status_code == 401


async def test_what_is_not_an_environment_is_unsupported(api: Api) -> None:
    _, headers = await _editor(api)
    response = await api.http.post(
        URL, content=b"%PDF-1.4", headers={**headers, "Content-Type": "application/pdf"}
    )
    assert response.status_code == 415
    assert response.json()["error"]["code"] == "aas_format_unsupported"
    empty = await api.http.post(
        URL,
        files={"other": (None, b"1")},
        headers=headers,  # a form without a file
    )
    assert empty.status_code == 400 and empty.json()["error"]["code"] == "aas_upload_no_file"


@pytest.fixture
async def small_api(make_settings: Callable[..., Any]) -> AsyncIterator[Api]:
    app = create_app(make_settings(aas={"max_file_bytes": 4096}))
    async with lifespan(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://shopfloor") as http:
            yield Api(http, app.state.platform, manager.app)


async def test_a_file_over_the_limit_is_refused(small_api: Api) -> None:
    _, headers = await _editor(small_api)
    body = write_environment(example(), Format.XML)
    assert len(body) > 4096
    for upload in (
        {"content": body, "headers": {**headers, "Content-Type": XML}},
        {"files": {"file": ("plant.xml", body, XML)}, "headers": headers},
    ):
        response = await small_api.http.post(URL, **upload)
        assert response.status_code == 413
        assert response.json()["error"]["code"] == "aas_file_too_large"
    package = io.BytesIO()
    with zipfile.ZipFile(package, "w", zipfile.ZIP_DEFLATED) as zipped:
        zipped.writestr("aasx/data.json", json.dumps({"padding": " " * 100_000}))
    assert len(package.getvalue()) < 4096
    unpacked = await small_api.http.post(
        URL, content=package.getvalue(), headers={**headers, "Content-Type": AASX}
    )
    assert unpacked.status_code == 413
    assert unpacked.json()["error"]["code"] == "aas_file_too_large"
