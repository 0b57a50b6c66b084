"""Device-type templates: parsing, validation and rendering (pure, no I/O)."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from shopfloor.bootstrap.provisioning import (
    InvalidProvisionRequest,
    InvalidTemplate,
    parse_duration,
    parse_template,
)

PRESS = """
name: press
version: 2
description: Hydraulic press
thing:
  name: "${name}"
  metadata: {vendor: "${vendor}", type: press}
  tags: [press, "${site}"]
channels:
  - name: "${name} telemetry"
  - name: plant alarms
    create: false
    permissions: [publish]
certificate: {issue: true, ttl: 720h}
bootstrap:
  content: {interval_s: 10, site: "${site}"}
"""


def test_a_template_renders_with_the_request_and_its_variables() -> None:
    plan = parse_template(PRESS).render(
        name="press-7", external_id="00:1b:44:11:3a:b7", variables={"vendor": "Acme", "site": "B2"}
    )
    assert (plan.template, plan.version) == ("press", 2)
    assert plan.thing_name == "press-7"
    assert plan.thing_metadata == {"vendor": "Acme", "type": "press"}
    assert plan.thing_tags == ("press", "B2")
    assert [(c.name, c.create, c.permissions) for c in plan.channels] == [
        ("press-7 telemetry", True, ("publish", "subscribe")),
        ("plant alarms", False, ("publish",)),
    ]
    assert plan.certificate_ttl == timedelta(hours=720)
    assert json.loads(plan.bootstrap_content) == {"interval_s": 10, "site": "B2"}
    assert plan.to_data()["certificate"] == {"ttl_seconds": 720 * 3600}


def test_a_missing_variable_is_named_never_left_empty() -> None:
    with pytest.raises(InvalidProvisionRequest) as caught:
        parse_template(PRESS).render(name="p", external_id="x", variables={"vendor": "Acme"})
    assert caught.value.code == "template_variables_missing"
    assert "site" in str(caught.value)


@pytest.mark.parametrize("key", ["name", "external_id", "a-b", "", "x" * 65])
def test_variables_cannot_override_the_request_or_be_odd(key: str) -> None:
    template = parse_template("name: t\nversion: 1\n")
    with pytest.raises(InvalidProvisionRequest) as caught:
        template.render(name="n", external_id="e", variables={key: "v"})
    assert caught.value.code == "invalid_template_variable"


def test_substitution_is_plain_text() -> None:
    # What a request puts in is copied, never evaluated or expanded again.
    template = parse_template('name: t\nversion: 1\nthing: {name: "${name}"}\n')
    plan = template.render(name="${other} {0.__class__}", external_id="e", variables={})
    assert plan.thing_name == "${other} {0.__class__}"


@pytest.mark.parametrize(
    ("source", "where"),
    [
        ("- a list", "a YAML mapping"),
        ("name: Bad Name\nversion: 1\n", "name"),
        ("name: t\nversion: 0\n", "version"),
        ("name: t\nversion: 1\nchannels: [{name: c, permissions: [admin]}]\n", "channels"),
        ("name: t\nversion: 1\ncertificate: {issue: true, ttl: forever}\n", "certificate"),
        ("name: t\nversion: 1\nunknown: 1\n", "unknown"),
        ("name: [unclosed\n", "not YAML"),
    ],
)
def test_bad_templates_are_refused_with_where(source: str, where: str) -> None:
    with pytest.raises(InvalidTemplate) as caught:
        parse_template(source)
    assert caught.value.code == "invalid_template"
    assert where in str(caught.value)


@pytest.mark.parametrize(
    ("text", "seconds"), [(90, 90), ("90", 90), ("720h", 2592000), ("1h30m", 5400), ("2d", 172800)]
)
def test_durations(text: int | str, seconds: int) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "0", "h", "1y", "-5", True, "1h 30m"])
def test_bad_durations(text: int | str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


def test_a_template_round_trips_through_yaml() -> None:
    template = parse_template(PRESS)
    assert parse_template(template.to_yaml()) == template
