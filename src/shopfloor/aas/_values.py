"""Element values in their value-only form, for the services the Manager offers a Core.

Only three kinds of element are read and written this way, as IDTA Part 2's value-only
serialisation has them:

- Property: a JSON boolean for xs:boolean, a number for the integer and floating
  types (decimal as a string, to keep its digits), otherwise the xsd text
  (`"2026-12-01T10:00:00Z"`); `null` clears it. A value is checked against the
  Property's `valueType` on writing.
- Range: `{"min": ..., "max": ...}`, each as a Property's value.
- MultiLanguageProperty: `[{"en": "text"}, {"de": "Text"}]` (an object
  `{"en": "text"}` is taken as well).

Anything else is refused with `InvalidAasRequest` (the HTTP API serves the rest).
"""

from __future__ import annotations

import decimal
from collections.abc import Mapping
from typing import Any

from basyx.aas import model

from ._errors import AasNotFound, InvalidAasRequest

__all__ = ["element_at", "read_value", "write_value"]

_KINDS = "Property, Range and MultiLanguageProperty"


def element_at(submodel: model.Submodel, path: str) -> model.SubmodelElement:
    """The element at the idShortPath `path` (`Controls.speed`, `List[2].value`)."""
    try:
        found = submodel.get_referable(path)
    except KeyError:
        raise AasNotFound(f"no element {path!r} in the submodel {submodel.id!r}") from None
    except (TypeError, ValueError) as exc:
        raise InvalidAasRequest(f"{path!r} is not a path into {submodel.id!r}: {exc}") from exc
    if not isinstance(found, model.SubmodelElement):
        raise AasNotFound(f"no element {path!r} in the submodel {submodel.id!r}")
    return found


def read_value(element: model.SubmodelElement) -> Any:
    if isinstance(element, model.Property):
        return _to_json(element.value)
    if isinstance(element, model.Range):
        return {"min": _to_json(element.min), "max": _to_json(element.max)}
    if isinstance(element, model.MultiLanguageProperty):
        return [{lang: text} for lang, text in (element.value or {}).items()]
    raise InvalidAasRequest(
        f"only {_KINDS} values are read this way, not a {type(element).__name__}"
    )


def write_value(element: model.SubmodelElement, value: Any) -> None:
    if isinstance(element, model.Property):
        element.value = _from_json(value, element.value_type)
    elif isinstance(element, model.Range):
        if not isinstance(value, Mapping) or set(value) - {"min", "max"}:
            raise InvalidAasRequest('a Range value is {"min": ..., "max": ...}')
        element.min = _from_json(value.get("min"), element.value_type)
        element.max = _from_json(value.get("max"), element.value_type)
    elif isinstance(element, model.MultiLanguageProperty):
        element.value = _lang_strings(value)
    else:
        raise InvalidAasRequest(
            f"only {_KINDS} values are written this way, not a {type(element).__name__}"
        )


def _to_json(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, decimal.Decimal):
        return str(value)
    return model.datatypes.xsd_repr(value)


def _from_json(value: Any, value_type: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, int | float | str):
        text = str(value)
    else:
        raise InvalidAasRequest(
            f"a value of type {model.datatypes.XSD_TYPE_NAMES[value_type]} "
            "is a JSON string, number or boolean"
        )
    try:
        return model.datatypes.from_xsd(text, value_type)
    except (ValueError, TypeError) as exc:
        name = model.datatypes.XSD_TYPE_NAMES[value_type]
        raise InvalidAasRequest(f"{value!r} is not a valid {name}: {exc}") from exc


def _lang_strings(value: Any) -> model.MultiLanguageTextType | None:
    if value is None:
        return None
    pairs: dict[str, str] = {}
    items = [value] if isinstance(value, Mapping) else value
    if not isinstance(items, list):
        raise InvalidAasRequest('a MultiLanguageProperty value is [{"en": "text"}, ...]')
    for item in items:
        if not isinstance(item, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in item.items()
        ):
            raise InvalidAasRequest('a MultiLanguageProperty value is [{"en": "text"}, ...]')
        pairs.update(item)
    try:
        return model.MultiLanguageTextType(pairs) if pairs else None
    except (ValueError, KeyError) as exc:
        raise InvalidAasRequest(f"not a valid MultiLanguageProperty value: {exc}") from exc
