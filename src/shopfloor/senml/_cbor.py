"""SenML in CBOR (RFC 8428 section 6)."""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import Any, Final

import cbor2

from ._errors import SenMLError
from ._record import Record
from ._resolve import describe, resolve_pack, shorten

# RFC 8428 table 4. The RFC declares it closed: extensions only ever use text labels.
CBOR_LABELS: Final[dict[int, str]] = {
    -1: "bver",
    -2: "bn",
    -3: "bt",
    -4: "bu",
    -5: "bv",
    -6: "bs",
    0: "n",
    1: "u",
    2: "v",
    3: "vs",
    4: "vb",
    5: "s",
    6: "t",
    7: "ut",
    8: "vd",
}

# A pack is two levels deep; the slack is for nested values under unknown labels.
_MAX_NESTING: Final = 32
_SELF_DESCRIBED: Final = b"\xd9\xd9\xf7"  # tag 55799 (RFC 8949 section 3.4.6)
_ARRAY_MAJOR_TYPE: Final = 4


def parse_senml_cbor(data: bytes, *, now: float, max_records: int = 10_000) -> list[Record]:
    """Resolve an `application/senml+cbor` pack into records.

    Integer labels (RFC 8428 table 4) and text labels are both accepted; `vd` must be
    a byte string. Raises SenMLError on any invalid input.
    """
    declared = _declared_array_length(data)
    if declared is not None and declared > max_records:
        # Reject from the array header alone, before decoding a single entry.
        raise SenMLError(
            "too_many_records",
            f"the pack declares {declared} entries; at most {max_records} are accepted",
        )
    pack = _load_cbor(data)
    # Under a tag (e.g. self-described CBOR) cbor2 decodes immutable containers:
    # tuples and frozendicts. Both read as arrays and maps here.
    if isinstance(pack, list | tuple):
        if len(pack) > max_records:
            raise SenMLError(
                "too_many_records",
                f"the pack has {len(pack)} entries; at most {max_records} are accepted",
            )
        pack = [
            _with_text_labels(entry, index) if isinstance(entry, Mapping) else entry
            for index, entry in enumerate(pack)
        ]
    elif isinstance(pack, Mapping):
        pack = _with_text_labels(pack, 0)
    return resolve_pack(pack, now=now, max_records=max_records, binary_data=True)


def _load_cbor(data: bytes) -> Any:
    stream = io.BytesIO(data)
    try:
        document = cbor2.CBORDecoder(
            stream, max_depth=_MAX_NESTING, allow_duplicate_keys=False
        ).decode()
    except (cbor2.CBORError, ValueError, RecursionError) as exc:
        if not data:
            raise SenMLError("empty_payload", "the payload is empty") from None
        raise SenMLError("invalid_cbor", f"the payload is not valid CBOR: {exc}") from None
    trailing = len(data) - stream.tell()
    if trailing:
        raise SenMLError(
            "invalid_cbor", f"{trailing} bytes follow the CBOR data item; a pack is one item"
        )
    return document


def _declared_array_length(data: bytes) -> int | None:
    """The length in a definite-length array header, or None when there is none."""
    offset = len(_SELF_DESCRIBED) if data.startswith(_SELF_DESCRIBED) else 0
    if len(data) <= offset or data[offset] >> 5 != _ARRAY_MAJOR_TYPE:
        return None
    info = data[offset] & 0x1F
    if info < 24:
        return info
    if info > 27:  # indefinite length (31) or reserved
        return None
    size = 1 << (info - 24)
    header = data[offset + 1 : offset + 1 + size]
    return int.from_bytes(header, "big") if len(header) == size else None


def _with_text_labels(entry: Mapping[Any, Any], index: int) -> dict[str, Any]:
    labelled: dict[str, Any] = {}
    for key, value in entry.items():
        if isinstance(key, str):
            label = key
        elif isinstance(key, int) and not isinstance(key, bool):
            found = CBOR_LABELS.get(key)
            if found is None:
                continue  # unknown labels are ignored (RFC 8428 section 4.4)
            label = found
        else:
            raise SenMLError(
                "invalid_senml",
                f"entry {index}: a label must be an integer or a string, not {describe(key)}",
            )
        if label in labelled:
            raise SenMLError(
                "invalid_senml", f"entry {index}: label {shorten(label)} appears twice"
            )
        labelled[label] = value
    return labelled
