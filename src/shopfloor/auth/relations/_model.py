"""Objects, subjects and tuples of the relation graph (pure: no I/O).

    agent:press-01                      an object: `type:id`
    group:line-a#member                 a userset: everyone who is `member` of group:line-a
    agent:cell-1 controls agent:press-01   a tuple: `subject relation object`

A type and a relation are `[a-z][a-z0-9_]*` (at most 64 characters), an id is 1 to 128
characters of `[A-Za-z0-9._/-]`: a thing's or user's UUID, an agent's name, a path-like
name. Neither holds `:`, `#` or a space, so every text form reads back one way.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from ._errors import InvalidRelationTuple

__all__ = [
    "MAX_ID_LENGTH",
    "MAX_NAME_LENGTH",
    "Change",
    "RelationTuple",
    "parse_object",
    "parse_relation",
    "parse_subject",
    "parse_type",
    "split_subject",
]

MAX_NAME_LENGTH = 64
MAX_ID_LENGTH = 128
_NAME = rf"[a-z][a-z0-9_]{{0,{MAX_NAME_LENGTH - 1}}}"
_ID = rf"[A-Za-z0-9._/-]{{1,{MAX_ID_LENGTH}}}"
_NAME_RE = re.compile(_NAME)
_OBJECT_RE = re.compile(rf"{_NAME}:{_ID}")
_SUBJECT_RE = re.compile(rf"{_NAME}:{_ID}(?:#{_NAME})?")


def parse_type(text: str) -> str:
    if not isinstance(text, str) or not _NAME_RE.fullmatch(text):
        raise InvalidRelationTuple(
            f"{text!r} is not an object type: [a-z][a-z0-9_]*, at most {MAX_NAME_LENGTH}",
            code="invalid_relation_object",
        )
    return text


def parse_object(text: str) -> str:
    """`type:id`, as given; `InvalidRelationTuple` (invalid_relation_object) otherwise."""
    if not isinstance(text, str) or not _OBJECT_RE.fullmatch(text):
        raise InvalidRelationTuple(
            f"{text!r} is not an object: type:id, the type [a-z][a-z0-9_]*, the id 1 to "
            f"{MAX_ID_LENGTH} characters of A-Z a-z 0-9 . _ / -",
            code="invalid_relation_object",
        )
    return text


def parse_subject(text: str) -> str:
    """`type:id` or a userset `type:id#relation`; invalid_relation_subject otherwise."""
    if not isinstance(text, str) or not _SUBJECT_RE.fullmatch(text):
        raise InvalidRelationTuple(
            f"{text!r} is not a subject: type:id, or type:id#relation for everyone who "
            "holds that relation on the object",
            code="invalid_relation_subject",
        )
    return text


def parse_relation(text: str) -> str:
    if not isinstance(text, str) or not _NAME_RE.fullmatch(text):
        raise InvalidRelationTuple(
            f"{text!r} is not a relation name: [a-z][a-z0-9_]*, at most {MAX_NAME_LENGTH}",
            code="invalid_relation_tuple",
        )
    return text


def split_subject(subject: str) -> tuple[str, str | None]:
    """`group:a#member` → (`group:a`, `member`); `agent:x` → (`agent:x`, None)."""
    found, sep, relation = subject.partition("#")
    return (found, relation) if sep else (found, None)


@dataclass(frozen=True, slots=True)
class RelationTuple:
    """`subject relation object`, already checked (build with `parse` or `from_json`)."""

    subject: str
    relation: str
    object: str

    def __str__(self) -> str:
        return f"{self.subject} {self.relation} {self.object}"

    @property
    def object_type(self) -> str:
        return self.object.partition(":")[0]

    @classmethod
    def of(cls, subject: str, relation: str, obj: str) -> RelationTuple:
        """A tuple from its three parts, each checked."""
        return cls(parse_subject(subject), parse_relation(relation), parse_object(obj))

    @classmethod
    def parse(cls, text: str) -> RelationTuple:
        """From the text form, `agent:cell-1 controls agent:press-01`."""
        parts = text.split() if isinstance(text, str) else []
        if len(parts) != 3:
            raise InvalidRelationTuple(
                f"{text!r} is not a tuple: `subject relation object`, e.g. "
                "`agent:cell-1 controls agent:press-01`"
            )
        return cls.of(*parts)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RelationTuple:
        try:
            return cls.of(data["subject"], data["relation"], data["object"])
        except (KeyError, TypeError) as exc:
            raise InvalidRelationTuple(
                'a tuple is {"subject", "relation", "object"}, each a string'
            ) from exc

    def to_json(self) -> dict[str, str]:
        return {"subject": self.subject, "relation": self.relation, "object": self.object}


Op = Literal["add", "remove"]


@dataclass(frozen=True, slots=True)
class Change:
    """One tuple added or removed at a revision of an organisation's graph."""

    revision: int
    op: Op
    tuple: RelationTuple

    def to_json(self) -> dict[str, Any]:
        return {"revision": self.revision, "op": self.op, "tuple": self.tuple.to_json()}
