"""The change feed on the wire (pure: encode on the platform, decode in the agents' cache).

`GET /api/v1/relations/changes?follow=true` is server-sent events:

    event: change                   a tuple added or removed
    data: {"revision": 12, "op": "add", "tuple": {"subject", "relation", "object"}}

    event: schema                   the organisation's schema replaced
    data: {"revision": 13, "op": "schema", "schema": {"relations": {...}}}

    event: revision                 every change up to here was sent: resume `since` it
    data: {"revision": 13}

    event: reset                    `since` is older than the changes kept: load the
    data: {"revision": 13}          tuples again, then follow from their revision

    : keep-alive                    a comment, every few seconds while nothing changes

One write is one revision; its changes come together, then its `revision` event.
Without `follow`, the same items are answered as one JSON document.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from shopfloor.core import KEEPALIVE, SseParser, sse_event

from ._errors import InvalidRelationTuple
from ._model import Change, RelationTuple
from ._schema import RelationSchema, parse_schema

__all__ = [
    "KEEPALIVE",
    "Checkpoint",
    "FeedItem",
    "Reset",
    "SchemaChange",
    "SseDecoder",
    "decode_change",
    "encode_change",
    "encode_sse",
]


@dataclass(frozen=True, slots=True)
class SchemaChange:
    revision: int
    schema: RelationSchema

    def to_json(self) -> dict[str, Any]:
        return {"revision": self.revision, "op": "schema", "schema": self.schema.to_json()}


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """Every change up to `revision` was sent."""

    revision: int


@dataclass(frozen=True, slots=True)
class Reset:
    """The changes after the revision asked for are no longer kept: load everything."""

    revision: int


FeedItem = Change | SchemaChange | Checkpoint | Reset


def encode_change(item: Change | SchemaChange) -> dict[str, Any]:
    return item.to_json()


def decode_change(data: Mapping[str, Any]) -> Change | SchemaChange:
    """A change as `encode_change` wrote it; `InvalidRelationTuple` if it is not one."""
    try:
        revision = int(data["revision"])
        op = data["op"]
        if op == "schema":
            return SchemaChange(revision, parse_schema(data["schema"]))
        if op in ("add", "remove"):
            return Change(revision, op, RelationTuple.from_json(data["tuple"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidRelationTuple(f"not a change of the feed: {exc}") from exc
    raise InvalidRelationTuple(f"not a change of the feed: op {op!r}")


def encode_sse(item: FeedItem) -> bytes:
    if isinstance(item, Change | SchemaChange):
        name = "change" if isinstance(item, Change) else "schema"
        data: dict[str, Any] = encode_change(item)
    else:
        name = "revision" if isinstance(item, Checkpoint) else "reset"
        data = {"revision": item.revision}
    return sse_event(name, data)


class SseDecoder:
    """Feed items from the lines of a server-sent event stream, one line at a time."""

    def __init__(self) -> None:
        self._parser = SseParser()

    def line(self, text: str) -> FeedItem | None:
        """Take one line (without its line break); an item when one is complete."""
        sse = self._parser.line(text)
        if sse is None:
            return None
        try:
            body = sse.json()
            if sse.event in ("change", "schema"):
                return decode_change(body)
            if sse.event == "revision":
                return Checkpoint(int(body["revision"]))
            if sse.event == "reset":
                return Reset(int(body["revision"]))
        except (ValueError, KeyError, TypeError) as exc:
            raise InvalidRelationTuple(f"not an event of the feed: {exc}") from exc
        return None
