"""Environments as files: the full example through XML, JSON and AASX unchanged, v3.0
files taken (XML upgraded), every defect of a broken file named, limits and formats."""

from __future__ import annotations

import io
import json
import logging
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from xml.etree import ElementTree

import pytest
from aas_test_engines import file as idta_test_engine
from lxml import etree  # type: ignore[import-untyped]

from shopfloor.aas import InvalidAasFile
from shopfloor.aas._formats import Format, detect_format, read_environment, write_environment
from shopfloor.core import ErrorKind
from tests.aas.aaskit import example, serialised

NS_31 = "https://admin-shell.io/aas/3/1"
NS_30 = "https://admin-shell.io/aas/3/0"
LIMIT = 16 * 1024 * 1024
#: The File element `ExampleFile` of the full example names it.
PDF = {"/TestFile.pdf": ("application/pdf", b"%PDF-1.4\n% a test file\n%%EOF\n")}


def as_30(xml_31: bytes, *, default_namespace: bool = False) -> bytes:
    """The 3.1 XML as a 3.0 tool writes it.

    basyx-python-sdk 1.x (metamodel 3.0) wrote the same elements as 2.x under
    `xmlns:aas="https://admin-shell.io/aas/3/0"`: the XML readers and writers of both
    name the same tags and enumerations (compared in their sources), and 1.x's own 3.0
    full example (its compliance-tool test file, not copied here) reads in 2.x once
    `upgrade_xml` renamed its namespace. AASX Package Explorer writes the
    namespace as the default one with an `xsi:schemaLocation`. The test below has the
    IDTA's own 3.0 test engine check that the result is 3.0 XML.
    """
    root = etree.fromstring(xml_31)
    old, new = "{" + NS_31 + "}", "{" + NS_30 + "}"
    xsi = "http://www.w3.org/2001/XMLSchema-instance"
    nsmap: dict[str | None, str] = (
        {None: NS_30, "xsi": xsi} if default_namespace else {"aas": NS_30}
    )
    attrib = {f"{{{xsi}}}schemaLocation": f"{NS_30} AAS.xsd"} if default_namespace else {}
    rewritten = etree.Element(new + "environment", attrib=attrib, nsmap=nsmap)
    rewritten.extend(list(root))
    for element in rewritten.iter():
        element.tag = new + element.tag[len(old) :]
    etree.cleanup_namespaces(rewritten)
    result: bytes = etree.tostring(rewritten, xml_declaration=True, encoding="UTF-8")
    assert NS_31.encode() not in result
    return result


def meta_model_check(xml: bytes) -> bool:
    """Whether the IDTA's 3.0 test engine finds `xml` a 3.0 environment (its separate
    constraint checks fault basyx's example itself, in 3.0 as in 3.1)."""
    # The engine takes the standard library's tree; `xml` is this test's own.
    result = idta_test_engine.check_xml_data(ElementTree.fromstring(xml))  # noqa: S314
    (meta_model,) = [r for r in result.sub_results if r.message == "Check meta model"]
    return bool(meta_model.ok())


# -- round trips -----------------------------------------------------------------------


@pytest.mark.parametrize("fmt", list(Format))
def test_the_full_example_round_trips_unchanged(fmt: Format) -> None:
    data = write_environment(example(), fmt, PDF)
    env = read_environment(data, max_bytes=LIMIT)  # the format sniffed from the content
    assert (env.format, env.version, env.upgraded) == (fmt, "3.1", False)
    assert serialised(env.objects) == serialised(example())
    assert env.files == (PDF if fmt is Format.AASX else {})
    # And again: what was read writes the same file.
    again = read_environment(write_environment(env.objects, fmt, env.files), max_bytes=LIMIT)
    assert serialised(again.objects) == serialised(example())


def test_the_format_comes_from_the_content_type_then_the_name_then_the_content() -> None:
    xml = write_environment(example(), Format.XML)
    assert detect_format(xml, content_type="application/json; charset=utf-8") is Format.JSON
    assert detect_format(xml, filename="plant.AASX") is Format.AASX
    assert detect_format(xml, content_type="application/octet-stream") is Format.XML
    with pytest.raises(InvalidAasFile) as unknown:
        read_environment(b"%PDF-1.4", content_type="application/pdf", max_bytes=LIMIT)
    assert unknown.value.code == "aas_format_unsupported"
    assert unknown.value.kind is ErrorKind.UNSUPPORTED


# -- version 3.0 -----------------------------------------------------------------------


