"""Logs never contain a password, token or key, whatever the code logs."""

from __future__ import annotations

import json
import logging

import pytest

from shopfloor._logging import JsonFormatter, redact

SECRETS = [
    ("Authorization: Bearer eyJhbGciOi.abc.def", "eyJhbGciOi"),
    ("header Thing Udz6UvOEpHRhTdZyrQM8xOks3hyd", "Udz6UvOEpHRhTdZyrQM8xOks3hyd"),
    ('{"email": "a@b.c", "password": "hunter22"}', "hunter22"),
    ("password=hunter22&user=ann", "hunter22"),
    ("GET /ws?token=abc.def.ghi HTTP/1.1", "abc.def.ghi"),
    ("connecting to postgresql://shop:pgpass@db:5432/x", "pgpass"),
    ("thing_key='k3y-value'", "k3y-value"),
    ("api_key: zzz999", "zzz999"),
]


@pytest.mark.parametrize(("text", "secret"), SECRETS)
def test_secrets_are_redacted(text: str, secret: str) -> None:
    assert secret not in redact(text)
    assert "[redacted]" in redact(text)


def test_ordinary_text_is_kept() -> None:
    text = "thing 16187778-4405 connected to channel a8fbca73 at 2026-11-21"
    assert redact(text) == text


def test_json_log_lines_are_redacted_including_exceptions() -> None:
    try:
        raise ValueError("bad password=hunter22")
    except ValueError:
        record = logging.LogRecord(
            "x", logging.ERROR, __file__, 1, "login %s", ("Bearer eyJabc.def.ghi",), exc_info=True
        )
        import sys

        record.exc_info = sys.exc_info()
    line = JsonFormatter().format(record)
    entry = json.loads(line)
    assert "eyJabc.def.ghi" not in line and "hunter22" not in line
    assert entry["level"] == "error" and "exception" in entry
