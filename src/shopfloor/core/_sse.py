"""Server-sent events: the framing of `text/event-stream` (WHATWG HTML, §9.2), both ways.

Written out because it is a dozen lines each way and every feed of the platform (the
relation changes, agent logs and states) and every client of one in the SDK share it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

__all__ = ["KEEPALIVE", "ServerSentEvent", "SseParser", "sse_event"]

#: A comment line: keeps proxies and idle timeouts from closing a quiet stream.
KEEPALIVE = b": keep-alive\n\n"


def sse_event(event: str, data: Any) -> bytes:
    """One event whose data is `data` as JSON (on one line: JSON has no raw line breaks)."""
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


@dataclass(frozen=True, slots=True)
class ServerSentEvent:
    event: str
    data: str

    def json(self) -> Any:
        return json.loads(self.data)


class SseParser:
    """Events from the lines of a stream, one line (without its line break) at a time."""

    def __init__(self) -> None:
        self._event = "message"
        self._data: list[str] = []

    def line(self, text: str) -> ServerSentEvent | None:
        """Take one line; the event it completes (a blank line ends one), if any."""
        if text.startswith(":"):
            return None
        if text:
            field, _, value = text.partition(":")
            value = value.removeprefix(" ")
            if field == "event":
                self._event = value
            elif field == "data":
                self._data.append(value)
            return None
        event, data = self._event, "\n".join(self._data)
        self._event, self._data = "message", []
        return ServerSentEvent(event, data) if data else None
