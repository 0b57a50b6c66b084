"""Agent specs: validation with a field and a reason, and IAMS's labels read as ours."""

from __future__ import annotations

from typing import Any

import pytest

from shopfloor.agents import (
    AgentSpec,
    InvalidAgentSpec,
    RestartPolicy,
    agent_label,
    parse_spec,
    provisioning_labels,
)


def test_a_spec_with_defaults() -> None:
    spec = parse_spec({"name": "press-7", "image": "registry.example/press-agent"})
    assert spec == AgentSpec(name="press-7", image="registry.example/press-agent")
    assert spec.runs_as == "image" and spec.version == "1"
    assert spec.restart_policy is RestartPolicy.ON_FAILURE and spec.desired_state == "running"


def test_a_module_may_name_a_method_of_a_class() -> None:
    assert parse_spec({"name": "p", "module": "plant.press:Press.main"}).runs_as == "module"


@pytest.mark.parametrize(
    ("data", "where"),
    [
        ({"name": "Press_7", "image": "x"}, "name"),
        ({"name": "p", "image": "x", "command": ["y"]}, "exactly one of image"),
        ({"name": "p"}, "exactly one of image"),
        ({"name": "p", "module": "no colon"}, "module"),
        ({"name": "p", "module": "plant.press:Press."}, "module"),
        ({"name": "p", "image": "x", "env": {"SHOPFLOOR_KEY": "v"}}, "env"),
        ({"name": "p", "image": "x", "env": {"1BAD": "v"}}, "env"),
        ({"name": "p", "image": "x", "labels": {"bad key!": "v"}}, "labels"),
        ({"name": "p", "image": "x", "version": "1 beta"}, "version"),
        ({"name": "p", "image": "x", "restart_policy": "sometimes"}, "restart_policy"),
        ({"name": "p", "image": "x", "unknown": 1}, "unknown"),
        ({"name": "p", "image": "x", "health": {"failures": 0}}, "health.failures"),
    ],
)
def test_bad_specs_say_where(data: dict[str, Any], where: str) -> None:
    with pytest.raises(InvalidAgentSpec) as caught:
        parse_spec(data)
    assert caught.value.code == "invalid_agent_spec"
    assert where in str(caught.value)


def test_iams_labels_are_read_as_ours_and_ours_win() -> None:
    image = {"iams.services.agent": "true", "iams.plugins.influxdb": "1", "iams.plugins.mqtt": "a"}
    spec = {"shopfloor.provision.mqtt": "press-7 telemetry", "shopfloor.provision.postgres": "1"}
    assert agent_label(image) and not agent_label({"shopfloor.agent": "no"})
    assert provisioning_labels(image, spec) == {
        "influxdb": "1",
        "mqtt": "press-7 telemetry",  # the spec's label over the image's
        "postgres": "1",
    }
