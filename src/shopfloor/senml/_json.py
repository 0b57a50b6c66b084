"""SenML in JSON (RFC 8428 section 5) and the one JSON decoding step shared by all JSON input."""

from __future__ import annotations

import codecs
import json
from typing import Any, Final, NoReturn

from ._errors import SenMLError
from ._record import Record
from ._resolve import resolve_pack


def _reject_constant(constant: str) -> NoReturn:
    # The stdlib accepts NaN and Infinity by default; RFC 8259 and RFC 8428 do not.
    raise SenMLError("invalid_json", f"JSON numbers must be finite; found {constant}")


# One decoder for the whole process: `json.loads` with a hook would build a new one per call.
_DECODER: Final = json.JSONDecoder(parse_constant=_reject_constant)


def load_json(data: bytes) -> Any:
    """Decode `data` as one UTF-8 JSON document, translating every failure to SenMLError."""
    if data.startswith(codecs.BOM_UTF8):
        # RFC 8259 section 8.1 lets parsers ignore a byte order mark; some devices send one.
        data = data[len(codecs.BOM_UTF8) :]
    try:
        return _DECODER.decode(data.decode("utf-8"))
    except SenMLError:
        raise
    except RecursionError:
        raise SenMLError("payload_too_deep", "the JSON document is nested too deeply") from None
    except UnicodeDecodeError as exc:
        raise SenMLError(
            "invalid_json", f"the payload is not UTF-8 text (bad byte at offset {exc.start})"
        ) from None
    except ValueError as exc:
        # JSONDecodeError, and the interpreter's limit on digits in an integer literal.
        if not data.strip():
            raise SenMLError("empty_payload", "the payload is empty") from None
        raise SenMLError("invalid_json", f"the payload is not valid JSON: {exc}") from None


def parse_senml_json(data: bytes, *, now: float, max_records: int = 10_000) -> list[Record]:
    """Resolve an `application/senml+json` pack into records.

    `now` (seconds since the epoch) anchors relative and missing times. A lone object
    is read as a one-entry pack; a null field counts as absent; records keep the order
    of the pack. Raises SenMLError on any invalid input.
    """
    return resolve_pack(load_json(data), now=now, max_records=max_records, binary_data=False)
