"""`$metadata` (IDTA-01002 Part 2): an element or submodel without its value, i.e. the
metamodel's JSON less the keys the value-only serialisation carries (`_values.py`).
`with_metadata` is the write: the body's metadata over the held object's value."""

from __future__ import annotations

from typing import Any

from .._errors import InvalidAasRequest

__all__ = ["has_metadata", "metadata", "with_metadata"]

Json = dict[str, Any]

#: What `$metadata` leaves out, by modelType: what `$value` holds, except a File's or
#: Blob's `contentType` and an Entity's `entityType`, which both show: v3.0 requires
#: them on every element (its test engine reads `$metadata` as elements), v3.1 allows
#: them anywhere, so one `$metadata` reads under both.
VALUE_KEYS: dict[str, tuple[str, ...]] = {
    "Submodel": ("submodelElements",),
    "Property": ("value", "valueId"),
    "MultiLanguageProperty": ("value", "valueId"),
    "Range": ("min", "max"),
    "File": ("value",),
    "Blob": ("value",),
    "ReferenceElement": ("value",),
    "RelationshipElement": ("first", "second"),
    "AnnotatedRelationshipElement": ("first", "second", "annotations"),
    "Entity": ("statements", "globalAssetId", "specificAssetIds"),
    "SubmodelElementCollection": ("value",),
    "SubmodelElementList": ("value",),
    "BasicEventElement": ("observed",),
}

#: The value's types that `$metadata` shows too: kept when a write leaves them out.
_TYPES = ("contentType", "entityType")


def _kind(obj: Json) -> str:
    # The metamodel's JSON gives every element a modelType; a submodel has one too.
    return str(obj.get("modelType", ""))


def has_metadata(obj: Json) -> bool:
    """Operations and Capabilities have no value, so no metadata apart from themselves."""
    return _kind(obj) in VALUE_KEYS


def metadata(obj: Json) -> Json:
    kind = _kind(obj)
    if kind not in VALUE_KEYS:
        raise InvalidAasRequest(
            f"a {kind or 'object'} has no value, so no $metadata apart from itself",
            code="aas_no_metadata",
        )
    dropped = VALUE_KEYS[kind]
    return {key: value for key, value in obj.items() if key not in dropped}


def with_metadata(held: Json, body: Any) -> Json:
    """`body` (metadata) with the value of `held`; the modelType, a submodel's id and an
    element's idShort (its place in the path) stay what they are."""
    if not isinstance(body, dict):
        raise InvalidAasRequest("$metadata is a JSON object", code="invalid_aas_metadata")
    kind = _kind(held)
    fixed = ("modelType", "id") if kind == "Submodel" else ("modelType", "idShort")
    for key in fixed:
        if key in body and body[key] != held.get(key):
            raise InvalidAasRequest(
                f"$metadata may not change the {key} ({held.get(key)!r})",
                code="invalid_aas_metadata",
            )
    kept = VALUE_KEYS.get(kind, ())
    merged = {key: value for key, value in body.items() if key not in kept}
    for key in fixed:
        if key in held:
            merged[key] = held[key]
    merged.update({key: held[key] for key in kept if key in held})
    for key in _TYPES:
        if key in held and key not in merged:
            merged[key] = held[key]
    return merged
