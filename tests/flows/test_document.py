"""Flow documents: a good one is read as it is, a bad one is refused with every problem."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from shopfloor.flows import (
    FlowDocument,
    InvalidFlow,
    TaskType,
    TriggerType,
    decode_flow,
    flow_schema,
    read_flow,
)

from .conftest import flow

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"


def problems(data: Any) -> set[tuple[str, str]]:
    with pytest.raises(InvalidFlow) as refused:
        read_flow(data)
    found = [(p.path, p.code) for p in refused.value.problems]
    assert len(found) == len(set(found)), f"a problem reported twice: {found}"
    assert refused.value.details == [p.as_dict() for p in refused.value.problems]
    return set(found)


def test_a_valid_document_is_read_with_its_defaults() -> None:
    doc = read_flow(flow())
    assert isinstance(doc, FlowDocument)
    assert [task.id for task in doc.tasks] == ["fahrenheit", "publish", "complain"]
    assert doc.tasks[0].next == ["publish"] and doc.tasks[0].retries.attempts == 0
    assert doc.tasks[1].retries.attempts == 3 and doc.tasks[1].timeout == 5
    assert doc.rev is None and doc.variables == {"limit": 80}


def test_yaml_and_json_give_the_same_document() -> None:
    as_yaml = yaml.safe_dump(flow()).encode()
    assert read_flow(decode_flow(as_yaml, "application/yaml")) == read_flow(flow())


def test_every_problem_is_reported_at_once_with_its_path_and_code() -> None:
    bad = flow(name="", colour="blue")
    bad["triggers"] = [
        {"type": "cron", "parameters": {"expression": "61 * * * *", "timezone": "Mars/Base"}},
        {"type": "webhook", "start": "nowhere"},
        {"type": "message", "parameters": {"channel_id": "c", "condition": "payload >"}},
        {"type": "interval", "parameters": {"seconds": 0}},
    ]
    bad["tasks"] += [
        {"id": "publish", "type": "log", "parameters": {"message": "'again'"}},
        {"id": "teleport", "type": "teleport", "condition": "(("},
        {"id": "call", "type": "http", "parameters": {"url": "ftp://x", "colour": 1}},
        {"id": "loop-a", "type": "delay", "parameters": {"seconds": 1}, "next": "loop-b"},
        {"id": "loop-b", "type": "condition", "parameters": {"expression": "true",
                                                            "otherwise": ["loop-a"]}},
        {"id": "dangling", "type": "log", "parameters": {"message": "'x'"},
         "next": ["ghost"], "on_failure": "phantom", "retries": {"attempts": -1}},
    ]  # fmt: skip
    assert problems(bad) == {
        ("name", "flow_schema"),
        ("colour", "flow_schema"),
        ("triggers[0].parameters.expression", "flow_invalid_cron"),
        ("triggers[0].parameters.timezone", "flow_unknown_timezone"),
        ("triggers[1].type", "flow_unknown_trigger_type"),
        ("triggers[1].start", "flow_unknown_task"),
        ("triggers[2].parameters.condition", "flow_invalid_expression"),
        ("triggers[3].parameters.seconds", "flow_invalid_parameters"),
        ("tasks[3].id", "flow_duplicate_task"),
        ("tasks[4].type", "flow_unknown_task_type"),
        ("tasks[4].condition", "flow_invalid_expression"),
        ("tasks[5].parameters.url", "flow_invalid_parameters"),
        ("tasks[5].parameters.colour", "flow_invalid_parameters"),
        ("tasks[6]", "flow_cycle"),
        ("tasks[8].next[0]", "flow_unknown_task"),
        ("tasks[8].on_failure", "flow_unknown_task"),
        ("tasks[8].retries.attempts", "flow_schema"),
    }


def test_a_cycle_names_its_tasks_in_order() -> None:
    looping = flow()
    looping["tasks"][2]["next"] = ["fahrenheit"]  # complain → fahrenheit → publish → complain
    with pytest.raises(InvalidFlow) as refused:
        read_flow(looping)
    (problem,) = refused.value.problems
    assert problem.code == "flow_cycle" and problem.path == "tasks[0]"
    assert "fahrenheit → publish → complain → fahrenheit" in problem.message


def test_a_task_that_names_itself_is_a_cycle() -> None:
    doc = flow()
    doc["tasks"][2]["on_failure"] = "complain"
    assert problems(doc) == {("tasks[2]", "flow_cycle")}


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ([], {("", "flow_not_an_object")}),
        ({"id": "../etc", "name": "x", "tasks": []}, {("id", "flow_schema"),
                                                       ("tasks", "flow_schema")}),
        ({"name": "x", "tasks": "all"}, {("id", "flow_schema"), ("tasks", "flow_schema")}),
        (flow("schema"), {("id", "flow_id_reserved")}),
        (flow(variables={"deep": json.loads("[" * 40 + "]" * 40)}),
         {("variables", "flow_too_deep")}),
        (flow("Status"), {("id", "flow_id_reserved")}),
    ],
)  # fmt: skip
def test_documents_of_the_wrong_shape(data: Any, expected: set[tuple[str, str]]) -> None:
    assert problems(data) == expected


def test_a_body_that_does_not_parse_is_one_problem() -> None:
    with pytest.raises(InvalidFlow) as refused:
        decode_flow(b"{not json", "application/json")
    assert [p.code for p in refused.value.problems] == ["flow_not_parsed"]
    with pytest.raises(InvalidFlow):
        decode_flow(b"tasks: [unclosed", "application/yaml")


@pytest.mark.parametrize(
    ("data", "content_type", "reason"),
    [
        (b"[" * 100_000 + b"]" * 100_000, "application/json", "nested too deeply"),
        (b"[" * 100_000 + b"]" * 100_000, "application/yaml", "nested too deeply"),
        (b"a: &a [x, x]\nb: &b [*a, *a]\nc: [*b, *b]\n", "application/yaml", "aliases"),
    ],
)
def test_bodies_that_would_cost_the_server_dearly_are_refused(
    data: bytes, content_type: str, reason: str
) -> None:
    with pytest.raises(InvalidFlow) as refused:
        decode_flow(data, content_type)
    (problem,) = refused.value.problems
    assert problem.code == "flow_not_parsed" and reason in problem.message


@pytest.mark.parametrize("kind", sorted(TaskType.backends.names()))
def test_every_task_type_refuses_an_unknown_parameter(kind: str) -> None:
    doc = flow(tasks=[{"id": "t", "type": kind, "parameters": {"no_such_parameter": 1}}])
    assert ("tasks[0].parameters.no_such_parameter", "flow_invalid_parameters") in problems(doc)


@pytest.mark.parametrize("kind", sorted(TriggerType.backends.names()))
def test_every_trigger_type_refuses_an_unknown_parameter(kind: str) -> None:
    doc = flow(triggers=[{"type": kind, "parameters": {"no_such_parameter": 1}}])
    expected = ("triggers[0].parameters.no_such_parameter", "flow_invalid_parameters")
    assert expected in problems(doc)


def test_the_types_the_issue_names_are_registered() -> None:
    assert set(TaskType.backends.names()) == {
        "condition", "transform", "set_variable", "delay", "publish", "http", "log",
        "aas.invoke", "agent.call",
    }  # fmt: skip
    assert set(TriggerType.backends.names()) == {"interval", "cron", "message"}


def test_a_type_name_taken_twice_is_refused_at_import() -> None:
    with pytest.raises(TypeError, match="already registered"):

        class AnotherLog(TaskType, type="log"):
            pass


def test_cron_accepts_a_timezone_and_a_valid_expression() -> None:
    doc = flow(triggers=[{"type": "cron", "parameters": {"expression": "*/5 6-18 * * 1-5",
                                                         "timezone": "Europe/Rome"}}])  # fmt: skip
    assert read_flow(doc).triggers[0].parameters["timezone"] == "Europe/Rome"


def test_the_schema_describes_the_document_and_every_type() -> None:
    schema = flow_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    assert set(schema["required"]) == {"id", "name", "tasks"}
    assert set(schema["properties"]) >= {"id", "name", "rev", "triggers", "tasks", "variables"}
    task = schema["$defs"]["Task"]["properties"]["type"]
    assert task["enum"] == list(TaskType.backends.names())
    assert "url" in schema["$defs"]["task.http"]["required"]
    assert "expression" in schema["$defs"]["trigger.cron"]["required"]


def test_the_schema_refuses_what_the_server_refuses_of_the_shape() -> None:
    validator = jsonschema.Draft202012Validator(flow_schema())
    assert list(validator.iter_errors(flow())) == []
    assert list(validator.iter_errors(flow(tasks=[{"id": "a", "type": "log",
                 "parameters": {"message": "'x'"}, "next": "a"}]))) == []  # fmt: skip
    bad = flow(colour="blue")
    bad["tasks"][0]["type"] = "teleport"
    bad["tasks"][1]["parameters"]["qos"] = 2
    bad["triggers"][0]["parameters"].pop("channel_id")
    found = {tuple(e.absolute_path) for e in validator.iter_errors(bad)}
    assert found == {
        (),
        ("tasks", 0, "type"),
        ("tasks", 1, "parameters"),
        ("triggers", 0, "parameters"),
    }


def test_the_published_schema_is_the_servers() -> None:
    published = json.loads((DOCS / "schemas" / "flow.schema.json").read_text())
    assert published == flow_schema(), (
        "docs/schemas/flow.schema.json is stale: write it again from "
        "shopfloor.flows.flow_schema() (json.dumps(..., indent=2))"
    )


EXAMPLES = ROOT / "examples" / "flows"


def test_the_examples_are_valid_and_the_two_forms_are_one_flow() -> None:
    as_json = read_flow(decode_flow((EXAMPLES / "line-3-temperature.json").read_bytes()))
    as_yaml = read_flow(
        decode_flow((EXAMPLES / "line-3-temperature.yaml").read_bytes(), "application/yaml")
    )
    assert as_json == as_yaml
    assert [t.type for t in as_json.triggers] == ["message"]
