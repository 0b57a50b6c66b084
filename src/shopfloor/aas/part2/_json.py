"""basyx objects to and from the metamodel's JSON, for the HTTP API and the Manager."""

from __future__ import annotations

import json
from typing import Any, TypeVar

from basyx.aas import model

from .._errors import InvalidAasRequest

__all__ = ["Json", "decode_object", "to_json"]

Json = dict[str, Any]
T = TypeVar("T")

#: Arrays that basyx holds as sets, so in no order: sorted, so an object reads the same
#: every time (a shell's submodel references, a concept description's cases, the pairs
#: of a value list; an annotated relationship's annotations, by idShort).
_SETS = ("submodels", "isCaseOf", "valueReferencePairs")


def to_json(obj: object) -> Any:
    """basyx objects as the metamodel's JSON (plain dicts and lists), without empty
    arrays: the schema allows none (every array has `minItems: 1`), but basyx's encoder
    writes some (an Entity's `specificAssetIds`)."""
    # basyx's adapters import lxml (0.3 s at every command's start): imported when used
    from basyx.aas.adapter.json import AASToJsonEncoder

    return _normalised(json.loads(json.dumps(obj, cls=AASToJsonEncoder)))


def _normalised(data: Any) -> Any:
    if isinstance(data, dict):
        found = {k: _normalised(v) for k, v in data.items() if v != []}
        for key in _SETS:
            if isinstance(found.get(key), list):
                found[key].sort(key=lambda item: json.dumps(item, sort_keys=True))
        if found.get("modelType") == "AnnotatedRelationshipElement" and "annotations" in found:
            found["annotations"].sort(key=lambda item: str(item.get("idShort")))
        return found
    if isinstance(data, list):
        return [_normalised(item) for item in data]
    return data


def decode_object(data: Any, cls: type[T], what: str) -> T:
    """The metamodel's JSON of a `cls`, read strictly, or `InvalidAasRequest` naming the
    defect."""
    from basyx.aas.adapter.json import StrictAASFromJsonDecoder

    try:
        obj = json.loads(json.dumps(data), cls=StrictAASFromJsonDecoder)
    except (KeyError, TypeError, ValueError, model.AASConstraintViolation) as exc:
        raise InvalidAasRequest(f"not a valid {what}: {exc}", code="invalid_aas_body") from exc
    if not isinstance(obj, cls):
        raise InvalidAasRequest(
            f"expected a {what}, got {data.get('modelType') if isinstance(data, dict) else data!r}",
            code="invalid_aas_body",
        )
    return obj
