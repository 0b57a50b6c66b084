"""The topic of a shell: a legal Kafka topic name (and NATS subject token) from its id.

    aas.<readable part>.<hash>      e.g. aas.example.com_ids_aas_7070_1.3f9c0e5b2a1d4c6e

The readable part is the AAS id with every character outside `[a-zA-Z0-9_-]` made `_`,
cut to 80 characters; the hash is the first 16 hex digits of SHA-256 over the
organisation id, a newline and the AAS id, so two shells that read alike (or two
organisations with the same AAS id) never share a topic. The result is at most 101
characters of `[a-zA-Z0-9._-]` (Kafka allows 249) and has exactly two dots, so it is
also three NATS subject tokens. The mapping cannot be reversed: the platform keeps
topic → (organisation, AAS id) in the table `aas_topics`.
"""

from __future__ import annotations

import hashlib
import re

__all__ = ["TOPIC_PATTERN", "topic_for"]

READABLE_LENGTH = 80
HASH_LENGTH = 16
TOPIC_PATTERN = re.compile(r"^aas\.[A-Za-z0-9_-]{0,80}\.[0-9a-f]{16}$")
_ILLEGAL = re.compile(r"[^A-Za-z0-9_-]")
_SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*://", re.IGNORECASE)


def topic_for(org_id: str, aas_id: str) -> str:
    """The topic of the shell `aas_id` of organisation `org_id`."""
    readable = _ILLEGAL.sub("_", _SCHEME.sub("", aas_id))[:READABLE_LENGTH].strip("_")
    digest = hashlib.sha256(f"{org_id}\n{aas_id}".encode()).hexdigest()[:HASH_LENGTH]
    return f"aas.{readable}.{digest}"
