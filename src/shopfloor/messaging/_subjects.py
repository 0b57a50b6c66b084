"""The subject scheme of the bus: pure functions, no I/O.

An envelope of channel `c` and subtopic `a/b` travels on `channels.c.a.b`; with an
empty subtopic on `channels.c`. A deployment may put every subject under a prefix
(`tenant1.channels.c.a.b`) so that several platforms, or several test runs, share
one NATS account without seeing each other's messages.

Filters use the NATS wildcards: `*` matches exactly one token, `>` matches one or
more trailing tokens. Callers of the bus always use *logical* filters (without the
prefix); the bus adds its own prefix on the wire.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from ._envelope import Envelope, is_valid_subtopic
from ._errors import EnvelopeDecodeError, InvalidSubject

__all__ = [
    "CHANNELS_ROOT",
    "channel_filters",
    "check_filters",
    "covering_filter",
    "envelope_subject",
    "filter_covers",
    "parse_subject",
    "reduce_filters",
    "subject_matches",
    "validate_filter",
    "validate_name",
    "validate_prefix",
    "with_prefix",
]

CHANNELS_ROOT = "channels"
# Channel ids, durable and stream names and prefix tokens share the subtopic alphabet:
# it is valid as a NATS token, a JetStream name, an MQTT topic level and a Kafka key.
_NAME_RE = re.compile(r"[A-Za-z0-9_-]+")
_FILTER_TOKEN_RE = re.compile(r"[A-Za-z0-9_-]+|\*|>")


def validate_name(name: str, *, what: str) -> str:
    """Return `name` if it is a valid single token, else raise `InvalidSubject`."""
    if not _NAME_RE.fullmatch(name):
        raise InvalidSubject(f"{what} {name!r} must be a non-empty string of [A-Za-z0-9_-]")
    return name


def validate_prefix(prefix: str) -> str:
    """Return `prefix` (`""` or dot-separated name tokens) or raise `InvalidSubject`."""
    if prefix:
        for token in prefix.split("."):
            validate_name(token, what="subject prefix token")
    return prefix


def with_prefix(subject: str, prefix: str) -> str:
    """Put a logical subject or filter under `prefix`."""
    return f"{prefix}.{subject}" if prefix else subject


def envelope_subject(envelope: Envelope, *, prefix: str = "") -> str:
    """The subject an envelope is published on."""
    channel = validate_name(envelope.channel, what="channel id")
    if not is_valid_subtopic(envelope.subtopic):
        raise InvalidSubject(f"subtopic {envelope.subtopic!r} is not /-separated [A-Za-z0-9_-]")
    subject = f"{CHANNELS_ROOT}.{channel}"
    if envelope.subtopic:
        subject = f"{subject}.{envelope.subtopic.replace('/', '.')}"
    return with_prefix(subject, prefix)


def parse_subject(subject: str, *, prefix: str = "") -> tuple[str, str]:
    """Split a wire subject into `(channel, subtopic)`; raise `EnvelopeDecodeError`."""
    logical = subject
    if prefix:
        if not subject.startswith(prefix + "."):
            raise EnvelopeDecodeError(f"subject {subject!r} is not under prefix {prefix!r}")
        logical = subject[len(prefix) + 1 :]
    tokens = logical.split(".")
    if len(tokens) < 2 or tokens[0] != CHANNELS_ROOT or not _NAME_RE.fullmatch(tokens[1]):
        raise EnvelopeDecodeError(f"subject {subject!r} is not channels.<channel>[.<subtopic>]")
    subtopic = "/".join(tokens[2:])
    if not is_valid_subtopic(subtopic):
        raise EnvelopeDecodeError(f"subject {subject!r} has an invalid subtopic")
    return tokens[1], subtopic


def channel_filters(channel_id: str, *, prefix: str = "") -> tuple[str, ...]:
    """The filters that together match every message of a channel, whatever its subtopic."""
    base = with_prefix(f"{CHANNELS_ROOT}.{validate_name(channel_id, what='channel id')}", prefix)
    return (base, f"{base}.>")


def validate_filter(subject_filter: str) -> str:
    """Return a logical filter if valid, else raise `InvalidSubject`.

    A filter starts with `channels` and has at least two tokens, each a name, `*` or
    a final `>`; anything else could never match an envelope subject, so it is a bug.
    """
    tokens = subject_filter.split(".")
    valid = (
        len(tokens) >= 2
        and tokens[0] == CHANNELS_ROOT
        and all(_FILTER_TOKEN_RE.fullmatch(part) for part in tokens)
        and ">" not in tokens[:-1]
    )
    if not valid:
        raise InvalidSubject(
            f"filter {subject_filter!r} must look like channels.<token|*>[.<token|*>...][.>]"
        )
    return subject_filter


def subject_matches(subject_filter: str, subject: str) -> bool:
    """Whether `subject` (no wildcards) matches `subject_filter` (NATS wildcard rules)."""
    filter_tokens = subject_filter.split(".")
    subject_tokens = subject.split(".")
    for index, part in enumerate(filter_tokens):
        if part == ">":
            return len(subject_tokens) > index
        if index >= len(subject_tokens):
            return False
        if part != "*" and part != subject_tokens[index]:
            return False
    return len(filter_tokens) == len(subject_tokens)


def filter_covers(wide: str, narrow: str) -> bool:
    """Whether every subject matched by `narrow` is also matched by `wide`."""
    wide_tokens = wide.split(".")
    narrow_tokens = narrow.split(".")
    for index, part in enumerate(wide_tokens):
        if part == ">":
            return len(narrow_tokens) > index
        if index >= len(narrow_tokens):
            return False
        other = narrow_tokens[index]
        if other == ">":
            return False
        if part != "*" and part != other:
            return False
    return len(wide_tokens) == len(narrow_tokens)


def reduce_filters(filters: Iterable[str]) -> tuple[str, ...]:
    """Drop duplicates and filters covered by another one, keeping the first-seen order."""
    # Two different filters never cover each other, so once duplicates are gone a
    # filter covered by any other one is redundant.
    unique = list(dict.fromkeys(filters))
    return tuple(
        candidate
        for candidate in unique
        if not any(other != candidate and filter_covers(other, candidate) for other in unique)
    )


def covering_filter(filters: Sequence[str]) -> str:
    """The narrowest single filter (of this simple shape) that covers every filter given.

    Used where a backend accepts one filter only: the result is the longest shared
    token prefix followed by `>`, shortened so that `>` still has a token to match.
    """
    reduced = reduce_filters(filters)
    if not reduced:
        raise InvalidSubject("at least one filter is required")
    if len(reduced) == 1:
        return reduced[0]
    token_lists = [f.split(".") for f in reduced]
    shared: list[str] = []
    for column in zip(*token_lists, strict=False):
        if column[0] == ">" or any(part != column[0] for part in column):
            break
        shared.append(column[0])
    keep = min(len(shared), min(len(tokens) for tokens in token_lists) - 1)
    return ".".join([*shared[:keep], ">"])


def check_filters(filters: Sequence[str]) -> tuple[str, ...]:
    """Validate logical filters; a bare string is refused since it would be split into chars."""
    if isinstance(filters, str):
        raise InvalidSubject("filters must be a sequence of filters, not a single string")
    checked = tuple(validate_filter(f) for f in filters)
    if not checked:
        raise InvalidSubject("at least one filter is required")
    return checked
