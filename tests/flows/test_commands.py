"""`shopfloor flows check`: the server's check, offline, with the same problems."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from shopfloor.cli import app

from .conftest import flow

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "flows"


def test_the_examples_are_valid() -> None:
    result = CliRunner().invoke(
        app,
        ["flows", "check", str(EXAMPLES / "line-3-temperature.json"),
         str(EXAMPLES / "line-3-temperature.yaml")],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.output.count("flow line-3-temperature is valid (3 tasks)") == 2


def test_every_problem_of_every_file_is_printed_and_the_exit_status_is_1(
    tmp_path: Path,
) -> None:
    bad = flow()
    bad["tasks"][0]["type"] = "teleport"
    bad["tasks"][1]["next"] = "nowhere"
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    (tmp_path / "good.yml").write_text(json.dumps(flow()))  # JSON is YAML too
    (tmp_path / "broken.yaml").write_text("tasks: [unclosed")
    result = CliRunner().invoke(
        app,
        ["flows", "check", str(tmp_path / "bad.json"), str(tmp_path / "good.yml"),
         str(tmp_path / "broken.yaml"), str(tmp_path / "missing.json")],
    )  # fmt: skip
    assert result.exit_code == 1
    assert "bad.json: 2 problem(s)" in result.output
    assert "tasks[0].type: flow_unknown_task_type" in result.output
    assert "tasks[1].next: flow_unknown_task" in result.output
    assert "good.yml: flow line-3 is valid" in result.output
    assert "broken.yaml: 1 problem(s)" in result.output
    assert "(document): flow_not_parsed" in result.output
    assert "missing.json: cannot be read" in result.output
