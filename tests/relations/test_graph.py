"""The check and expand of the relation graph, on the pure graph: every rule of
docs/relations.md, cycles, the depth limit, and the paths answered."""

from __future__ import annotations

import pytest

from shopfloor.auth.relations import (
    DEPTH_LIMIT_EXCEEDED,
    NOT_RELATED,
    Change,
    InvalidRelationTuple,
    RelationGraph,
    RelationTuple,
    UnknownRelation,
    parse_schema,
)


def graph(*lines: str) -> RelationGraph:
    return RelationGraph(tuples=[RelationTuple.parse(line) for line in lines])


def path(g: RelationGraph, question: str, **options: int) -> list[str] | None:
    """The tuples (as text) that grant `question`, or None when it is refused."""
    subject, relation, obj = question.split()
    result = g.check(subject, relation, obj, **options)
    assert result.allowed == bool(result.path)
    assert (result.reason is None) == result.allowed
    return [str(t) for t in result.path] if result.allowed else None


def test_a_direct_tuple_grants_itself_and_nothing_else() -> None:
    g = graph("agent:cell-1 controls agent:press-01")
    assert path(g, "agent:cell-1 controls agent:press-01") == [
        "agent:cell-1 controls agent:press-01"
    ]
    assert path(g, "agent:cell-1 controls agent:press-02") is None
    assert path(g, "agent:cell-2 controls agent:press-01") is None
    assert path(g, "agent:press-01 controls agent:cell-1") is None
    assert path(g, "agent:cell-1 writes agent:press-01") is None


def test_implied_relations_follow_the_schema_transitively() -> None:
    g = graph("agent:cell-1 controls agent:press-01", "agent:tool writes agent:press-01")
    for question in ("agent:cell-1 reads agent:press-01", "agent:cell-1 calls agent:press-01"):
        assert path(g, question) == ["agent:cell-1 controls agent:press-01"]
    assert path(g, "agent:tool reads agent:press-01") == ["agent:tool writes agent:press-01"]
    # implication goes one way only
    assert path(g, "agent:tool controls agent:press-01") is None
    assert path(g, "agent:cell-1 writes agent:press-01") is None
    assert path(g, "agent:cell-1 follows agent:press-01") is None


def test_a_userset_subject_grants_every_member_and_a_plain_group_only_itself() -> None:
    g = graph(
        "user:ann member group:ops",
        "group:ops#member reads agent:press-01",
        "group:line-a controls agent:press-02",
        "agent:cell-1 member group:line-a",
    )
    assert path(g, "user:ann reads agent:press-01") == [
        "user:ann member group:ops",
        "group:ops#member reads agent:press-01",
    ]
    assert path(g, "user:bob reads agent:press-01") is None
    # the members of the group are not the group: ops itself is no member of ops
    assert path(g, "group:ops reads agent:press-01") is None
    # a plain group subject is about the group object (Zanzibar's convention)
    assert path(g, "group:line-a controls agent:press-02") == [
        "group:line-a controls agent:press-02"
    ]
    assert path(g, "agent:cell-1 controls agent:press-02") is None


def test_a_relation_on_a_group_applies_to_its_members() -> None:
    g = graph("agent:cell-1 controls group:line-a", "agent:press-01 member group:line-a")
    assert path(g, "agent:cell-1 controls agent:press-01") == [
        "agent:cell-1 controls group:line-a",
        "agent:press-01 member group:line-a",
    ]
    assert path(g, "agent:cell-1 reads agent:press-01") is not None
    assert path(g, "agent:cell-1 controls agent:press-02") is None
    # membership is not handed down: a member of the group is no member of its members
    g.add(RelationTuple.parse("agent:press-02 member group:line-a"))
    assert path(g, "agent:press-01 member agent:press-02") is None


