"""`level` and `extent` (IDTA-01002 Part 2): how much of a submodel or element a response
holds. `level=core` gives the requested object's direct children but leaves their own
children out; `extent=withoutBlobValue` (the default) leaves every Blob's bytes out."""

from __future__ import annotations

import enum
import math
from typing import Any

__all__ = ["Extent", "Level", "shaped"]

Json = dict[str, Any]

#: The keys under which an object holds elements, by modelType.
CHILDREN: dict[str, str] = {
    "Submodel": "submodelElements",
    "SubmodelElementCollection": "value",
    "SubmodelElementList": "value",
    "Entity": "statements",
    "AnnotatedRelationshipElement": "annotations",
}


class Level(enum.StrEnum):
    DEEP = "deep"
    CORE = "core"

    @property
    def depth(self) -> float:
        return math.inf if self is Level.DEEP else 1


class Extent(enum.StrEnum):
    WITHOUT_BLOB_VALUE = "withoutBlobValue"
    WITH_BLOB_VALUE = "withBlobValue"

    @property
    def with_blob(self) -> bool:
        return self is Extent.WITH_BLOB_VALUE


def shaped(obj: Json, *, depth: float = math.inf, with_blob: bool = False) -> Json:
    """`obj` (the metamodel's JSON) with children below `depth` and Blob bytes left out."""
    kind = obj.get("modelType")
    if kind == "Blob" and not with_blob and "value" in obj:
        return {key: value for key, value in obj.items() if key != "value"}
    key = CHILDREN.get(str(kind))
    if key is None or key not in obj:
        return obj
    new = dict(obj)
    if depth <= 0:
        del new[key]
    else:
        new[key] = [shaped(child, depth=depth - 1, with_blob=with_blob) for child in obj[key]]
    return new
