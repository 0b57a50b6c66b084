"""The relationship graph: Zanzibar-style tuples, a schema of relations, checks and expand.

    relations = platform.get(RelationsService).relations     # .capability
    await relations.add(org_id, [RelationTuple.parse("agent:cell-1 controls group:line-a")])
    result = await relations.check(org_id, "agent:cell-1", "reads", "agent:press-01")
    result.allowed, result.path                                # the tuples that grant it

The pure parts (`RelationTuple`, `RelationSchema`, `RelationGraph`, the feed's wire
format) hold no I/O: the agents' `shopfloor.sdk.RelationCache` runs the same check.
docs/relations.md has the semantics, with examples.
"""

from ._errors import (
    InvalidRelationFilter,
    InvalidRelationSchema,
    InvalidRelationTuple,
    RelationError,
    RelationInUse,
    TooManyRelationTuples,
    UnknownRelation,
)
from ._feed import (
    KEEPALIVE,
    Checkpoint,
    FeedItem,
    Reset,
    SchemaChange,
    SseDecoder,
    decode_change,
    encode_change,
    encode_sse,
)
from ._graph import (
    DEFAULT_MAX_DEPTH,
    DEFAULT_MAX_EXPAND,
    DEPTH_LIMIT_EXCEEDED,
    NOT_RELATED,
    CheckResult,
    ExpandNode,
    RelationGraph,
)
from ._model import (
    Change,
    RelationTuple,
    parse_object,
    parse_relation,
    parse_subject,
    parse_type,
    split_subject,
)
from ._relations import MAX_WRITE, RelationOptions, Relations, changed_subject
from ._schema import DEFAULT_SCHEMA, MEMBER, RelationDef, RelationSchema, parse_schema
from ._store import (
    ChangeBatch,
    RelationFilter,
    RelationStore,
    Snapshot,
    StoredSchema,
    StoredTuple,
    TuplePage,
    Written,
)
from ._tables import MIGRATIONS

__all__ = [
    "DEFAULT_MAX_DEPTH",
    "DEFAULT_MAX_EXPAND",
    "DEFAULT_SCHEMA",
    "DEPTH_LIMIT_EXCEEDED",
    "KEEPALIVE",
    "MAX_WRITE",
    "MEMBER",
    "MIGRATIONS",
    "NOT_RELATED",
    "Change",
    "ChangeBatch",
    "CheckResult",
    "Checkpoint",
    "ExpandNode",
    "FeedItem",
    "InvalidRelationFilter",
    "InvalidRelationSchema",
    "InvalidRelationTuple",
    "RelationDef",
    "RelationError",
    "RelationFilter",
    "RelationGraph",
    "RelationInUse",
    "RelationOptions",
    "RelationSchema",
    "RelationStore",
    "RelationTuple",
    "Relations",
    "Reset",
    "SchemaChange",
    "Snapshot",
    "SseDecoder",
    "StoredSchema",
    "StoredTuple",
    "TooManyRelationTuples",
    "TuplePage",
    "UnknownRelation",
    "Written",
    "changed_subject",
    "decode_change",
    "encode_change",
    "encode_sse",
    "parse_object",
    "parse_relation",
    "parse_schema",
    "parse_subject",
    "parse_type",
    "split_subject",
]
