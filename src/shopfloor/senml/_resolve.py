"""Resolution of a decoded SenML pack into records (RFC 8428 sections 4.4 to 4.6).

Both wire formats decode into the same shape first: a list of dicts keyed by the
text labels (`bn`, `v`, ...). This module holds everything that happens after that.
"""

from __future__ import annotations

import base64
import re
from decimal import Decimal
from math import isfinite
from typing import Any, Final

from ._errors import SenMLError
from ._record import EARLIEST_TIME, LATEST_TIME, MAX_NAME_BYTES, TIME_RANGE_TEXT, Record

# Resolved times below 2**28 are relative to "now" (RFC 8428 section 4.5.3).
RELATIVE_TIME_LIMIT: Final = float(2**28)
# Versions above this may change semantics we do not know, so the pack must not be used.
MAX_VERSION: Final = 10

BASE_LABELS: Final = frozenset({"bn", "bt", "bu", "bv", "bs", "bver"})
REGULAR_LABELS: Final = frozenset({"n", "u", "v", "vs", "vb", "vd", "s", "t", "ut"})
LABELS: Final = BASE_LABELS | REGULAR_LABELS

# RFC 8428 section 4.5.1; compiled once because it runs for every distinct name.
_NAME: Final = re.compile(r"[A-Za-z0-9][-:./_A-Za-z0-9]*")
# URL-safe alphabet of RFC 4648 section 5. Padding is tolerated on input and dropped.
_BASE64URL: Final = re.compile(r"[A-Za-z0-9_-]*={0,2}")
_SHOWN_CHARS: Final = 64


def resolve_pack(pack: object, *, now: float, max_records: int, binary_data: bool) -> list[Record]:
    """Apply base fields and relative times to every entry of `pack`.

    `binary_data` selects how `vd` arrives: bytes (CBOR) or base64url text (JSON).
    Entries made only of base fields set context for later entries and yield no record.
    A null field counts as absent. Records keep the order of the pack.
    """
    if isinstance(pack, dict):
        # RFC 8428 wants an array, but many devices send a lone record as a bare
        # object; reading it as a one-entry pack loses nothing and saves a 400.
        pack = [pack]
    elif not isinstance(pack, list):
        raise SenMLError(
            "invalid_senml", f"a SenML pack must be an array of records, not {describe(pack)}"
        )
    if len(pack) > max_records:
        raise SenMLError(
            "too_many_records",
            f"the pack has {len(pack)} entries; at most {max_records} are accepted",
        )

    base_name = ""
    base_time = 0.0
    base_unit: str | None = None
    base_value = 0.0
    base_sum = 0.0
    version: int | None = None
    # Time series repeat one name; re-checking its syntax for every entry is waste.
    last_valid_name: str | None = None
    records: list[Record] = []
    append = records.append

    for index, entry in enumerate(pack):
        if not isinstance(entry, dict):
            raise SenMLError(
                "invalid_senml", f"entry {index} must be an object, not {describe(entry)}"
            )
        if not LABELS.issuperset(entry):
            _reject_must_understand_labels(entry, index)
        if not BASE_LABELS.isdisjoint(entry):
            if (raw := entry.get("bn")) is not None:
                base_name = _text(raw, "bn", index)
            if (raw := entry.get("bt")) is not None:
                base_time = _number(raw, "bt", index)
            if (raw := entry.get("bu")) is not None:
                base_unit = _text(raw, "bu", index)
            if (raw := entry.get("bv")) is not None:
                base_value = _number(raw, "bv", index)
            if (raw := entry.get("bs")) is not None:
                base_sum = _number(raw, "bs", index)
            if (raw := entry.get("bver")) is not None:
                version = _version(raw, version, index)

        value: float | None = None
        string_value: str | None = None
        bool_value: bool | None = None
        data_value: str | None = None
        kinds = 0
        if (raw := entry.get("v")) is not None:
            # Floats skip the helper call; the finiteness check on the sum covers them.
            value = base_value + (raw if type(raw) is float else _number(raw, "v", index))
            if not isfinite(value):
                raise _not_finite("v", index)
            kinds = 1
        if (raw := entry.get("vs")) is not None:
            string_value = _text(raw, "vs", index)
            kinds += 1
        if (raw := entry.get("vb")) is not None:
            if not isinstance(raw, bool):
                raise _wrong_type("vb", "a boolean", raw, index)
            bool_value = raw
            kinds += 1
        if (raw := entry.get("vd")) is not None:
            data_value = _data(raw, index, binary=binary_data)
            kinds += 1
        if kinds > 1:
            raise SenMLError(
                "invalid_senml",
                f"entry {index} carries more than one of 'v', 'vs', 'vb', 'vd'",
            )
        total: float | None = None
        if (raw := entry.get("s")) is not None:
            total = base_sum + (raw if type(raw) is float else _number(raw, "s", index))
            if not isfinite(total):
                raise _not_finite("s", index)
        if kinds == 0 and total is None:
            if REGULAR_LABELS.isdisjoint(entry):
                # Base fields only: RFC 8428 section 5.1.7 opens a pack this way.
                continue
            raise SenMLError(
                "invalid_senml",
                f"entry {index} has no value ('v', 'vs', 'vb' or 'vd') and no sum ('s')",
            )

        raw = entry.get("n")
        if raw is None:
            name = base_name
        elif isinstance(raw, str):
            name = base_name + raw
        else:
            raise _wrong_type("n", "a string", raw, index)
        if name != last_valid_name:
            if _NAME.fullmatch(name) is None:
                raise _bad_name(name, index)
            if len(name) > MAX_NAME_BYTES:  # the pattern is ASCII: characters are bytes
                raise name_too_long(f"entry {index}", name)
            last_valid_name = name

        if (raw := entry.get("t")) is None:
            time = base_time
        else:
            time = base_time + (raw if type(raw) is float else _number(raw, "t", index))
        if time < RELATIVE_TIME_LIMIT:
            time += now
        if not EARLIEST_TIME <= time <= LATEST_TIME:  # NaN and infinities fail too
            raise time_out_of_range(f"entry {index}", time)

        raw = entry.get("u")
        unit = base_unit if raw is None else _text(raw, "u", index)

        update_time: float | None = None
        if (raw := entry.get("ut")) is not None:
            update_time = _number(raw, "ut", index)
            if update_time < 0:
                raise SenMLError("invalid_senml", f"entry {index}: 'ut' must not be negative")

        append(
            Record(
                name=name,
                unit=unit,
                time=time,
                value=value,
                string_value=string_value,
                bool_value=bool_value,
                data_value=data_value,
                sum=total,
                update_time=update_time,
            )
        )

    if not records:
        raise SenMLError("empty_payload", "the pack carries no records")
    return records