def test_nested_groups_in_both_forms() -> None:
    g = graph(
        "agent:press-01 member group:line-a",
        "group:line-a member group:hall-1",
        "group:hall-1#member member group:plant",
        "agent:boss controls group:plant",
        "agent:hall-lead reads group:hall-1",
    )
    assert path(g, "agent:press-01 member group:plant") == [
        "agent:press-01 member group:line-a",
        "group:line-a member group:hall-1",
        "group:hall-1#member member group:plant",
    ]
    assert path(g, "agent:boss controls agent:press-01") == [
        "agent:boss controls group:plant",
        "group:hall-1#member member group:plant",
        "group:line-a member group:hall-1",
        "agent:press-01 member group:line-a",
    ]
    assert path(g, "agent:hall-lead reads agent:press-01") == [
        "agent:hall-lead reads group:hall-1",
        "group:line-a member group:hall-1",
        "agent:press-01 member group:line-a",
    ]
    # `hall-1#member member plant` makes hall-1's members members, not hall-1 itself
    assert path(g, "group:hall-1 member group:plant") is None
    assert path(g, "agent:boss controls group:hall-1") is None
    # while `line-a member hall-1` makes line-a a member, and its members too
    assert path(g, "group:line-a member group:plant") is not None


def test_usersets_of_nested_groups_and_of_other_relations() -> None:
    g = graph(
        "user:ann member group:night-shift",
        "group:night-shift member group:ops",
        "group:ops#member reads group:line-a",
        "agent:press-01 member group:line-a",
        "agent:cell-1 controls agent:press-01",
        "agent:press-01#controls reads thing:oil-sensor",
    )
    assert path(g, "user:ann reads agent:press-01") == [
        "user:ann member group:night-shift",
        "group:night-shift member group:ops",
        "group:ops#member reads group:line-a",
        "agent:press-01 member group:line-a",
    ]
    # everyone who controls press-01 reads the sensor: a userset of another relation
    assert path(g, "agent:cell-1 reads thing:oil-sensor") == [
        "agent:cell-1 controls agent:press-01",
        "agent:press-01#controls reads thing:oil-sensor",
    ]
    assert path(g, "user:ann reads thing:oil-sensor") is None


def test_cycles_of_groups_end_the_search() -> None:
    g = graph(
        "agent:press-01 member group:a",
        "group:a member group:b",
        "group:b member group:c",
        "group:c member group:a",
        "group:c#member member group:b",
        "group:b#member reads group:c",
        "user:ann member group:b",
    )
    assert path(g, "agent:nobody controls agent:press-01") is None
    assert path(g, "user:ann reads agent:press-01") is not None
    # a group in a cycle is a member of itself
    assert path(g, "group:a member group:a") == [
        "group:a member group:b",
        "group:b member group:c",
        "group:c member group:a",
    ]
    tree, _ = g.expand("reads", "agent:press-01")
    assert tree.to_json()  # ends, cycles marked as repeated


def test_the_depth_limit_refuses_with_its_reason() -> None:
    chain = [f"group:g{i} member group:g{i + 1}" for i in range(30)]
    g = graph("agent:press member group:g0", *chain, "agent:boss controls group:g30")
    assert g.check("agent:boss", "controls", "agent:press").reason == DEPTH_LIMIT_EXCEEDED
    found = path(g, "agent:boss controls agent:press", max_depth=40)
    assert found is not None and len(found) == 32
    refused = g.check("agent:boss", "controls", "agent:press", max_depth=31)
    assert not refused.allowed and refused.path == ()
    assert refused.reason == DEPTH_LIMIT_EXCEEDED
    assert g.check("agent:boss", "controls", "agent:press", max_depth=32).allowed
    assert g.check("agent:press", "member", "group:g30", max_depth=31).allowed
    assert g.check("agent:press", "member", "group:g30", max_depth=30).reason == (
        DEPTH_LIMIT_EXCEEDED
    )
    # refused after the whole graph was searched: not related
    assert g.check("agent:other", "controls", "agent:press", max_depth=40).reason == NOT_RELATED


