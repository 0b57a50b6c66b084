"""Identifiers in URLs: Part 2 puts every identifier (and cursor, and asset id) in a path
or query as base64url without padding. Reading is lenient: padding may be there or not,
and the standard alphabet (`+`, `/`) is read too, as some clients send it."""

from __future__ import annotations

import base64
import binascii

from .._errors import InvalidAasRequest

__all__ = ["decode_id", "encode_id"]


def encode_id(identifier: str) -> str:
    return base64.urlsafe_b64encode(identifier.encode()).decode().rstrip("=")


def decode_id(text: str) -> str:
    """The identifier `text` encodes, or `InvalidAasRequest`."""
    cleaned = text.strip().rstrip("=").replace("+", "-").replace("/", "_")
    try:
        raw = base64.b64decode(cleaned + "=" * (-len(cleaned) % 4), altchars=b"-_", validate=True)
        decoded = raw.decode()
    except (binascii.Error, ValueError, UnicodeDecodeError) as exc:
        raise InvalidAasRequest(
            f"{text!r} is not a base64url-encoded identifier", code="invalid_aas_identifier"
        ) from exc
    if not decoded:
        raise InvalidAasRequest("an identifier is never empty", code="invalid_aas_identifier")
    return decoded
