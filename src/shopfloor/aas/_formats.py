"""Environments as files: XML, JSON and AASX in and out, through basyx's readers and
writers (pure: bytes in, bytes out).

    env = read_environment(data, content_type="application/xml", max_bytes=limit)
    env.objects, env.files, env.format, env.version, env.upgraded
    data = write_environment(objects, Format.AASX, files)

Metamodel v3.1 is read natively. v3.0 is taken too: a JSON file carries no version and
3.1 only relaxes what 3.0 constrains (longer identifiers and content types, hyphens in
idShorts), so a 3.0 JSON file is a 3.1 one; a 3.0 XML file is upgraded (`upgrade_xml`)
before basyx reads it, as are the 3.0 XML parts of an AASX package.

A file with any defect is refused whole, with every reason the reader gives: basyx's
strict reader stops at the first defect, and its failsafe one skips what it cannot read
and says so only in its log. So a file is read strictly while the reader's log is
captured; if that raises or logs a warning, it is read again failsafe, and every
warning and error it logs is a reason of the `InvalidAasFile`. (Strict first: a good
file, the common case, is read once.)
"""

from __future__ import annotations

import contextlib
import enum
import io
import logging
import threading
import zipfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from basyx.aas import model

from shopfloor.core import ErrorKind

# basyx's adapters and lxml take 0.3 s to import, which every command paid at its start:
# each function imports what it uses (a lookup in `sys.modules` once they are loaded).
if TYPE_CHECKING:
    from basyx.aas.adapter import aasx
    from lxml import etree  # type: ignore[import-untyped]  # lxml ships no types

from ._errors import InvalidAasFile

__all__ = [
    "MEDIA_TYPES",
    "Environment",
    "Format",
    "detect_format",
    "read_environment",
    "upgrade_xml",
    "write_environment",
]

T = TypeVar("T")
Objects = model.DictIdentifiableStore[model.Identifiable]

NS_31 = "https://admin-shell.io/aas/3/1"
NS_30 = "https://admin-shell.io/aas/3/0"
_XSI_SCHEMA_LOCATION = "{http://www.w3.org/2001/XMLSchema-instance}schemaLocation"
#: The loggers basyx's readers report defects on.
_READER_LOGGERS = (
    "basyx.aas.adapter.xml.xml_deserialization",
    "basyx.aas.adapter.json.json_deserialization",
    "basyx.aas.adapter.aasx",
)
#: At most this many reasons are kept (a file broken everywhere says enough by then).
MAX_REASONS = 1000


class Format(enum.StrEnum):
    XML = "xml"
    JSON = "json"
    AASX = "aasx"

    @property
    def media_type(self) -> str:
        return MEDIA_TYPES[self]


MEDIA_TYPES = {
    Format.XML: "application/xml",
    Format.JSON: "application/json",
    Format.AASX: "application/asset-administration-shell-package",
}
_BY_MEDIA_TYPE = {
    "application/xml": Format.XML,
    "text/xml": Format.XML,
    "application/json": Format.JSON,
    "text/json": Format.JSON,
    "application/asset-administration-shell-package": Format.AASX,
    "application/asset-administration-shell-package+xml": Format.AASX,
    "application/asset-administration-shell-package+json": Format.AASX,
    "application/zip": Format.AASX,
}
_BY_SUFFIX = {".xml": Format.XML, ".json": Format.JSON, ".aasx": Format.AASX}


@dataclass(frozen=True, slots=True, kw_only=True)
class Environment:
    """What a file held: its identifiables and (AASX) supplementary files."""

    objects: list[model.Identifiable]
    #: Supplementary files by absolute package path (`/aasx/files/manual.pdf`):
    #: (content type, bytes).
    files: dict[str, tuple[str, bytes]] = field(default_factory=dict)
    format: Format
    #: The metamodel version the file was written in ("3.1"; "3.0" when upgraded).
    version: str = "3.1"
    upgraded: bool = False


# -- the format ------------------------------------------------------------------------