def test_the_path_is_a_shortest_chain_of_stored_tuples() -> None:
    g = graph(
        "agent:press member group:line",
        "group:line member group:hall",
        "group:hall member group:plant",
        "agent:boss controls group:plant",
        "agent:boss controls group:line",
    )
    found = g.check("agent:boss", "reads", "agent:press")
    assert [str(t) for t in found.path] == [
        "agent:boss controls group:line",
        "agent:press member group:line",
    ]
    assert all(t in g for t in found.path)


def test_changes_apply_and_replay_harmlessly() -> None:
    g = graph("agent:a controls agent:b")
    item = RelationTuple.parse("agent:a controls agent:b")
    assert not g.apply(Change(2, "add", item))
    assert g.apply(Change(3, "remove", item))
    assert not g.apply(Change(3, "remove", item))
    assert len(g) == 0 and item not in g
    assert not g.check("agent:a", "controls", "agent:b").allowed
    g.add(RelationTuple.parse("group:x#member member group:y"))
    g.remove(RelationTuple.parse("group:x#member member group:y"))
    assert list(g) == []


def test_expand_shows_who_holds_a_relation() -> None:
    g = graph(
        "agent:tool writes agent:press-01",
        "agent:press-01 member group:line-a",
        "agent:cell-1 controls group:line-a",
        "group:ops#member reads group:line-a",
        "user:ann member group:ops",
    )
    tree, cut = g.expand("reads", "agent:press-01")
    assert not cut
    data = tree.to_json()
    assert data["subjects"] == [{"subject": "agent:tool", "relation": "writes"}]
    (line,) = data["children"]
    assert line["tuple"]["object"] == "group:line-a"
    node = line["node"]
    assert node["subjects"] == [{"subject": "agent:cell-1", "relation": "controls"}]
    (ops,) = node["children"]
    assert ops["node"]["relation"] == "member" and ops["node"]["object"] == "group:ops"
    assert ops["node"]["subjects"] == [{"subject": "user:ann", "relation": "member"}]


def test_expand_is_bounded() -> None:
    g = graph(*(f"agent:m{i} reads agent:press" for i in range(50)))
    tree, cut = g.expand("reads", "agent:press", max_entries=10)
    assert cut and tree.truncated and len(tree.subjects) == 9
    chain = [f"group:g{i} member group:g{i + 1}" for i in range(10)]
    g = graph("agent:press member group:g0", *chain)
    tree, cut = g.expand("reads", "agent:press", max_depth=3)
    assert cut
    depth, node = 0, tree
    while node.children:
        node = node.children[0][1]
        depth += 1
    assert depth == 3 and node.truncated


@pytest.mark.parametrize(
    ("subject", "relation", "obj", "error", "code"),
    [
        ("agent", "reads", "agent:b", InvalidRelationTuple, "invalid_relation_object"),
        ("group:a#member", "reads", "agent:b", InvalidRelationTuple, "invalid_relation_subject"),
        ("agent:a", "reads", "Agent:b", InvalidRelationTuple, "invalid_relation_object"),
        ("agent:a", "reads", "agent:b c", InvalidRelationTuple, "invalid_relation_object"),
        ("agent:a", "owns", "agent:b", UnknownRelation, "unknown_relation"),
    ],
)
def test_bad_questions_are_refused_with_their_code(
    subject: str, relation: str, obj: str, error: type[Exception], code: str
) -> None:
    with pytest.raises(error) as caught:
        graph().check(subject, relation, obj)
    assert getattr(caught.value, "code", None) == code


def test_a_schema_of_its_own_changes_what_implies_what() -> None:
    schema = parse_schema(
        "relations:\n  member: {}\n  operates: {}\n  observes: {implied_by: [operates]}\n"
    )
    g = RelationGraph(schema, [RelationTuple.parse("user:ann operates agent:press")])
    assert g.check("user:ann", "observes", "agent:press").allowed
    with pytest.raises(UnknownRelation):
        g.check("user:ann", "reads", "agent:press")
