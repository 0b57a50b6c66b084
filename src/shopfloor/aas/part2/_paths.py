"""idShortPaths (IDTA-01002 Part 2): the idShorts from a submodel down to an element,
joined by dots, with `[n]` for the n-th element of a SubmodelElementList:
`Controls.start`, `Readings[2].value`, `Matrix[0][1]`.

`parse` and `format_path` are pure; `resolve` walks a basyx submodel, and `Slot` is where
an element sits in its parent, so a write can replace it in place (a list keeps its
order, a collection its iteration order).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, MutableSet, Sequence
from dataclasses import dataclass

from basyx.aas import model

from .._errors import AasConflict, AasNotFound, InvalidAasRequest

__all__ = ["Segment", "Slot", "add_child", "children", "format_path", "parse", "resolve", "walk"]

#: An idShort, or an index into a SubmodelElementList.
Segment = str | int

_PART = re.compile(r"([A-Za-z][A-Za-z0-9_-]*)((?:\[\d+\])*)")
_INDEX = re.compile(r"\[(\d+)\]")


def parse(text: str) -> tuple[Segment, ...]:
    """`Readings[2].value` as `("Readings", 2, "value")`, or `InvalidAasRequest`."""
    segments: list[Segment] = []
    for part in text.split("."):
        match = _PART.fullmatch(part)
        if match is None:
            raise InvalidAasRequest(
                f"{text!r} is not an idShortPath (idShorts joined by dots, [n] for a list index)",
                code="invalid_id_short_path",
            )
        segments.append(match[1])
        segments.extend(int(index) for index in _INDEX.findall(match[2]))
    return tuple(segments)


def format_path(segments: Sequence[Segment]) -> str:
    text = ""
    for segment in segments:
        if isinstance(segment, int):
            text += f"[{segment}]"
        else:
            text += f".{segment}" if text else segment
    return text


def children(element: model.SubmodelElement | model.Submodel) -> list[model.SubmodelElement]:
    """The elements an element holds, in order: a submodel's, a collection's or list's
    value, an entity's statements, an annotated relationship's annotations (by idShort)."""
    held = _held(element)
    if held is None:
        return []
    if isinstance(element, model.AnnotatedRelationshipElement):
        # A set in basyx, in no order: by idShort, as the API writes them (`_http.to_json`).
        return sorted(held, key=lambda e: str(e.id_short))
    return list(held)


def _held(element: model.Referable) -> MutableSet[model.SubmodelElement] | None:
    if isinstance(element, model.Submodel):
        return element.submodel_element
    if isinstance(element, model.SubmodelElementCollection | model.SubmodelElementList):
        return element.value
    if isinstance(element, model.Entity):
        return element.statement
    if isinstance(element, model.AnnotatedRelationshipElement):
        return element.annotation  # type: ignore[return-value]
    return None


@dataclass(frozen=True, slots=True)
class Slot:
    """An element and where it sits: its parent and, in a list, its index."""

    parent: model.Submodel | model.SubmodelElement
    element: model.SubmodelElement
    path: tuple[Segment, ...]

    def replace(self, new: model.SubmodelElement) -> None:
        """Put `new` where the element is, keeping the order of the parent."""
        held = _held(self.parent)
        assert held is not None
        if isinstance(held, model.OrderedNamespaceSet):
            index = held.index(self.element)
            held.remove(self.element)
            held.insert(index, new)
            return
        order = list(held)
        index = order.index(self.element)
        for element in order[index:]:
            held.remove(element)
        for element in [new, *order[index + 1 :]]:
            held.add(element)

    def remove(self) -> None:
        held = _held(self.parent)
        assert held is not None
        held.remove(self.element)


def add_child(
    parent: model.Submodel | model.SubmodelElement, element: model.SubmodelElement
) -> None:
    """Add `element` to what `parent` holds (at the end of a list)."""
    held = _held(parent)
    if held is None:
        raise InvalidAasRequest(
            f"a {type(parent).__name__} holds no elements", code="aas_not_a_container"
        )
    try:
        held.add(element)
    except (KeyError, ValueError, model.AASConstraintViolation) as exc:
        raise _conflict_or_invalid(exc) from exc


def _conflict_or_invalid(exc: Exception) -> Exception:
    # AASd-022: idShorts are unique among the elements one container holds.
    if isinstance(exc, model.AASConstraintViolation) and exc.constraint_id == 22:
        return AasConflict(f"the idShort is taken here: {exc}", code="aas_id_short_taken")
    return InvalidAasRequest(f"the element does not fit here: {exc}", code="invalid_aas_element")


def resolve(submodel: model.Submodel, segments: Sequence[Segment]) -> Slot:
    """The element at `segments` in `submodel`, or `AasNotFound`."""
    parent: model.Submodel | model.SubmodelElement = submodel
    element: model.SubmodelElement | None = None
    for depth, segment in enumerate(segments):
        if element is not None:
            parent = element
        held = _held(parent)
        found: model.SubmodelElement | None = None
        if held is not None:
            if isinstance(segment, int):
                if isinstance(parent, model.SubmodelElementList) and segment < len(held):
                    found = held[segment]  # type: ignore[index]
            elif not isinstance(parent, model.SubmodelElementList):
                found = next((e for e in held if e.id_short == segment), None)
        if found is None:
            raise AasNotFound(
                f"no element {format_path(segments[: depth + 1])!r} in the submodel "
                f"{submodel.id!r}",
                code="aas_element_not_found",
            )
        element = found
    if element is None:
        raise InvalidAasRequest("an idShortPath names an element", code="invalid_id_short_path")
    return Slot(parent, element, tuple(segments))


def walk(
    elements: Sequence[model.SubmodelElement],
    prefix: tuple[Segment, ...] = (),
    *,
    in_list: bool = False,
    depth: float = float("inf"),
) -> Iterator[tuple[tuple[Segment, ...], model.SubmodelElement]]:
    """Every element under `elements` with its path, parents before their children;
    `depth` 1 stops at `elements` themselves."""
    if depth <= 0:
        return
    for index, element in enumerate(elements):
        path = (*prefix, index) if in_list else (*prefix, str(element.id_short))
        yield path, element
        yield from walk(
            children(element), path,
            in_list=isinstance(element, model.SubmodelElementList), depth=depth - 1,
        )  # fmt: skip
