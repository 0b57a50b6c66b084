"""One entry point for adapters: pick the parser from the message's content type."""

from __future__ import annotations

from typing import Final, Protocol

from ._cbor import parse_senml_cbor
from ._errors import SenMLError
from ._flatten import flatten_json
from ._json import parse_senml_json
from ._record import Record
from ._resolve import shorten


class _Parser(Protocol):
    def __call__(self, data: bytes, *, now: float, max_records: int = ...) -> list[Record]: ...


_PARSERS: Final[dict[str, _Parser]] = {
    "application/senml+json": parse_senml_json,
    "application/senml+cbor": parse_senml_cbor,
    "application/json": flatten_json,
}

SUPPORTED_CONTENT_TYPES: Final[frozenset[str]] = frozenset(_PARSERS)


def normalize(
    payload: bytes, content_type: str, *, now: float, max_records: int = 10_000
) -> list[Record]:
    """Records from `payload`, parsed according to `content_type`.

    Media type parameters (`; charset=utf-8`) and letter case are ignored. Raises
    SenMLError with code `unsupported_content_type` for anything but the types in
    SUPPORTED_CONTENT_TYPES, and the parser's own errors otherwise.
    """
    media_type = content_type.partition(";")[0].strip().lower()
    parser = _PARSERS.get(media_type)
    if parser is None:
        supported = ", ".join(sorted(SUPPORTED_CONTENT_TYPES))
        raise SenMLError(
            "unsupported_content_type",
            f"content type {shorten(content_type)} is not supported; use one of {supported}",
        )
    return parser(payload, now=now, max_records=max_records)
