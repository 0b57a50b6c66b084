"""The parts of a multipart/form-data body (RFC 7578), for the AAS uploads.

The standard library's MIME parser reads it: the body is a MIME message once its
Content-Type is put in front, and the uploads need no multipart package for a field or two.
"""

from __future__ import annotations

from email import policy
from email.message import Message
from email.parser import BytesParser

__all__ = ["field_name", "form_parts"]


def form_parts(content_type: str, body: bytes) -> list[Message]:
    """The parts of `body`, sent as `content_type` (none if it is not multipart)."""
    raw = b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body
    message = BytesParser(policy=policy.HTTP).parsebytes(raw)
    return list(message.iter_parts()) if message.is_multipart() else []


def field_name(part: Message) -> str | None:
    """The form field a part is (`name` of its Content-Disposition)."""
    name = part.get_param("name", header="content-disposition")
    return name if isinstance(name, str) else None
