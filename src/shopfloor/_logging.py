"""Structured logging that never writes a password, token or key.

Redaction runs on the final text of every record (ours and the libraries'), so a secret
cannot slip through an argument or an exception message.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from typing import Any, TextIO

_SECRET_PATTERNS = [
    # Authorization headers: "Bearer xxx", "Basic xxx" and "Thing xxx" (capitalised, as in
    # the header, so that "thing <id> connected" log lines keep their ids).
    (re.compile(r"\b((?i:bearer|basic)|Thing)\s+[A-Za-z0-9._~+/=-]{8,}"), r"\1 [redacted]"),
    # key=value and "key": "value" pairs whose key names a secret.
    (
        re.compile(
            r"""(?P<k>["']?\b[\w-]*(?:password|passwd|secret|token|api[_-]?key|thing[_-]?key|"""
            r"""private[_-]?key|authorization|\bkey)\b["']?\s*[:=]\s*)(?P<v>"[^"]*"|'[^']*'|[^\s,&;}]+)""",
            re.I,
        ),
        r"\g<k>[redacted]",
    ),
    # userinfo in URLs: scheme://user:password@host
    (re.compile(r"(?P<s>[a-z][a-z0-9+.-]*://[^/\s:@]+:)[^@\s/]+@", re.I), r"\g<s>[redacted]@"),
]


def redact(text: str) -> str:
    for pattern, replacement in _SECRET_PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        if record.exc_info:
            entry["exception"] = redact(self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def configure_logging(
    *, fmt: str = "json", level: str = "INFO", stream: TextIO | None = None
) -> None:
    """Log every record once, to `stream` (stderr by default), secrets redacted."""
    handler = logging.StreamHandler(sys.stderr if stream is None else stream)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    # Alembic narrates every migration step, httpx every request, at INFO.
    for chatty in ("alembic", "httpx", "amqtt", "transitions"):
        logging.getLogger(chatty).setLevel(max(logging.WARNING, root.level))
