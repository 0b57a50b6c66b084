"""The value-only serialisation (IDTA-01001 Part 1 §11.4, used by Part 2's `$value`),
rule by rule, both ways, on the metamodel's JSON (what basyx's encoder writes):

    Property                    the value as JSON of its type: xs:boolean a boolean, the
                                numeric types a number, every other type a string
    MultiLanguageProperty       [{"en": "text"}, {"de": "Text"}]
    Range                       {"min": v, "max": v} (typed as a Property's value)
    File                        {"contentType": ..., "value": "path or URL"}
    Blob                        {"contentType": ..., "value": "base64"} (`value` only
                                with extent=withBlobValue)
    ReferenceElement            the Reference
    RelationshipElement         {"first": Reference, "second": Reference}
    AnnotatedRelationshipElement  ... and "annotations": [{"idShort": value}, ...]
    Entity                      {"statements": {idShort: value}, "entityType": ...,
                                 "globalAssetId": ..., "specificAssetIds": [...]}
    SubmodelElementCollection   {idShort: value, ...}
    SubmodelElementList         [value, ...]
    BasicEventElement           {"observed": Reference}
    Operation, Capability       none: in a container they are left out; on their own
                                asking for their value is an `InvalidAasRequest`

`value_of` reads, `with_value` writes a value into an element's JSON, a Property's or a
Range's checked against its `valueType` (the caller decodes the result with basyx's
strict decoder, which checks the rest).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from basyx.aas.model import datatypes

from .._errors import InvalidAasRequest

__all__ = ["has_value", "submodel_value", "value_of", "with_submodel_value", "with_value"]

Json = dict[str, Any]

_INTEGERS = {
    "xs:integer", "xs:long", "xs:int", "xs:short", "xs:byte", "xs:nonNegativeInteger",
    "xs:positiveInteger", "xs:unsignedLong", "xs:unsignedInt", "xs:unsignedShort",
    "xs:unsignedByte", "xs:negativeInteger", "xs:nonPositiveInteger",
}  # fmt: skip
_REALS = {"xs:decimal", "xs:double", "xs:float"}
_NO_VALUE = {"Operation", "Capability"}
#: For an entity's value: its JSON key and the value-only key.
_ENTITY_KEYS = ("entityType", "globalAssetId", "specificAssetIds")


def _invalid(message: str) -> InvalidAasRequest:
    return InvalidAasRequest(message, code="invalid_aas_value")


def has_value(element: Json) -> bool:
    return element.get("modelType") not in _NO_VALUE


# -- reading -------------------------------------------------------------------------


def typed(text: str | None, value_type: str | None) -> Any:
    """An xsd lexical value as the JSON value the value-only serialisation wants."""
    if text is None:
        return None
    if value_type == "xs:boolean":
        return text.strip() in ("true", "1")
    if value_type in _INTEGERS:
        try:
            return int(text)
        except ValueError:
            return text
    if value_type in _REALS:
        try:
            number = float(text) if value_type != "xs:decimal" else float(Decimal(text))
        except (ValueError, InvalidOperation):
            return text
        # JSON has no NaN or infinity: those stay in their xsd spelling.
        return number if math.isfinite(number) else text
    return text


def value_of(element: Json, *, depth: float = math.inf, with_blob: bool = True) -> Any:
    """The value-only form of one element's JSON; `depth` 1 (`level=core`) gives a
    container's direct children but their own children empty."""
    kind = element.get("modelType")
    if kind in _NO_VALUE:
        raise InvalidAasRequest(
            f"a {kind} has no value-only serialisation", code="aas_no_value_only"
        )
    if kind == "Property":
        return typed(element.get("value"), element.get("valueType"))
    if kind == "MultiLanguageProperty":
        return [{s["language"]: s["text"]} for s in element.get("value", [])]
    if kind == "Range":
        return {
            end: typed(element[end], element.get("valueType"))
            for end in ("min", "max") if end in element
        }  # fmt: skip
    if kind in ("File", "Blob"):
        shown: Json = {"contentType": element.get("contentType")}
        if "value" in element and (with_blob or kind == "File"):
            shown["value"] = element["value"]
        return shown
    if kind == "ReferenceElement":
        return element.get("value")
    if kind in ("RelationshipElement", "AnnotatedRelationshipElement"):
        pair: Json = {"first": element.get("first"), "second": element.get("second")}
        if kind == "AnnotatedRelationshipElement":
            pair["annotations"] = [
                {a["idShort"]: value_of(a, depth=depth - 1, with_blob=with_blob)}
                for a in element.get("annotations", []) if depth > 0
            ]  # fmt: skip
        return pair
    if kind == "Entity":
        entity: Json = {"statements": _named(element.get("statements", []), depth, with_blob)}
        entity.update({key: element[key] for key in _ENTITY_KEYS if key in element})
        return entity
    if kind == "BasicEventElement":
        return {"observed": element.get("observed")}
    if kind == "SubmodelElementCollection":
        return _named(element.get("value", []), depth, with_blob)
    if kind == "SubmodelElementList":
        if depth <= 0:
            return []
        return [
            value_of(e, depth=depth - 1, with_blob=with_blob) if has_value(e) else None
            for e in element.get("value", [])
        ]
    raise InvalidAasRequest(f"unknown element type {kind!r}", code="aas_no_value_only")


