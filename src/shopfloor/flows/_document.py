"""Flow documents: the model, its JSON Schema, and the check that lists every problem.

    {"id": "line-3-temperature", "name": "Line 3 temperature", "rev": 4,
     "triggers": [{"type": "message", "parameters": {"channel_id": "…"}}],
     "tasks": [{"id": "hot", "type": "condition", "parameters": {"expression": "…"},
                "next": ["alert"]}, …],
     "variables": {"limit": 80}}

`read_flow` takes a decoded document (JSON or YAML) and returns a `FlowDocument`, or
raises `InvalidFlow` with every problem at once: the schema's (missing, ill-typed or
unknown fields), unknown task and trigger types, parameters their type refuses, task
ids used twice, references to tasks that do not exist, cycles, and CEL expressions
that do not compile. Each problem has a path (`tasks[1].parameters.url`) and a stable
code (docs/flows.md). The schema and the checks after it look at the same document, so
a document with a missing name still gets its unknown task type reported.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from typing import Annotated, Any

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
)
from pydantic_core import PydanticCustomError

from shopfloor.core import Backends

from ._errors import InvalidFlow, Problem, UnknownFlowType
from ._expressions import Expression
from ._types import ID_PATTERN, TaskId, TaskType, TriggerType

__all__ = [
    "FLOW_ID_PATTERN",
    "FlowDocument",
    "Retries",
    "Task",
    "Trigger",
    "decode_flow",
    "flow_schema",
    "read_flow",
]

#: A flow id names its file (`<id>.json`): letters, digits, `_`, `-` and `.`, not first.
FLOW_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
#: Ids the routes use beside `/flows/{flow_id}` (now or for the flow manager's routes).
RESERVED_IDS = frozenset({"schema", "status", "commands", "dead-letters", "runs"})
MAX_TASKS = 500
MAX_TRIGGERS = 50
#: How deep the values of `variables` nest (pydantic serialises some 200 levels at most).
MAX_DEPTH = 32


def _listed(value: object) -> object:
    """`"next": "b"` is `"next": ["b"]`."""
    return [value] if isinstance(value, str) else value


TaskIds = Annotated[list[TaskId], BeforeValidator(_listed), Field(max_length=64)]


def _shallow(variables: dict[str, Any]) -> dict[str, Any]:
    """Values nested at most `MAX_DEPTH` deep: a deeper one could not be written back."""
    pending: list[tuple[object, int]] = [(variables, 0)]
    while pending:
        value, depth = pending.pop()
        if depth > MAX_DEPTH:
            raise PydanticCustomError(
                "flow_too_deep", "values are nested at most {limit} deep", {"limit": MAX_DEPTH}
            )
        if isinstance(value, dict):
            pending.extend((item, depth + 1) for item in value.values())
        elif isinstance(value, list):
            pending.extend((item, depth + 1) for item in value)
    return variables


def _not_reserved(flow_id: str) -> str:
    if flow_id.lower() in RESERVED_IDS:
        raise PydanticCustomError(
            "flow_id_reserved", "'{id}' is a path of the flows API, not a flow id; reserved: "
            "{reserved}", {"id": flow_id, "reserved": ", ".join(sorted(RESERVED_IDS))},
        )  # fmt: skip
    return flow_id


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Retries(_Strict):
    """How often a failed task is tried again, and how long to wait before each try:
    `backoff` seconds, times `multiplier` per try, at most `max_backoff`."""

    attempts: int = Field(default=0, ge=0, le=100, description="Tries after the first.")
    backoff: float = Field(default=1.0, gt=0, le=3600)
    multiplier: float = Field(default=2.0, ge=1, le=10)
    max_backoff: float = Field(default=60.0, gt=0, le=86400)


class Task(_Strict):
    id: TaskId
    type: str = Field(description="A registered task type (GET /flows/schema lists them).")
    parameters: dict[str, Any] = Field(default_factory=dict)
    condition: Expression | None = Field(
        default=None, description="CEL: the task runs only when it is true; else it is skipped."
    )
    next: TaskIds = Field(default_factory=list, description="Tasks run after success.")
    on_failure: TaskIds = Field(
        default_factory=list, description="Tasks run when it failed after its retries."
    )
    retries: Retries = Field(default_factory=Retries)
    timeout: float | None = Field(default=None, gt=0, le=86400, description="Seconds.")


class Trigger(_Strict):
    type: str = Field(description="A registered trigger type (GET /flows/schema lists them).")
    parameters: dict[str, Any] = Field(default_factory=dict)
    start: TaskId | None = Field(
        default=None, description="The task a run starts at; the first task when unset."
    )


class FlowDocument(_Strict):
    id: Annotated[str, Field(pattern=FLOW_ID_PATTERN), AfterValidator(_not_reserved)]
    name: Annotated[str, Field(min_length=1, max_length=200)]
    description: Annotated[str, Field(max_length=4000)] = ""
    rev: int | None = Field(
        default=None, ge=0,
        description="The stored revision, set by the server; a change names the one it "
        "was made from.",
    )  # fmt: skip
    triggers: list[Trigger] = Field(default_factory=list, max_length=MAX_TRIGGERS)
    tasks: list[Task] = Field(min_length=1, max_length=MAX_TASKS)
    variables: Annotated[
        dict[Annotated[str, Field(pattern=ID_PATTERN)], Any], AfterValidator(_shallow)
    ] = Field(
        default_factory=dict,
        description=f"Initial values of the flow's variables (JSON values, nested at most "
        f"{MAX_DEPTH} deep).",
    )

    def stored(self) -> dict[str, Any]:
        """The document as it is written to its file and answered."""
        return self.model_dump(mode="json")


def flow_schema() -> dict[str, Any]:
    """The JSON Schema (2020-12) of a flow document, the parameters of each registered
    task and trigger type included (`$defs` `task.<type>`, `trigger.<type>`), so that an
    editor checks them as the server does. What a schema cannot say (ids that exist,
    cycles, expressions that compile) only the server checks."""
    document = FlowDocument.model_json_schema()
    defs: dict[str, Any] = document["$defs"]
    task, trigger = defs["Task"], defs["Trigger"]
    for field in ("next", "on_failure"):  # one id, or a list of them
        listed = task["properties"][field]
        task["properties"][field] = {
            "description": listed.pop("description"),
            "anyOf": [listed["items"], listed],
        }
    kinds: list[tuple[dict[str, Any], str, Backends[Any]]] = [
        (task, "task", TaskType.backends),
        (trigger, "trigger", TriggerType.backends),
    ]
    for where, prefix, registry in kinds:
        where["properties"]["type"]["enum"] = list(registry.names())
        rules = []
        for kind in sorted(registry, key=lambda kind: str(kind.type)):
            name = f"{prefix}.{kind.type}"
            parameters = kind.Parameters.model_json_schema()
            defs.update(parameters.pop("$defs", {}))
            defs[name] = {**parameters, "title": f"{kind.type} parameters"}
            rules.append(
                {
                    "if": {"properties": {"type": {"const": kind.type}}, "required": ["type"]},
                    "then": {"properties": {"parameters": {"$ref": f"#/$defs/{name}"}}},
                }
            )
        where["allOf"] = rules
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **document}


class _YamlLoader(yaml.SafeLoader):
    """YAML without aliases: an alias of an alias of ... (the "billion laughs") is a few
    bytes that a check would walk as a billion nodes."""

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            raise yaml.YAMLError("aliases (*name) are not taken in a flow document")
        return super().compose_node(parent, index)


def decode_flow(data: bytes, content_type: str | None = None) -> object:
    """A document sent as JSON or YAML (`application/yaml`, `text/yaml`, a `.yaml`)."""
    media = (content_type or "application/json").split(";", 1)[0].strip().lower()
    kind = "YAML" if media.endswith(("yaml", "yml")) else "JSON"
    try:
        if kind == "YAML":
            return yaml.load(data, Loader=_YamlLoader)  # noqa: S506  (a SafeLoader)
        return json.loads(data)
    except RecursionError:
        reason = "nested too deeply"
    except (ValueError, yaml.YAMLError) as exc:
        reason = str(exc).strip()
    raise InvalidFlow(
        f"the document is not valid {kind}",
        problems=[Problem("", "flow_not_parsed", f"not valid {kind}: {reason}")],
    )


# -- the check -------------------------------------------------------------------------


def read_flow(data: object) -> FlowDocument:
    """The flow document `data` holds, or `InvalidFlow` listing every problem."""
    problems = list(_problems(data))
    if problems:
        raise InvalidFlow(
            f"the flow document has {len(problems)} problem{'s' * (len(problems) > 1)}",
            problems=problems,
        )
    return FlowDocument.model_validate(data)


def _problems(data: object) -> Iterator[Problem]:
    if not isinstance(data, Mapping):
        yield Problem("", "flow_not_an_object", "a flow document is a JSON or YAML object")
        return
    try:
        FlowDocument.model_validate(data)
    except ValidationError as exc:
        yield from _from_pydantic(exc, (), "flow_schema")
    tasks = _items(data.get("tasks"))
    ids = _task_ids(tasks)
    yield from ids.problems
    for index, task in tasks:
        yield from _task(index, task, ids.known)
    for index, trigger in _items(data.get("triggers")):
        yield from _trigger(index, trigger, ids.known)
    yield from _cycles(tasks, ids.known)


class _Ids:
    def __init__(self) -> None:
        self.known: set[str] = set()
        self.problems: list[Problem] = []


def _task_ids(tasks: Sequence[tuple[int, Mapping[str, Any]]]) -> _Ids:
    ids = _Ids()
    for index, task in tasks:
        task_id = task.get("id")
        if not isinstance(task_id, str):
            continue
        if task_id in ids.known:
            message = f"task {task_id!r} is defined twice"
            ids.problems.append(Problem(f"tasks[{index}].id", "flow_duplicate_task", message))
        ids.known.add(task_id)
    return ids


def _task(index: int, task: Mapping[str, Any], known: set[str]) -> Iterator[Problem]:
    where = f"tasks[{index}]"
    for field in ("next", "on_failure"):
        for position, target in _targets(task.get(field)):
            if target not in known:
                yield _missing(f"{where}.{field}{position}", target)
    kind_name = task.get("type")
    if not isinstance(kind_name, str):
        return
    try:
        kind = TaskType.backends.get(kind_name)
    except UnknownFlowType as exc:
        yield Problem(f"{where}.type", "flow_unknown_task_type", str(exc))
        return
    parameters = task.get("parameters", {})
    if isinstance(parameters, Mapping):
        yield from _parameters(kind.Parameters, parameters, f"{where}.parameters")
        for name in kind.references:
            for position, target in _targets(parameters.get(name)):
                if target not in known:
                    yield _missing(f"{where}.parameters.{name}{position}", target)


def _trigger(index: int, trigger: Mapping[str, Any], known: set[str]) -> Iterator[Problem]:
    where = f"triggers[{index}]"
    start = trigger.get("start")
    if isinstance(start, str) and start not in known:
        yield _missing(f"{where}.start", start)
    kind_name = trigger.get("type")
    if not isinstance(kind_name, str):
        return
    try:
        kind = TriggerType.backends.get(kind_name)
    except UnknownFlowType as exc:
        yield Problem(f"{where}.type", "flow_unknown_trigger_type", str(exc))
        return
    parameters = trigger.get("parameters", {})
    if isinstance(parameters, Mapping):
        yield from _parameters(kind.Parameters, parameters, f"{where}.parameters")


def _parameters(model: type[BaseModel], parameters: object, where: str) -> Iterator[Problem]:
    try:
        model.model_validate(parameters)
    except ValidationError as exc:
        yield from _from_pydantic(exc, (where,), "flow_invalid_parameters")


def _cycles(tasks: Sequence[tuple[int, Mapping[str, Any]]], known: set[str]) -> Iterator[Problem]:
    """One problem per cycle of next / on_failure / reference edges (each reported at
    the first task of the cycle, in document order)."""
    edges: dict[str, list[str]] = {}
    first_index: dict[str, int] = {}
    for index, task in tasks:
        task_id = task.get("id")
        if not isinstance(task_id, str) or task_id in edges:
            continue
        first_index[task_id] = index
        targets = [t for f in ("next", "on_failure") for _, t in _targets(task.get(f))]
        kind_name = task.get("type")
        parameters = task.get("parameters")
        if (
            isinstance(kind_name, str)
            and kind_name in TaskType.backends
            and isinstance(parameters, Mapping)
        ):
            for name in TaskType.backends.get(kind_name).references:
                targets += [t for _, t in _targets(parameters.get(name))]
        edges[task_id] = [t for t in targets if t in known]
    done: set[str] = set()
    for start in edges:
        if start in done:
            continue
        # Iterative depth-first search: a path on the stack that reaches itself is a cycle.
        path: list[str] = [start]
        on_path = {start}
        pending: list[Iterator[str]] = [iter(edges[start])]
        while pending:
            target = next(pending[-1], None)
            if target is None:
                pending.pop()
                finished = path.pop()
                on_path.discard(finished)
                done.add(finished)
                continue
            if target in on_path:
                cycle = [*path[path.index(target) :], target]
                head = min(cycle[:-1], key=lambda t: first_index[t])
                yield Problem(
                    f"tasks[{first_index[head]}]", "flow_cycle",
                    "the tasks form a cycle: " + " → ".join(cycle),
                )  # fmt: skip
            elif target not in done:
                path.append(target)
                on_path.add(target)
                pending.append(iter(edges[target]))


def _items(value: object) -> list[tuple[int, Mapping[str, Any]]]:
    """The objects of a list, with their index (what is not an object the schema reports)."""
    if not isinstance(value, list):
        return []
    return [(index, item) for index, item in enumerate(value) if isinstance(item, Mapping)]


def _targets(value: object) -> Iterator[tuple[str, str]]:
    """The task ids a `next`-like field names, with the path suffix of each."""
    if isinstance(value, str):
        yield "", value
    elif isinstance(value, list):
        for position, item in enumerate(value):
            if isinstance(item, str):
                yield f"[{position}]", item


def _missing(path: str, target: str) -> Problem:
    return Problem(path, "flow_unknown_task", f"there is no task {target!r} in this flow")


def _from_pydantic(exc: ValidationError, prefix: tuple[str, ...], code: str) -> Iterator[Problem]:
    """pydantic's errors as problems; our own error types (`flow_…`) keep their code."""
    for error in exc.errors(include_url=False, include_input=False):
        path = _path([*prefix, *error["loc"]])
        kind = error["type"]
        yield Problem(path, kind if kind.startswith("flow_") else code, error["msg"])


def _path(parts: Sequence[object]) -> str:
    text = ""
    for part in parts:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text
