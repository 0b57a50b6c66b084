"""Bounds on free-form JSON (the `metadata` of things and channels), in and out.

Metadata is stored as given and sent back in every listing of the organisation, so one
object that cannot be serialised (pydantic gives up at 255 levels) would fail every
read. Bodies are checked at the door; what an older version stored is made readable on
the way out instead of failing the request.
"""

from __future__ import annotations

import json
import math
from typing import Any, Final

from ._errors import ApiError

# Deep enough for any description of a machine, shallow enough to render everywhere.
MAX_DEPTH: Final = 32
# Encoded as compact UTF-8 JSON; a manual belongs in a document store, not in metadata.
MAX_BYTES: Final = 64 * 1024
_SHOWN_PATH: Final = 64


def checked_free_form(value: dict[str, Any]) -> dict[str, Any]:
    """`value` unchanged, or an `ApiError` (422) saying which bound it breaks.

    Codes: `metadata_too_deep` (more than MAX_DEPTH levels of objects and arrays),
    `metadata_too_large` (more than MAX_BYTES encoded), `invalid_metadata` (NaN or
    an infinity, which JSON cannot carry and the database would turn into null).

    Raised from a pydantic validator, `ApiError` is not a `ValueError`, so it reaches
    the API's error handler as is, with its own code instead of `validation_error`.
    """
    # Iterative, so that no depth of input can exhaust the interpreter's stack.
    pending: list[tuple[Any, str, int]] = [(value, "metadata", 1)]
    while pending:
        node, path, depth = pending.pop()
        if isinstance(node, dict | list):
            if depth > MAX_DEPTH:
                raise ApiError(
                    422,
                    "metadata_too_deep",
                    f"metadata nests deeper than {MAX_DEPTH} levels (at {path[:_SHOWN_PATH]})",
                )
            items = node.items() if isinstance(node, dict) else enumerate(node)
            pending.extend((child, f"{path}.{key}", depth + 1) for key, child in items)
        elif isinstance(node, float) and not math.isfinite(node):
            raise ApiError(
                422,
                "invalid_metadata",
                f"{path[:_SHOWN_PATH]}: NaN and Infinity are not JSON numbers",
            )
    size = len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode())
    if size > MAX_BYTES:
        raise ApiError(
            422,
            "metadata_too_large",
            f"metadata is {size} bytes as JSON; at most {MAX_BYTES} are accepted",
        )
    return value


def readable_free_form(value: dict[str, Any]) -> dict[str, Any]:
    """`value`, with what lies deeper than MAX_DEPTH shown as its JSON text.

    For objects stored before the bounds existed (or written past the API): reading an
    organisation's things must not fail because of one of them.
    """
    if _depth(value) <= MAX_DEPTH:
        return value
    cut = _cut(value, 1)
    assert isinstance(cut, dict)
    return cut


def _depth(value: Any) -> int:
    deepest = 0
    pending: list[tuple[Any, int]] = [(value, 1)]
    while pending:
        node, depth = pending.pop()
        if isinstance(node, dict | list):
            deepest = max(deepest, depth)
            pending.extend((child, depth + 1) for child in _children(node))
    return deepest


def _children(node: dict[str, Any] | list[Any]) -> Any:
    return node.values() if isinstance(node, dict) else node


def _cut(node: Any, depth: int) -> Any:
    # Recursion stops at MAX_DEPTH, so it stays shallow.
    if not isinstance(node, dict | list):
        return node
    if depth > MAX_DEPTH:
        try:
            return json.dumps(node)
        except (RecursionError, ValueError):
            return "…"
    if isinstance(node, dict):
        return {key: _cut(child, depth + 1) for key, child in node.items()}
    return [_cut(child, depth + 1) for child in node]