def detect_format(
    data: bytes, *, content_type: str | None = None, filename: str | None = None
) -> Format:
    """The format the content type names, else the file name's, else the content's."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media in _BY_MEDIA_TYPE:
        return _BY_MEDIA_TYPE[media]
    suffix = "." + filename.rsplit(".", 1)[-1].lower() if filename and "." in filename else ""
    if suffix in _BY_SUFFIX:
        return _BY_SUFFIX[suffix]
    sniffed = _sniff(data)
    if sniffed is None:
        named = f" ({content_type})" if media else ""
        raise InvalidAasFile(
            f"not an AAS environment in XML, JSON or AASX{named}",
            code="aas_format_unsupported", kind=ErrorKind.UNSUPPORTED,
        )  # fmt: skip
    return sniffed


def _sniff(data: bytes) -> Format | None:
    if data.startswith(b"PK\x03\x04"):
        return Format.AASX
    head = data[:64].removeprefix(b"\xef\xbb\xbf").lstrip()
    if head.startswith(b"<"):
        return Format.XML
    if head.startswith(b"{"):
        return Format.JSON
    return None


# -- reading ---------------------------------------------------------------------------


def read_environment(
    data: bytes,
    *,
    content_type: str | None = None,
    filename: str | None = None,
    max_bytes: int,
) -> Environment:
    """Every identifiable (and supplementary file) of a file, or `InvalidAasFile` with
    every defect found."""
    _limit(len(data), max_bytes, "the file")
    fmt = detect_format(data, content_type=content_type, filename=filename)
    if fmt is Format.XML:
        return _read_xml(data)
    if fmt is Format.JSON:
        return _read_json(data)
    return _read_aasx(data, max_bytes)


def _read_xml(data: bytes) -> Environment:
    from basyx.aas.adapter.xml import read_aas_xml_file

    body, version = _xml_as_31(data)
    store = _checked(lambda failsafe: read_aas_xml_file(io.BytesIO(body), failsafe=failsafe))
    return Environment(
        objects=list(store), format=Format.XML, version=version, upgraded=version != "3.1"
    )


def _read_json(data: bytes) -> Environment:
    from basyx.aas.adapter.json import read_aas_json_file

    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidAasFile("the JSON file is not UTF-8", reasons=[str(exc)]) from exc
    if not text.lstrip().startswith("{"):
        raise InvalidAasFile(
            "not an AAS environment", reasons=["a JSON environment is an object: {...}"]
        )
    store = _checked(lambda failsafe: read_aas_json_file(io.StringIO(text), failsafe=failsafe))
    return Environment(objects=list(store), format=Format.JSON)


def _read_aasx(data: bytes, max_bytes: int) -> Environment:
    from basyx.aas.adapter import aasx

    package, version = _aasx_as_31(data, max_bytes)

    def read(failsafe: bool) -> tuple[Objects, aasx.DictSupplementaryFileContainer]:
        objects: Objects = model.DictIdentifiableStore()
        files = _file_container()
        with aasx.AASXReader(io.BytesIO(package), failsafe=failsafe) as reader:
            reader.read_into(objects, files)
        return objects, files

    objects, container = _checked(read)
    files: dict[str, tuple[str, bytes]] = {}
    for name in container:
        held = io.BytesIO()
        container.write_file(name, held)
        files[name] = (container.get_content_type(name), held.getvalue())
    return Environment(
        objects=list(objects), files=files, format=Format.AASX, version=version,
        upgraded=version != "3.1",
    )  # fmt: skip


def _file_container() -> aasx.DictSupplementaryFileContainer:
    from basyx.aas.adapter import aasx

    return aasx.DictSupplementaryFileContainer()  # type: ignore[no-untyped-call]


def _limit(size: int, max_bytes: int, what: str) -> None:
    if size > max_bytes:
        raise InvalidAasFile(
            f"{what} is over the limit of {max_bytes} bytes",
            code="aas_file_too_large", kind=ErrorKind.TOO_LARGE,
        )  # fmt: skip


# -- reading every defect --------------------------------------------------------------


class _Reasons(logging.Filter):
    """Takes the warnings and errors basyx's readers log, off the log, for the threads
    that are reading (each read its own: reads run in worker threads side by side)."""

    def __init__(self) -> None:
        super().__init__()
        self._reads: dict[int, list[str]] = {}
        self._lock = threading.Lock()
        for name in _READER_LOGGERS:
            reader_logger = logging.getLogger(name)
            reader_logger.addFilter(self)
            # Pinned: a warning the log level silenced (SHOPFLOOR_LOG_LEVEL=error) would
            # be a defect let through. Outside a read, `filter` applies the level the
            # logger would have had.
            reader_logger.setLevel(logging.WARNING)

    def filter(self, record: logging.LogRecord) -> bool:
        reasons = self._reads.get(threading.get_ident())
        if reasons is None:
            parent = logging.getLogger(record.name).parent
            return parent is None or record.levelno >= parent.getEffectiveLevel()
        if record.levelno >= logging.WARNING and len(reasons) < MAX_REASONS:
            reasons.append(_reason(record))
        return False

    @contextlib.contextmanager
    def reading(self) -> Iterator[list[str]]:
        reasons: list[str] = []
        ident = threading.get_ident()
        with self._lock:
            self._reads[ident] = reasons
        try:
            yield reasons
        finally:
            with self._lock:
                del self._reads[ident]


def _reason(record: logging.LogRecord) -> str:
    message = record.getMessage()
    if record.exc_info and record.exc_info[1] is not None:
        cause = str(record.exc_info[1])
        if cause and cause not in message:
            message = f"{message} ({cause})"
    return message


_reasons = _Reasons()


def _checked(read: Callable[[bool], T]) -> T:
    """`read(failsafe)`'s result when the strict read passes without a warning, else
    `InvalidAasFile` with every reason the failsafe read gives."""
    strict_error: Exception | None = None
    with _reasons.reading() as strict_reasons:
        try:
            result = read(False)
        except Exception as exc:  # basyx raises KeyError, ValueError, TypeError, lxml's ...
            strict_error = exc
    if strict_error is None and not strict_reasons:
        return result
    with _reasons.reading() as reasons:
        try:
            read(True)
        except Exception as exc:
            reasons.append(_describe(exc))
    if not reasons:
        reasons.extend(strict_reasons)
        if strict_error is not None:
            reasons.append(_describe(strict_error))
    raise InvalidAasFile(
        f"the file is not a valid AAS environment: {len(reasons)} defect(s)", reasons=reasons
    ) from strict_error


def _describe(exc: BaseException) -> str:
    text = str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)
    parts = [text or type(exc).__name__]
    cause = exc.__cause__
    while cause is not None:
        parts.append(str(cause))
        cause = cause.__cause__
    return ": ".join(parts)


# -- versions --------------------------------------------------------------------------


def _parse_xml(data: bytes) -> Any:
    """The root element of an environment. One with a DOCTYPE is refused: an environment
    has none, and basyx's parser would expand the entities it declares."""
    from lxml import etree

    parser = etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False
    )
    root = etree.fromstring(data, parser)
    if _is_environment(root) and root.getroottree().docinfo.doctype:
        raise InvalidAasFile(
            "not an AAS environment", reasons=["an AAS XML file has no DOCTYPE (nor entities)"]
        )
    return root


