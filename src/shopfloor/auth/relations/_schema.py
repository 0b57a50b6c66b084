"""The relation schema: which relations an organisation's tuples may use, and which imply
which (pure: no I/O).

    relations:
      member:   {description: belongs to the group (the object)}
      controls: {description: commands the object}
      writes:   {description: changes the object's data or configuration}
      reads:    {description: reads the object's state and data, implied_by: [controls, writes]}
      follows:  {description: subscribes to the object's events and streams}
      calls:    {description: may call the object's API at all, implied_by: [reads, follows]}

`implied_by` lists the relations that grant this one too: whoever `controls` an object
also `reads` it. Implication is transitive (`controls` ⇒ `reads` ⇒ `calls`) and may not
loop. `member` is the membership relation every schema has: nothing implies it and it
implies nothing, so membership is always written down as a tuple.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from ._errors import InvalidRelationSchema, InvalidRelationTuple, UnknownRelation
from ._model import RelationTuple, parse_relation, split_subject

__all__ = [
    "DEFAULT_SCHEMA",
    "MAX_RELATIONS",
    "MEMBER",
    "RelationDef",
    "RelationSchema",
    "parse_schema",
]

MEMBER = "member"
MAX_RELATIONS = 64
MAX_DESCRIPTION = 500


@dataclass(frozen=True, slots=True)
class RelationDef:
    name: str
    description: str = ""
    implied_by: tuple[str, ...] = ()


@dataclass(frozen=True)
class RelationSchema:
    """Relation names and their implications, checked; `grants(r)` is what satisfies `r`."""

    relations: Mapping[str, RelationDef]
    _grants: dict[str, frozenset[str]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _validate(self.relations)
        grants = {name: _granting(self.relations, name) for name in self.relations}
        object.__setattr__(self, "_grants", grants)

    def __contains__(self, relation: object) -> bool:
        return relation in self.relations

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.relations)

    def grants(self, relation: str) -> frozenset[str]:
        """The relations whose tuples grant `relation`: itself and all that imply it (only
        itself for a relation the schema does not declare)."""
        found = self._grants.get(relation)
        return found if found is not None else frozenset((relation,))

    def unknown(self, relation: str) -> UnknownRelation:
        return UnknownRelation(
            f"relation {relation!r} is not in the organisation's schema "
            f"(it has {', '.join(self.relations)})"
        )

    def require(self, relation: str) -> str:
        if relation not in self.relations:
            raise self.unknown(relation)
        return relation

    def check_tuple(self, item: RelationTuple) -> RelationTuple:
        """`item` if this schema allows it: known relations, `member` usersets only as
        members (`group:a#member member group:b`, a group within a group)."""
        self.require(item.relation)
        _, userset = split_subject(item.subject)
        if userset is not None:
            self.require(userset)
            if item.relation == MEMBER and userset != MEMBER:
                raise InvalidRelationTuple(
                    f"{item}: the members of a group are objects or the members of another "
                    f"group (`{split_subject(item.subject)[0]}#member`), not a `#{userset}`"
                )
        return item

    def used_by(self, relations: Iterable[str]) -> list[str]:
        """Of `relations` (as tuples use them), those this schema does not declare."""
        return sorted({r for r in relations if r not in self.relations})

    def to_json(self) -> dict[str, Any]:
        relations: dict[str, Any] = {}
        for name, definition in self.relations.items():
            entry: dict[str, Any] = {}
            if definition.description:
                entry["description"] = definition.description
            if definition.implied_by:
                entry["implied_by"] = list(definition.implied_by)
            relations[name] = entry
        return {"relations": relations}

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_json(), sort_keys=False, allow_unicode=True)


def _validate(relations: Mapping[str, RelationDef]) -> None:
    if MEMBER not in relations:
        raise InvalidRelationSchema(f"a schema declares `{MEMBER}`, the membership relation")
    if len(relations) > MAX_RELATIONS:
        raise InvalidRelationSchema(f"a schema declares at most {MAX_RELATIONS} relations")
    for name, definition in relations.items():
        for source in definition.implied_by:
            if source not in relations:
                raise InvalidRelationSchema(
                    f"{name}: implied_by names {source!r}, which the schema does not declare"
                )
            if MEMBER in (name, source):
                raise InvalidRelationSchema(
                    f"`{MEMBER}` neither implies nor is implied by another relation: "
                    "membership is always a tuple of its own"
                )
    _refuse_cycles(relations)


def _refuse_cycles(relations: Mapping[str, RelationDef]) -> None:
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(name: str, path: list[str]) -> None:
        state[name] = 1
        for source in relations[name].implied_by:
            if state.get(source) == 1:
                loop = [*path[path.index(source) :], source] if source in path else [name, source]
                raise InvalidRelationSchema(
                    "implication may not loop: " + " ⇐ ".join(loop),
                    code="relation_schema_cycle",
                )
            if source not in state:
                visit(source, [*path, source])
        state[name] = 2

    for name in relations:
        if name not in state:
            visit(name, [name])


def _granting(relations: Mapping[str, RelationDef], relation: str) -> frozenset[str]:
    found = {relation}
    pending = [relation]
    while pending:
        for source in relations[pending.pop()].implied_by:
            if source not in found:
                found.add(source)
                pending.append(source)
    return frozenset(found)


def parse_schema(document: str | Mapping[str, Any]) -> RelationSchema:
    """A schema from YAML or JSON text, or from the decoded document."""
    data: Any = document
    if isinstance(document, str):
        try:
            data = yaml.safe_load(document)
        except yaml.YAMLError as exc:
            raise InvalidRelationSchema(f"the schema is not YAML or JSON: {exc}") from exc
    if not isinstance(data, Mapping) or set(data) != {"relations"}:
        raise InvalidRelationSchema('a schema is {"relations": {name: {...}, ...}}')
    declared = data["relations"]
    if not isinstance(declared, Mapping) or not declared:
        raise InvalidRelationSchema("`relations` maps each relation name to its definition")
    relations: dict[str, RelationDef] = {}
    for name, entry in declared.items():
        relations[_name(name)] = _definition(str(name), entry)
    return RelationSchema(relations)


def _name(name: object) -> str:
    try:
        return parse_relation(name)  # type: ignore[arg-type]
    except InvalidRelationTuple as exc:
        raise InvalidRelationSchema(str(exc)) from None


def _definition(name: str, entry: object) -> RelationDef:
    if entry is None:
        entry = {}
    if not isinstance(entry, Mapping) or set(entry) - {"description", "implied_by"}:
        raise InvalidRelationSchema(
            f"{name}: a relation has a `description` and `implied_by` (a list), nothing else"
        )
    description = entry.get("description") or ""
    if not isinstance(description, str) or len(description) > MAX_DESCRIPTION:
        raise InvalidRelationSchema(f"{name}: a description is text of {MAX_DESCRIPTION} or less")
    implied_by = entry.get("implied_by") or []
    if not isinstance(implied_by, list) or len(implied_by) > MAX_RELATIONS:
        raise InvalidRelationSchema(f"{name}: implied_by is a list of relation names")
    sources = tuple(dict.fromkeys(_name(source) for source in implied_by))
    if name in sources:
        raise InvalidRelationSchema(
            f"implication may not loop: {name} ⇐ {name}", code="relation_schema_cycle"
        )
    return RelationDef(name, description, sources)


#: What every organisation has until it sets its own (docs/relations.md says why).
DEFAULT_SCHEMA = RelationSchema(
    {
        MEMBER: RelationDef(
            MEMBER, "belongs to the group (the object): what is granted on the group applies to it"
        ),
        "controls": RelationDef("controls", "commands the object: start, stop, setpoints"),
        "writes": RelationDef("writes", "changes the object's data or configuration"),
        "reads": RelationDef(
            "reads", "reads the object's state and data", implied_by=("controls", "writes")
        ),
        "follows": RelationDef("follows", "subscribes to the object's events and streams"),
        "calls": RelationDef(
            "calls", "may call the object's API at all (the least right)", ("reads", "follows")
        ),
    }
)
