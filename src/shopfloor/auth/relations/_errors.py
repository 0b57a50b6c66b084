"""Relation graph failures (a subtree of `shopfloor.core`'s error tree).

RelationError                   every failure of the relation graph (relation_error, 503)
├── InvalidRelationTuple        an object, subject or tuple that does not parse (invalid):
│                               invalid_relation_object, invalid_relation_subject,
│                               invalid_relation_tuple
├── UnknownRelation             a relation the organisation's schema does not declare (invalid)
├── TooManyRelationTuples       more tuples in one request than one write takes (too_large)
├── InvalidRelationFilter       a filter that is not one, or a delete that names none (invalid)
├── InvalidRelationSchema       a schema that does not parse or validate (invalid):
│                               relation_schema_cycle, relation_schema_media_type (unsupported),
│                               relation_schema_too_large (too_large)
├── RelationInUse               a new schema drops a relation that tuples still use (conflict)
└── (shopfloor.sdk)             RelationsUnreachable, RelationsRefused: the agents' cache
"""

from __future__ import annotations

from shopfloor.core import ErrorKind, ShopfloorError

__all__ = [
    "InvalidRelationFilter",
    "InvalidRelationSchema",
    "InvalidRelationTuple",
    "RelationError",
    "RelationInUse",
    "TooManyRelationTuples",
    "UnknownRelation",
]


class RelationError(ShopfloorError):
    code = "relation_error"
    kind = ErrorKind.UNAVAILABLE


class InvalidRelationTuple(RelationError):
    code = "invalid_relation_tuple"
    kind = ErrorKind.INVALID


class UnknownRelation(RelationError):
    code = "unknown_relation"
    kind = ErrorKind.INVALID


class TooManyRelationTuples(RelationError):
    code = "too_many_relation_tuples"
    kind = ErrorKind.TOO_LARGE


class InvalidRelationFilter(RelationError):
    code = "invalid_relation_filter"
    kind = ErrorKind.INVALID


class InvalidRelationSchema(RelationError):
    code = "invalid_relation_schema"
    kind = ErrorKind.INVALID


class RelationInUse(RelationError):
    code = "relation_in_use"
    kind = ErrorKind.CONFLICT