def _is_environment(root: Any) -> bool:
    from lxml import etree

    name = etree.QName(root)
    return bool(name.localname == "environment" and name.namespace)


def _xml_as_31(data: bytes) -> tuple[bytes, str]:
    """The XML in 3.1 and the version it was written in."""
    from lxml import etree

    try:
        root = _parse_xml(data)
    except etree.XMLSyntaxError as exc:
        raise InvalidAasFile("the file is not well-formed XML", reasons=[str(exc)]) from exc
    namespace = etree.QName(root).namespace
    if not _is_environment(root):
        raise InvalidAasFile(
            "not an AAS environment",
            reasons=[f"the root element is {root.tag}, not an AAS environment"],
        )
    if namespace == NS_31:
        return data, "3.1"
    if namespace == NS_30:
        upgraded = upgrade_xml(root)
        return etree.tostring(upgraded, xml_declaration=True, encoding="UTF-8"), "3.0"
    raise InvalidAasFile(
        "this AAS version is not read here: metamodel 3.1 and 3.0 are",
        reasons=[f"the environment's namespace is {namespace}"],
        code="aas_version_unsupported", kind=ErrorKind.UNSUPPORTED,
    )  # fmt: skip


def upgrade_xml(root: etree._Element) -> etree._Element:
    """A v3.0 XML environment as v3.1 (a new root; `root`'s children move to it).

    The namespace is the difference: basyx-python-sdk's 3.0 (1.x) and 3.1 (2.x) XML
    readers and writers know the same elements and enumerations, and the 3.0 full
    example of basyx 1.x's compliance-tool test files reads in 2.x with no warning
    once its namespace says 3.1 and writes back with nothing lost. What else 3.1
    changed only relaxes 3.0: identifiers up to 2048 characters (2000), content types
    up to 128 (100), hyphens in idShorts, so a valid 3.0 file is a valid 3.1 one.
    """
    from lxml import etree

    old, new = "{" + NS_30 + "}", "{" + NS_31 + "}"
    # First a new root declaring aas: as 3.1 (lxml can't redeclare a prefix in place),
    # then the children renamed under it: they take its prefix, and the reader's
    # messages name elements aas:..., as the file did.
    nsmap = {prefix: uri for prefix, uri in root.nsmap.items() if uri != NS_30 and prefix}
    nsmap.setdefault("aas", NS_31)
    attrib = {name: value for name, value in root.attrib.items()}
    if _XSI_SCHEMA_LOCATION in attrib:
        # "namespace location" pairs: the 3.0 namespace's schema is now the 3.1 one's.
        attrib[_XSI_SCHEMA_LOCATION] = attrib[_XSI_SCHEMA_LOCATION].replace(NS_30, NS_31)
    upgraded = etree.Element(new + etree.QName(root).localname, attrib=attrib, nsmap=nsmap)
    upgraded.text = root.text
    upgraded.extend(list(root))
    for element in upgraded.iter():
        if isinstance(element.tag, str) and element.tag.startswith(old):
            element.tag = new + element.tag[len(old) :]
        for name in [name for name in element.attrib if name.startswith(old)]:
            element.attrib[new + name[len(old) :]] = element.attrib.pop(name)
    etree.cleanup_namespaces(upgraded, keep_ns_prefixes=[p for p in nsmap if p != "aas"])
    return upgraded


