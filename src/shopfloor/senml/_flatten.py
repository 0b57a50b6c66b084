"""Plain JSON payloads turned into records, one per scalar leaf.

Devices that do not speak SenML still publish on channels, and what the platform
acknowledged must be stored; flattening keeps every leaf under a readable path name.
"""

from __future__ import annotations

import math
from typing import Any, Final

from ._errors import SenMLError
from ._json import load_json
from ._record import EARLIEST_TIME, LATEST_TIME, MAX_NAME_BYTES, Record
from ._resolve import (
    LABELS,
    RELATIVE_TIME_LIMIT,
    is_storable,
    name_too_long,
    resolve_pack,
    shorten,
    time_out_of_range,
)

# Top-level keys that carry the document's time, in order of preference.
_TIME_KEYS: Final = ("t", "time")
# A document of SenML labels that still fails as SenML (e.g. `[{"t": 1, "v": 2}]`, no
# name) is ordinary JSON that happens to share key names: store it flattened instead.
_FALL_BACK_CODES: Final = frozenset({"invalid_senml", "empty_payload"})
_SCALAR_NAME: Final = "value"


def flatten_json(
    data: bytes, *, now: float, max_records: int = 10_000, max_depth: int = 16
) -> list[Record]:
    """Turn a plain JSON document into one record per non-null scalar leaf.

    Leaves are named by their path joined with "." (array items by position, as in
    `axes.0.temp`); a scalar document is one record named `value`. A numeric top-level
    `t` or `time` is the records' time (seconds, relative below 2**28), else `now`.
    An array of objects keyed only by SenML labels is resolved as SenML.
    Raises SenMLError, with code `empty_payload` when there is no leaf to store.
    """
    document = load_json(data)
    if _looks_like_senml(document):
        try:
            return resolve_pack(document, now=now, max_records=max_records, binary_data=False)
        except SenMLError as exc:
            if exc.code not in _FALL_BACK_CODES:
                raise

    time = now
    time_key: str | None = None
    if isinstance(document, dict):
        for key in _TIME_KEYS:
            raw = document.get(key)
            if isinstance(raw, int | float) and not isinstance(raw, bool):
                time_key = key
                time = _leaf_number(raw, key)
                if time < RELATIVE_TIME_LIMIT:
                    time += now
                if not EARLIEST_TIME <= time <= LATEST_TIME:
                    raise time_out_of_range(f"'{key}'", time)
                break

    records: list[Record] = []
    append = records.append

    def walk(node: dict[str, Any] | list[Any], prefix: str, depth: int) -> None:
        if depth > max_depth:
            raise SenMLError(
                "payload_too_deep",
                f"{shorten(prefix.rstrip('.'))} nests deeper than {max_depth} levels",
            )
        pairs = node.items() if isinstance(node, dict) else enumerate(node)
        for key, child in pairs:
            if isinstance(key, str):
                if not is_storable(key):
                    raise SenMLError(
                        "invalid_json", f"key {shorten(key)} holds an unpaired UTF-16 surrogate"
                    )
                if depth == 1 and key == time_key:
                    continue
            name = f"{prefix}{key}"
            if isinstance(child, dict | list):
                walk(child, name + ".", depth + 1)
            elif child is not None:
                if len(records) >= max_records:
                    raise SenMLError(
                        "too_many_records",
                        f"the document has more than {max_records} values",
                    )
                append(_leaf_record(name or _SCALAR_NAME, child, time))

    if isinstance(document, dict | list):
        try:
            walk(document, "", 1)
        except RecursionError:
            # Only reachable when a caller raises max_depth past the interpreter's stack.
            raise SenMLError("payload_too_deep", "the JSON document is nested too deeply") from None
    elif document is not None:
        append(_leaf_record(_SCALAR_NAME, document, time))
    if not records:
        if time_key is not None:
            raise SenMLError("empty_payload", f"the document carries only its time ('{time_key}')")
        raise SenMLError("empty_payload", "the document has no value to store")
    return records


def _looks_like_senml(document: Any) -> bool:
    return (
        isinstance(document, list)
        and bool(document)
        and all(
            isinstance(entry, dict) and entry and LABELS.issuperset(entry) for entry in document
        )
    )


def _leaf_record(name: str, leaf: bool | float | str, time: float) -> Record:
    # A character is at most 4 bytes: short names skip the encoding.
    if len(name) * 4 > MAX_NAME_BYTES and len(name.encode("utf-8", "replace")) > MAX_NAME_BYTES:
        raise name_too_long("the document", name)
    if isinstance(leaf, bool):
        return Record(name=name, time=time, bool_value=leaf)
    if isinstance(leaf, str):
        if not is_storable(leaf):
            raise SenMLError("invalid_json", f"{shorten(name)} holds an unpaired UTF-16 surrogate")
        return Record(name=name, time=time, string_value=leaf)
    return Record(name=name, time=time, value=_leaf_number(leaf, name))


def _leaf_number(leaf: float, name: str) -> float:
    try:
        number = float(leaf)
    except OverflowError:
        number = float("inf")
    if not math.isfinite(number):
        raise SenMLError("invalid_json", f"{shorten(name)} is out of the range of a double")
    return number