@pytest.mark.parametrize("default_namespace", [False, True], ids=["basyx-1", "package-explorer"])
def test_a_30_xml_file_is_upgraded(default_namespace: bool) -> None:
    xml_31 = write_environment(example(), Format.XML)
    xml_30 = as_30(xml_31, default_namespace=default_namespace)
    assert meta_model_check(xml_30) and not meta_model_check(xml_31)

    env = read_environment(xml_30, max_bytes=LIMIT)
    assert (env.format, env.version, env.upgraded) == (Format.XML, "3.0", True)
    assert serialised(env.objects) == serialised(example())


def test_a_30_json_file_is_read_as_it_is() -> None:
    # JSON names no version, and 3.1 only relaxes 3.0: the example's JSON (nothing in it
    # uses what 3.1 added) is a 3.0 file too.
    data = write_environment(example(), Format.JSON)
    env = read_environment(data, max_bytes=LIMIT)
    assert (env.version, env.upgraded) == ("3.1", False)
    assert serialised(env.objects) == serialised(example())


def test_the_30_xml_part_of_a_package_is_upgraded_and_its_files_kept() -> None:
    package = zipfile.ZipFile(io.BytesIO(write_environment(example(), Format.AASX, PDF)))
    written = io.BytesIO()
    with zipfile.ZipFile(written, "w") as downgraded:
        for member in package.infolist():
            content = package.read(member)
            if member.filename == "aasx/data.xml":
                content = as_30(content)
            downgraded.writestr(member, content)
    env = read_environment(written.getvalue(), filename="plant.aasx", max_bytes=LIMIT)
    assert (env.format, env.version, env.upgraded) == (Format.AASX, "3.0", True)
    assert serialised(env.objects) == serialised(example())
    assert env.files == PDF


def test_another_version_is_refused_naming_it() -> None:
    xml = write_environment(example(), Format.XML).replace(
        NS_31.encode(), b"http://www.admin-shell.io/aas/2/0"
    )
    with pytest.raises(InvalidAasFile) as refused:
        read_environment(xml, max_bytes=LIMIT)
    assert refused.value.code == "aas_version_unsupported"
    assert refused.value.reasons == (
        "the environment's namespace is http://www.admin-shell.io/aas/2/0",
    )


# -- defects ---------------------------------------------------------------------------

BROKEN_XML = f"""<?xml version="1.0" encoding="UTF-8"?>
<aas:environment xmlns:aas="{NS_31}">
  <aas:assetAdministrationShells>
    <aas:assetAdministrationShell>
      <aas:idShort>NoAssetInformation</aas:idShort>
      <aas:id>https://example.org/aas/1</aas:id>
    </aas:assetAdministrationShell>
  </aas:assetAdministrationShells>
  <aas:submodels>
    <aas:submodel>
      <aas:idShort>Good</aas:idShort>
      <aas:id>https://example.org/sm/good</aas:id>
    </aas:submodel>
    <aas:submodel>
      <aas:idShort>RevisionWithoutVersion</aas:idShort>
      <aas:administration><aas:revision>1</aas:revision></aas:administration>
      <aas:id>https://example.org/sm/2</aas:id>
    </aas:submodel>
    <aas:submodel>
      <aas:idShort>BadProperty</aas:idShort>
      <aas:id>https://example.org/sm/3</aas:id>
      <aas:submodelElements>
        <aas:property>
          <aas:idShort>1startsWithADigit</aas:idShort>
          <aas:valueType>xs:string</aas:valueType>
        </aas:property>
      </aas:submodelElements>
    </aas:submodel>
  </aas:submodels>
  <aas:things/>
</aas:environment>
""".encode()


def test_a_broken_file_is_refused_with_every_reason(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG), pytest.raises(InvalidAasFile) as refused:
        read_environment(BROKEN_XML, max_bytes=LIMIT)
    reasons = "\n".join(refused.value.reasons)
    assert refused.value.code == "invalid_aas_file"
    assert len(refused.value.reasons) == 4, reasons
    assert "assetInformation" in reasons  # a shell without its mandatory asset information
    assert "AASd-005" in reasons  # a revision without a version
    assert "AASd-002" in reasons and "line 23" in reasons  # an idShort starting with a digit
    assert "aas:things" in reasons  # a list an environment has not
    # The reasons go to the caller, not into the platform's log.
    assert not [r for r in caplog.records if r.name.startswith("basyx")]


def test_a_broken_json_file_is_refused_with_every_reason() -> None:
    data = json.loads(write_environment(example(), Format.JSON))
    del data["assetAdministrationShells"][0]["assetInformation"]
    data["submodels"][0]["idShort"] = "has space"
    data["conceptDescriptions"][0]["modelType"] = "NoSuchThing"
    with pytest.raises(InvalidAasFile) as refused:
        read_environment(json.dumps(data).encode(), max_bytes=LIMIT)
    reasons = "\n".join(refused.value.reasons)
    assert len(refused.value.reasons) >= 3, reasons
    assert "assetInformation" in reasons and "has space" in reasons and "NoSuchThing" in reasons


