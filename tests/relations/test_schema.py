"""The relation schema: the default, parsing YAML and JSON, and what is refused."""

from __future__ import annotations

import json

import pytest

from shopfloor.auth.relations import (
    DEFAULT_SCHEMA,
    InvalidRelationSchema,
    InvalidRelationTuple,
    RelationTuple,
    UnknownRelation,
    parse_schema,
)


def test_the_default_schema() -> None:
    assert DEFAULT_SCHEMA.names == ("member", "controls", "writes", "reads", "follows", "calls")
    assert DEFAULT_SCHEMA.grants("reads") == {"reads", "controls", "writes"}
    assert DEFAULT_SCHEMA.grants("calls") == {"calls", "reads", "follows", "controls", "writes"}
    assert DEFAULT_SCHEMA.grants("member") == {"member"}
    assert parse_schema(DEFAULT_SCHEMA.to_yaml()) == DEFAULT_SCHEMA
    assert parse_schema(json.dumps(DEFAULT_SCHEMA.to_json())) == DEFAULT_SCHEMA


def test_a_schema_of_its_own_in_yaml() -> None:
    schema = parse_schema(
        """
relations:
  member:
  operates:
    description: runs the machine
  observes:
    implied_by: [operates, maintains]
  maintains: {}
"""
    )
    assert schema.names == ("member", "operates", "observes", "maintains")
    assert schema.grants("observes") == {"observes", "operates", "maintains"}
    assert schema.relations["operates"].description == "runs the machine"


@pytest.mark.parametrize(
    ("document", "code", "words"),
    [
        ("relations: {reads: {}}", "invalid_relation_schema", "member"),
        ("relations: {member: {}, a: {implied_by: [a]}}", "relation_schema_cycle", "a ⇐ a"),
        (
            "relations: {member: {}, a: {implied_by: [b]}, b: {implied_by: [c]}, "
            "c: {implied_by: [a]}}",
            "relation_schema_cycle",
            "⇐",
        ),
        ("relations: {member: {}, a: {implied_by: [b]}}", "invalid_relation_schema", "'b'"),
        ("relations: {member: {implied_by: [a]}, a: {}}", "invalid_relation_schema", "member"),
        ("relations: {member: {}, a: {implied_by: [member]}}", "invalid_relation_schema", "member"),
        ("relations: {member: {}, Reads: {}}", "invalid_relation_schema", "Reads"),
        ("relations: {member: {}, a: {implies: [b]}}", "invalid_relation_schema", "nothing else"),
        ("relations: {member: {}}\nversion: 2", "invalid_relation_schema", "relations"),
        ("[member]", "invalid_relation_schema", "relations"),
        ("relations: {member: {}", "invalid_relation_schema", "YAML"),
        ("relations: {}", "invalid_relation_schema", "maps"),
    ],
)
def test_bad_schemas_are_refused_with_their_code(document: str, code: str, words: str) -> None:
    with pytest.raises(InvalidRelationSchema) as caught:
        parse_schema(document)
    assert caught.value.code == code
    assert words in str(caught.value)


def test_too_many_relations_are_refused() -> None:
    names = {f"r{i}": {} for i in range(64)} | {"member": {}}
    with pytest.raises(InvalidRelationSchema):
        parse_schema({"relations": names})


def test_tuples_are_checked_against_the_schema() -> None:
    check = DEFAULT_SCHEMA.check_tuple
    assert check(RelationTuple.parse("group:a#member member group:b"))
    assert check(RelationTuple.parse("agent:x#controls reads thing:y"))
    with pytest.raises(UnknownRelation):
        check(RelationTuple.parse("agent:x owns agent:y"))
    with pytest.raises(UnknownRelation):
        check(RelationTuple.parse("agent:x#owns reads agent:y"))
    with pytest.raises(InvalidRelationTuple) as caught:
        check(RelationTuple.parse("agent:x#controls member group:y"))
    assert caught.value.code == "invalid_relation_tuple"


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("agent:a controls", "invalid_relation_tuple"),
        ("agent:a Controls agent:b", "invalid_relation_tuple"),
        ("agent: controls agent:b", "invalid_relation_subject"),
        ("agent:a#Member controls agent:b", "invalid_relation_subject"),
        ("agent:a controls agent:b#member", "invalid_relation_object"),
        (f"agent:a controls agent:{'x' * 129}", "invalid_relation_object"),
        ("1agent:a controls agent:b", "invalid_relation_subject"),
    ],
)
def test_bad_tuples_are_refused_with_their_code(text: str, code: str) -> None:
    with pytest.raises(InvalidRelationTuple) as caught:
        RelationTuple.parse(text)
    assert caught.value.code == code


def test_ids_take_uuids_paths_and_dots() -> None:
    item = RelationTuple.parse(
        "user:6f1c8f0e-1b7e-4c55-9d0a-2f4b1e0c9a77 reads thing:plant/hall_2/press-01.v2"
    )
    assert item.object_type == "thing"
    assert RelationTuple.from_json(item.to_json()) == item
