"""Platform events: notices that travel on the bus beside telemetry (pure parts, no I/O).

Subjects are dot-separated tokens, `<capability>.<what>[.<more>]`:

    registry.thing_created  registry.thing_updated  registry.thing_key_rotated
    registry.thing_deleted  registry.channel_deleted registry.connected
    registry.disconnected                  (registry changes, data = `RegistryChange`)
    flows.<org_id>.changed                 (a flow document changed, docs/flows.md)
    agents.* aas.* alerts.*                (reserved for those capabilities)

On the wire an event of subject `s` travels on `[<prefix>.]events.<s>` as one JSON
object `{"id", "created", "origin", "data"}`; `origin` names the process that
emitted it, so a process can ignore its own events coming back. Events are
notices, not records: delivered at most once to whoever listens at that moment,
never stored (the telemetry stream does not cover `events.>`). A process that was
disconnected catches up by other means (caches expire, Mosquitto resyncs).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ._envelope import new_message_id, now_ns
from ._errors import EnvelopeDecodeError, InvalidSubject
from ._receivers import Fanout
from ._subjects import subject_matches, with_prefix

__all__ = [
    "EVENTS_ROOT",
    "Event",
    "EventSubscription",
    "decode_event",
    "encode_event",
    "event_filter",
    "event_matches",
    "event_wire_subject",
]

EVENTS_ROOT = "events"
_TOKEN = re.compile(r"[A-Za-z0-9_-]+")
_FILTER_TOKEN = re.compile(r"[A-Za-z0-9_-]+|\*|>")


def _check(subject: str, *, wildcards: bool) -> str:
    tokens = subject.split(".")
    pattern = _FILTER_TOKEN if wildcards else _TOKEN
    if not all(pattern.fullmatch(token) for token in tokens) or ">" in tokens[:-1]:
        what = "event filter" if wildcards else "event subject"
        raise InvalidSubject(f"{what} {subject!r} must be dot-separated [A-Za-z0-9_-] tokens")
    return subject


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    """A platform event: `subject` (logical, without `events.`) and a JSON object."""

    subject: str
    data: Mapping[str, Any]
    origin: str = ""
    id: str = field(default_factory=new_message_id)
    created: int = field(default_factory=now_ns)

    def __post_init__(self) -> None:
        _check(self.subject, wildcards=False)


def event_filter(subject_filter: str) -> str:
    """Validate a logical event filter (`registry.>`, `*.thing_deleted`, `>`)."""
    return _check(subject_filter, wildcards=True)


def event_matches(subject_filter: str, subject: str) -> bool:
    return subject_matches(subject_filter, subject)


def event_wire_subject(subject: str, *, prefix: str = "") -> str:
    """Where an event subject (or filter) travels on the wire."""
    return with_prefix(f"{EVENTS_ROOT}.{subject}", prefix)


def encode_event(event: Event) -> bytes:
    body = {"id": event.id, "created": event.created, "origin": event.origin, "data": event.data}
    return json.dumps(body, separators=(",", ":"), allow_nan=False).encode()


def decode_event(wire_subject: str, body: bytes, *, prefix: str = "") -> Event:
    """The event a wire message carries; raise `EnvelopeDecodeError` if malformed."""
    root = with_prefix(EVENTS_ROOT, prefix) + "."
    if not wire_subject.startswith(root):
        raise EnvelopeDecodeError(f"subject {wire_subject!r} is not under {root!r}")
    try:
        parsed = json.loads(body)
        data, origin = parsed["data"], parsed["origin"]
        event_id, created = parsed["id"], parsed["created"]
    except (ValueError, KeyError, TypeError) as exc:
        raise EnvelopeDecodeError("an event body is a JSON object with id, data ...") from exc
    valid = isinstance(data, dict) and isinstance(origin, str) and isinstance(event_id, str)
    if not valid or not isinstance(created, int):
        raise EnvelopeDecodeError("an event body has a wrong field type")
    try:
        return Event(
            subject=wire_subject[len(root) :], data=data, origin=origin, id=event_id,
            created=created,
        )  # fmt: skip
    except InvalidSubject as exc:
        raise EnvelopeDecodeError(str(exc)) from exc


class EventSubscription(Fanout[Event]):
    """Platform events matching logical filters while open: `async with`, then `async for`.

    A subscriber that does not keep up loses events (counted in `dropped`), as for
    telemetry subscriptions.
    """

    _kind = "event subscription"

    def __init__(self, filters: Sequence[str], *, max_queued: int) -> None:
        if isinstance(filters, str) or not filters:
            raise InvalidSubject("event filters must be a non-empty sequence of filters")
        self.filters = tuple(event_filter(f) for f in filters)
        super().__init__(max_queued=max_queued)

    def accepts(self, subject: str) -> bool:
        return any(event_matches(f, subject) for f in self.filters)