def describe(value: object) -> str:
    """The JSON/CBOR word for a decoded value's type, for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float | Decimal):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bytes):
        return "a byte string"
    if isinstance(value, list | tuple):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return f"a {type(value).__name__}"


def shorten(text: str) -> str:
    """`text` quoted and cut short, so a hostile payload cannot bloat an error message."""
    if len(text) > _SHOWN_CHARS:
        text = text[:_SHOWN_CHARS] + "..."
    return repr(text)


def is_storable(text: str) -> bool:
    """False when `text` holds an unpaired surrogate (a JSON `\\ud800` escape).

    Such a string cannot be encoded as UTF-8, so a storage backend would fail on it
    long after the message was acknowledged.
    """
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _reject_must_understand_labels(entry: dict[Any, Any], index: int) -> None:
    # RFC 8428 section 4.4: ignore unknown labels, unless they end with "_".
    for label in entry:
        if isinstance(label, str) and label not in LABELS and label.endswith("_"):
            raise SenMLError(
                "unsupported_senml_label",
                f"entry {index}: label {shorten(label)} must be understood but is not supported",
            )


def _number(raw: object, label: str, index: int) -> float:
    # Exact type checks: faster than isinstance, and they keep bool out of "number".
    if type(raw) is float:
        number = raw
    elif type(raw) is int or type(raw) is Decimal:
        # Big integers and CBOR decimal fractions (tag 4) are numbers too.
        try:
            number = float(raw)
        except (OverflowError, ValueError):
            raise SenMLError("invalid_senml", f"entry {index}: '{label}' is out of range") from None
    else:
        raise _wrong_type(label, "a number", raw, index)
    if not isfinite(number):
        raise _not_finite(label, index)
    return number


def time_out_of_range(where: str, time: float) -> SenMLError:
    """The error for a resolved time that no store can hold."""
    return SenMLError(
        "time_out_of_range",
        f"{where}: time {time:.6g} s is outside the storable range {TIME_RANGE_TEXT}",
    )


def name_too_long(where: str, name: str) -> SenMLError:
    """The error for a record name longer than MAX_NAME_BYTES in UTF-8."""
    return SenMLError(
        "name_too_long",
        f"{where}: name {shorten(name)} is longer than {MAX_NAME_BYTES} bytes",
    )


def _not_finite(label: str, index: int) -> SenMLError:
    return SenMLError("invalid_senml", f"entry {index}: '{label}' must be a finite number")


def _text(raw: object, label: str, index: int) -> str:
    if not isinstance(raw, str):
        raise _wrong_type(label, "a string", raw, index)
    if not is_storable(raw):
        raise SenMLError(
            "invalid_senml", f"entry {index}: '{label}' holds an unpaired UTF-16 surrogate"
        )
    return raw


def _version(raw: object, current: int | None, index: int) -> int:
    if not isinstance(raw, int) or isinstance(raw, bool) or raw < 1:
        raise SenMLError("invalid_senml", f"entry {index}: 'bver' must be a positive integer")
    if raw > MAX_VERSION:
        raise SenMLError(
            "unsupported_senml_version",
            f"entry {index}: SenML version {raw} is newer than the supported {MAX_VERSION}",
        )
    if current is not None and raw != current:
        # RFC 8428 section 4.4: all records of a pack have the same version.
        raise SenMLError(
            "invalid_senml",
            f"entry {index}: 'bver' {raw} differs from version {current} set earlier",
        )
    return raw


def _data(raw: object, index: int, *, binary: bool) -> str:
    if binary:
        if not isinstance(raw, bytes):
            raise _wrong_type("vd", "a byte string", raw, index)
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")
    if not isinstance(raw, str):
        raise _wrong_type("vd", "a base64url string", raw, index)
    text = raw.rstrip("=")
    # A single leftover character can never encode a whole byte.
    if _BASE64URL.fullmatch(raw) is None or len(text) % 4 == 1:
        raise SenMLError(
            "invalid_senml",
            f"entry {index}: 'vd' must be base64url text (RFC 4648 section 5)",
        )
    return text


def _wrong_type(label: str, expected: str, raw: object, index: int) -> SenMLError:
    return SenMLError(
        "invalid_senml", f"entry {index}: '{label}' must be {expected}, not {describe(raw)}"
    )


def _bad_name(name: str, index: int) -> SenMLError:
    if not name:
        return SenMLError(
            "invalid_senml", f"entry {index} has no name: neither 'bn' nor 'n' is set"
        )
    return SenMLError(
        "invalid_senml",
        f"entry {index}: name {shorten(name)} must start with a letter or digit and hold "
        "only letters, digits and '-:./_' (RFC 8428 section 4.5.1)",
    )
