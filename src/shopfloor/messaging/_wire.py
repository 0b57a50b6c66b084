"""How an envelope travels as a NATS message: pure functions, no I/O.

The body is the payload, byte for byte, so that other tools subscribed to the bus
read the device's data as sent. The metadata rides in headers; channel and
subtopic are not repeated there because the subject carries them.

`Nats-Msg-Id` is the envelope id: JetStream drops a second copy published within its
duplicate window, which makes retrying a publish after a timeout safe.

Header values are percent-encoded where NATS would alter them (non-printable or
non-ASCII characters, `%`, and leading or trailing spaces, which the protocol
strips), so every field round-trips exactly while ordinary values stay readable.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import quote, unquote

from ._envelope import Envelope
from ._errors import EnvelopeDecodeError
from ._subjects import parse_subject

__all__ = [
    "HEADER_CONTENT_TYPE",
    "HEADER_CREATED",
    "HEADER_MSG_ID",
    "HEADER_PROTOCOL",
    "HEADER_PUBLISHER",
    "decode_envelope",
    "encode_envelope",
]

HEADER_MSG_ID = "Nats-Msg-Id"
HEADER_PUBLISHER = "Shopfloor-Publisher"
HEADER_PROTOCOL = "Shopfloor-Protocol"
HEADER_CREATED = "Shopfloor-Created"
HEADER_CONTENT_TYPE = "Content-Type"

_INT_RE = re.compile(r"-?[0-9]+")
_SAFE = "".join(chr(code) for code in range(0x20, 0x7F) if chr(code) != "%")


def _quote(value: str) -> str:
    quoted = quote(value, safe=_SAFE)
    if quoted.startswith(" "):
        quoted = "%20" + quoted[1:]
    if quoted.endswith(" "):
        quoted = quoted[:-1] + "%20"
    return quoted


def _unquote(value: str, name: str) -> str:
    try:
        return unquote(value, errors="strict")
    except UnicodeDecodeError as exc:
        raise EnvelopeDecodeError(f"header {name} is not percent-encoded UTF-8") from exc


def encode_envelope(envelope: Envelope) -> tuple[dict[str, str], bytes]:
    """Headers and body of the NATS message carrying `envelope`."""
    headers = {
        HEADER_MSG_ID: _quote(envelope.id),
        HEADER_PUBLISHER: _quote(envelope.publisher),
        HEADER_PROTOCOL: _quote(envelope.protocol),
        HEADER_CONTENT_TYPE: _quote(envelope.content_type),
        HEADER_CREATED: str(envelope.created),
    }
    return headers, bytes(envelope.payload)


def _required(headers: Mapping[str, str], name: str) -> str:
    value = headers.get(name)
    if value is None:
        raise EnvelopeDecodeError(f"header {name} is missing")
    return _unquote(value, name)


def decode_envelope(
    subject: str, headers: Mapping[str, str] | None, body: bytes, *, prefix: str = ""
) -> Envelope:
    """The envelope carried by a NATS message; raise `EnvelopeDecodeError` if malformed."""
    if headers is None:
        raise EnvelopeDecodeError("message has no headers")
    channel, subtopic = parse_subject(subject, prefix=prefix)
    created_text = headers.get(HEADER_CREATED, "")
    if not _INT_RE.fullmatch(created_text):
        raise EnvelopeDecodeError(f"header {HEADER_CREATED} {created_text!r} is not an integer")
    message_id = _required(headers, HEADER_MSG_ID)
    if not message_id:
        raise EnvelopeDecodeError(f"header {HEADER_MSG_ID} is empty")
    return Envelope(
        channel=channel,
        subtopic=subtopic,
        publisher=_required(headers, HEADER_PUBLISHER),
        protocol=_required(headers, HEADER_PROTOCOL),
        payload=bytes(body),
        content_type=_required(headers, HEADER_CONTENT_TYPE),
        created=int(created_text),
        id=message_id,
    )