def _named(elements: list[Json], depth: float, with_blob: bool) -> Json:
    if depth <= 0:
        return {}
    return {
        e["idShort"]: value_of(e, depth=depth - 1, with_blob=with_blob)
        for e in elements if has_value(e)
    }  # fmt: skip


def submodel_value(submodel: Json, *, depth: float = math.inf, with_blob: bool = True) -> Json:
    """A submodel's value-only form: its elements by idShort."""
    return _named(submodel.get("submodelElements", []), depth, with_blob)


# -- writing -------------------------------------------------------------------------


def lexical(value: Any, value_type: str | None) -> str:
    """A value-only JSON value as the xsd lexical form the metamodel's JSON keeps,
    checked against `value_type` (`InvalidAasRequest` naming the type)."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, int | float):
        whole = value_type in _INTEGERS and isinstance(value, float) and value.is_integer()
        text = str(int(value)) if whole else repr(value)
    elif isinstance(value, str):
        text = value
    else:
        raise _invalid(f"a {value_type or 'value'} is a string, a number or a boolean")
    xsd = datatypes.XSD_TYPE_CLASSES.get(value_type or "")
    if xsd is not None:
        try:
            datatypes.from_xsd(text, xsd)
        except (ValueError, TypeError) as exc:
            raise _invalid(f"{value!r} is not a valid {value_type}: {exc}") from exc
    return text


def with_value(element: Json, value: Any) -> Json:
    """`element` (the metamodel's JSON of one element) with `value` (value-only) set."""
    kind = element.get("modelType")
    new = dict(element)
    if kind in _NO_VALUE:
        raise InvalidAasRequest(
            f"a {kind} has no value-only serialisation", code="aas_no_value_only"
        )
    if kind == "Property":
        _set(new, "value", None if value is None else lexical(value, element.get("valueType")))
    elif kind == "MultiLanguageProperty":
        new["value"] = _lang_strings(value)
        if not new["value"]:
            del new["value"]
    elif kind == "Range":
        ends = _object(value, kind)
        for end in ("min", "max"):
            got = ends.get(end)
            _set(new, end, None if got is None else lexical(got, element.get("valueType")))
    elif kind in ("File", "Blob"):
        parts = _object(value, kind)
        if "contentType" in parts:
            new["contentType"] = _string(parts["contentType"], "contentType")
        if "value" in parts:
            _set(new, "value", None if parts["value"] is None else _string(parts["value"], "value"))
    elif kind == "ReferenceElement":
        _set(new, "value", None if value is None else _object(value, kind))
    elif kind in ("RelationshipElement", "AnnotatedRelationshipElement"):
        parts = _object(value, kind)
        for end in ("first", "second"):
            if end in parts:
                new[end] = _object(parts[end], end)
        if kind == "AnnotatedRelationshipElement" and "annotations" in parts:
            named: Json = {}
            if not isinstance(parts["annotations"], list):
                raise _invalid("annotations are a list of {idShort: value}")
            for entry in parts["annotations"]:
                named.update(_object(entry, "annotation"))
            new["annotations"] = _with_named(element.get("annotations", []), named)
    elif kind == "Entity":
        parts = _object(value, kind)
        if "statements" in parts:
            new["statements"] = _with_named(
                element.get("statements", []), _object(parts["statements"], "statements")
            )
        for key in _ENTITY_KEYS:
            if key in parts:
                _set(new, key, parts[key])
    elif kind == "BasicEventElement":
        parts = _object(value, kind)
        if "observed" in parts:
            new["observed"] = _object(parts["observed"], "observed")
    elif kind == "SubmodelElementCollection":
        new["value"] = _with_named(element.get("value", []), _object(value, kind))
    elif kind == "SubmodelElementList":
        items = element.get("value", [])
        if not isinstance(value, list) or len(value) != len(items):
            raise _invalid(
                f"the value of this list is a list of {len(items)} values (one per element)"
            )
        new["value"] = [
            with_value(item, got) if has_value(item) else item
            for item, got in zip(items, value, strict=True)
        ]
    else:
        raise InvalidAasRequest(f"unknown element type {kind!r}", code="aas_no_value_only")
    return new


def with_submodel_value(submodel: Json, value: Any) -> Json:
    new = dict(submodel)
    new["submodelElements"] = _with_named(
        submodel.get("submodelElements", []), _object(value, "Submodel")
    )
    return new


def _with_named(elements: list[Json], values: Mapping[str, Any]) -> list[Json]:
    by_id = {e.get("idShort"): e for e in elements}
    unknown = sorted(set(values) - set(by_id))
    if unknown:
        raise _invalid(f"no element {', '.join(map(repr, unknown))} here to set a value of")
    return [
        with_value(e, values[e["idShort"]]) if e.get("idShort") in values else e for e in elements
    ]


def _lang_strings(value: Any) -> list[Json]:
    if not isinstance(value, list):
        raise _invalid('a MultiLanguageProperty\'s value is a list of {"language": "text"}')
    strings = []
    for entry in value:
        for language, text in _object(entry, "language string").items():
            strings.append({"language": language, "text": _string(text, language)})
    return strings


def _object(value: Any, what: str) -> Json:
    if not isinstance(value, dict):
        raise _invalid(f"the value of a {what} is a JSON object")
    return value


def _string(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise _invalid(f"{what} is a string")
    return value


def _set(target: Json, key: str, value: Any) -> None:
    if value is None:
        target.pop(key, None)
    else:
        target[key] = value
