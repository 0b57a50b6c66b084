"""What the AAS tests share: basyx's full example and a comparison that means it."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from basyx.aas import model
from basyx.aas.adapter.json import AASToJsonEncoder
from basyx.aas.examples.data import example_aas

#: Unordered in the metamodel, and kept as sets by basyx or built from sets by its
#: example: their order differs between two calls of `create_full_example()`.
_UNORDERED = {
    "submodels", "isCaseOf", "refersTo", "valueReferencePairs", "statements", "annotations",
    "qualifiers",
}  # fmt: skip


def example() -> list[model.Identifiable]:
    return list(example_aas.create_full_example())


def serialised(objects: Iterable[model.Identifiable]) -> list[str]:
    """Each object's JSON serialisation, sets sorted: equal exactly when nothing changed
    (basyx's `==` compares identifiers only)."""

    def canonical(node: Any, key: str = "") -> Any:
        if isinstance(node, dict):
            collection = node.get("modelType") == "SubmodelElementCollection"
            return {
                name: canonical(value, "collection" if collection and name == "value" else name)
                for name, value in node.items()
            }
        if isinstance(node, list):
            items = [canonical(item) for item in node]
            if key in _UNORDERED or key == "collection":
                items.sort(key=lambda item: json.dumps(item, sort_keys=True))
            return items
        return node

    return sorted(
        json.dumps(canonical(json.loads(json.dumps(obj, cls=AASToJsonEncoder))), sort_keys=True)
        for obj in objects
    )