def test_a_warning_is_a_defect_whatever_the_log_level(caplog: pytest.LogCaptureFixture) -> None:
    # basyx's strict JSON reader drops a revision without a version, only warning.
    data = json.loads(write_environment(example(), Format.JSON))
    del data["submodels"][0]["administration"]["version"]
    with caplog.at_level(logging.ERROR), pytest.raises(InvalidAasFile) as refused:
        read_environment(json.dumps(data).encode(), max_bytes=LIMIT)
    assert refused.value.reasons == (
        "Ignoring 'revision' attribute of AdministrativeInformation object due to missing "
        "'version'",
    )


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"<aas:environment xmlns:aas='x'>", "Premature end of data"),
        (b'{"submodels": [', "Expecting value"),
        (b"PK\x03\x04 not really a zip", "not a zip file"),
        (b"<rss><channel/></rss>", "not an AAS environment"),
    ],
    ids=["xml", "json", "aasx", "not-aas"],
)
def test_a_file_that_does_not_parse_says_why(data: bytes, reason: str) -> None:
    with pytest.raises(InvalidAasFile) as refused:
        read_environment(data, max_bytes=LIMIT)
    assert refused.value.code == "invalid_aas_file"
    assert reason in "\n".join(refused.value.reasons)


def test_a_package_without_the_file_a_file_element_names_is_refused() -> None:
    data = write_environment(example(), Format.AASX)  # no /TestFile.pdf in it
    with pytest.raises(InvalidAasFile) as refused:
        read_environment(data, max_bytes=LIMIT)
    assert "TestFile.pdf" in "\n".join(refused.value.reasons)


def test_reads_side_by_side_keep_their_own_reasons() -> None:
    good = write_environment(example(), Format.XML)

    def read(data: bytes) -> int | tuple[str, ...]:
        try:
            return len(read_environment(data, max_bytes=LIMIT).objects)
        except InvalidAasFile as exc:
            return exc.reasons

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(read, [good, BROKEN_XML] * 20))
    assert results[0::2] == [5] * 20
    assert all(isinstance(r, tuple) and len(r) == 4 for r in results[1::2])


@pytest.mark.parametrize("entity", ['"inside"', 'SYSTEM "file://{secret}"'])
def test_a_file_declaring_entities_is_refused(entity: str, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("s3cret")
    doctype = f"<!DOCTYPE x [<!ENTITY e {entity.format(secret=secret)}>]>"
    xml = (
        write_environment(example(), Format.XML)
        .replace(b"?>", b"?>" + doctype.encode(), 1)
        .replace(b"<aas:text>An Example", b"<aas:text>&e;An Example", 1)
    )
    with pytest.raises(InvalidAasFile) as refused:
        read_environment(xml, max_bytes=LIMIT)
    assert refused.value.reasons == ("an AAS XML file has no DOCTYPE (nor entities)",)


def test_a_package_whose_environment_declares_entities_is_refused() -> None:
    package = zipfile.ZipFile(io.BytesIO(write_environment(example(), Format.AASX, PDF)))
    written = io.BytesIO()
    with zipfile.ZipFile(written, "w") as rewritten:
        for member in package.infolist():
            content = package.read(member)
            if member.filename == "aasx/data.xml":
                content = content.replace(b"?>", b'?><!DOCTYPE x [<!ENTITY e "inside">]>', 1)
            rewritten.writestr(member, content)
    with pytest.raises(InvalidAasFile) as refused:
        read_environment(written.getvalue(), max_bytes=LIMIT)
    assert refused.value.reasons == ("an AAS XML file has no DOCTYPE (nor entities)",)


# -- limits ----------------------------------------------------------------------------


def test_a_file_over_the_limit_is_refused() -> None:
    data = write_environment(example(), Format.XML)
    with pytest.raises(InvalidAasFile) as refused:
        read_environment(data, max_bytes=len(data) - 1)
    assert (refused.value.code, refused.value.kind) == ("aas_file_too_large", ErrorKind.TOO_LARGE)


def test_a_package_that_unpacks_over_the_limit_is_refused() -> None:
    big = {"/TestFile.pdf": ("application/pdf", bytes(4 * 1024 * 1024))}
    data = write_environment(example(), Format.AASX, big)
    assert len(data) < 1024 * 1024  # zeros pack small
    with pytest.raises(InvalidAasFile) as refused:
        read_environment(data, max_bytes=1024 * 1024)
    assert refused.value.code == "aas_file_too_large"