def _aasx_as_31(data: bytes, max_bytes: int) -> tuple[bytes, str]:
    """The package with its 3.0 XML parts in 3.1, and the version they were in."""
    from lxml import etree

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as package:
            members = package.infolist()
            # Sizes from the directory: the zip reader returns no more than they say.
            _limit(sum(m.file_size for m in members), max_bytes, "the package unpacked")
            parts = {m.filename: package.read(m) for m in members}
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError) as exc:
        raise InvalidAasFile("the file is not an AASX (zip) package", reasons=[str(exc)]) from exc
    upgraded: dict[str, bytes] = {}
    for name, content in parts.items():
        # The reader takes a part as XML by its content type, whatever its name: every
        # XML part is looked at (the reader says what is wrong with a broken one).
        if (
            name == "[Content_Types].xml"
            or name.endswith(".rels")
            or _sniff(content) is not Format.XML
        ):
            continue
        with contextlib.suppress(etree.XMLSyntaxError):
            root = _parse_xml(content)
            if root.tag == "{" + NS_30 + "}environment":
                upgraded[name] = etree.tostring(
                    upgrade_xml(root), xml_declaration=True, encoding="UTF-8"
                )
    if not upgraded:
        return data, "3.1"
    written = io.BytesIO()
    with zipfile.ZipFile(written, "w", zipfile.ZIP_DEFLATED) as package:
        for member in members:
            package.writestr(member, upgraded.get(member.filename, parts[member.filename]))
    return written.getvalue(), "3.0"


# -- writing ---------------------------------------------------------------------------


def write_environment(
    objects: Iterable[model.Identifiable],
    fmt: Format,
    files: Mapping[str, tuple[str, bytes]] | None = None,
) -> bytes:
    """The objects as one file of `fmt`; AASX packs the supplementary files the File
    elements and thumbnails name (those in `files`)."""
    from basyx.aas.adapter import aasx
    from basyx.aas.adapter.json import write_aas_json_file
    from basyx.aas.adapter.xml import write_aas_xml_file

    store: Objects = model.DictIdentifiableStore(objects)
    if fmt is Format.XML:
        out = io.BytesIO()
        write_aas_xml_file(out, store)
        return out.getvalue()
    if fmt is Format.JSON:
        text = io.StringIO()
        write_aas_json_file(text, store)
        return text.getvalue().encode()
    container = _file_container()
    for path, (content_type, data) in (files or {}).items():
        container.add_file(path, io.BytesIO(data), content_type)
    out = io.BytesIO()
    # failsafe: a File naming a file that is not held is written without it (and logged).
    with aasx.AASXWriter(out, failsafe=True) as writer:
        writer.write_all_aas_objects("/aasx/data.xml", store, container)
    return out.getvalue()
