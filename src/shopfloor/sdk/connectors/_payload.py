"""Payload bytes to values and back, and JSON pointers (RFC 6901): pure functions."""

from __future__ import annotations

import json
from typing import Any

__all__ = ["decode_payload", "encode_payload", "parse_pointer", "resolve_pointer"]


def decode_payload(payload: bytes) -> Any:
    """JSON if it parses, else text if it is UTF-8, else the bytes."""
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        return payload
    try:
        return json.loads(text)
    except ValueError:
        return text


def encode_payload(value: Any) -> bytes:
    """Bytes and text as they are, anything else as JSON."""
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    if isinstance(value, str):
        return value.encode("utf-8")
    return json.dumps(value).encode("utf-8")


def parse_pointer(pointer: str) -> tuple[str, ...]:
    """The reference tokens of a JSON pointer (`""` is the whole document)."""
    if not pointer:
        return ()
    if not pointer.startswith("/"):
        raise ValueError(f"a JSON pointer starts with '/': {pointer!r}")
    return tuple(token.replace("~1", "/").replace("~0", "~") for token in pointer[1:].split("/"))


def resolve_pointer(document: Any, tokens: tuple[str, ...]) -> Any:
    """The value the pointer's tokens reach in `document`; `LookupError` when none."""
    value = document
    for token in tokens:
        if isinstance(value, dict):
            if token not in value:
                raise KeyError(token)
            value = value[token]
        elif isinstance(value, list):
            if not token.isdigit() or (len(token) > 1 and token.startswith("0")):
                raise IndexError(token)
            value = value[int(token)]
        else:
            raise LookupError(token)
    return value
