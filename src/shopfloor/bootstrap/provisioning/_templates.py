"""Device-type templates: what provisioning a device of that type creates.

A template is YAML (a file in the data dir, or sent to the API) and is versioned:

    name: press
    version: 2
    description: Hydraulic press, firmware 4.x
    thing:
      name: "${name}"
      metadata: {vendor: "${vendor}", type: press}
      tags: [press]
    channels:                       # created in the organisation, or reused by name
      - name: "${name} telemetry"
        permissions: [publish, subscribe]
      - name: plant alarms
        create: false               # must exist already
        permissions: [publish]
    certificate: {issue: true, ttl: 720h}
    bootstrap:
      active: true
      content: {interval_s: 10, site: "${site}"}   # a mapping is sent as JSON text

Placeholders are `string.Template`'s `${var}`: the request's `name` and
`external_id` and its `variables`. A placeholder nothing fills is an error, never an
empty string, and substitution is plain text (no attribute access, no expressions), so
a request cannot reach anything a template did not name.
"""

from __future__ import annotations

import json
import re
import string
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ._errors import InvalidProvisionRequest, InvalidTemplate

__all__ = [
    "ChannelPlan",
    "Plan",
    "Template",
    "parse_duration",
    "parse_template",
]

#: Template names: what a file name and a URL path segment can carry.
NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
_DURATION = re.compile(r"(\d+)(s|m|h|d)")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
#: Variables a request may set; `name` and `external_id` come from the request itself.
_VARIABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")

PermissionName = Literal["publish", "subscribe"]
_BOTH: tuple[PermissionName, ...] = ("publish", "subscribe")


def parse_duration(value: int | str) -> timedelta:
    """Seconds, or a Go-style duration such as `720h` or `1h30m` (as CFSSL writes them)."""
    if isinstance(value, int) and not isinstance(value, bool):
        seconds = value
    elif isinstance(value, str) and value.isdigit():
        seconds = int(value)
    elif isinstance(value, str) and value and _DURATION.sub("", value) == "":
        seconds = sum(int(n) * _UNITS[unit] for n, unit in _DURATION.findall(value))
    else:
        raise ValueError(f"not a duration: {value!r} (seconds, or e.g. 720h, 1h30m)")
    if seconds <= 0:
        raise ValueError("a duration must be positive")
    return timedelta(seconds=seconds)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ThingSpec(_Strict):
    name: str = "${name}"
    metadata: dict[str, Any] = Field(default_factory=dict)
    tags: list[str] = Field(default_factory=list)


class ChannelSpec(_Strict):
    name: str = Field(min_length=1)
    create: bool = True
    metadata: dict[str, Any] = Field(default_factory=dict)
    tags: list[str] = Field(default_factory=list)
    permissions: list[PermissionName] = Field(default_factory=lambda: list(_BOTH), min_length=1)


class CertificateSpec(_Strict):
    issue: bool = False
    ttl: str | int = "8760h"

    @field_validator("ttl")
    @classmethod
    def _duration(cls, value: str | int) -> str | int:
        parse_duration(value)
        return value


class BootstrapSpec(_Strict):
    active: bool = True
    content: str | dict[str, Any] | list[Any] = ""


class Template(_Strict):
    """One version of a device-type template (validated; placeholders not yet filled)."""

    name: str
    version: int = Field(ge=1)
    description: str = ""
    thing: ThingSpec = Field(default_factory=ThingSpec)
    channels: list[ChannelSpec] = Field(default_factory=list, max_length=64)
    certificate: CertificateSpec = Field(default_factory=CertificateSpec)
    bootstrap: BootstrapSpec = Field(default_factory=BootstrapSpec)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not NAME.fullmatch(value):
            raise ValueError(f"a template name must match {NAME.pattern}")
        return value

    def placeholders(self) -> set[str]:
        """The `${var}` names the template uses."""
        found: set[str] = set()
        for text in _strings(self.model_dump(exclude={"name", "version", "description"})):
            for match in string.Template.pattern.finditer(text):
                named = match.group("named") or match.group("braced")
                if named:
                    found.add(named)
        return found

    def render(self, *, name: str, external_id: str, variables: Mapping[str, str]) -> Plan:
        """What provisioning one device creates, placeholders filled."""
        for key in variables:
            if not _VARIABLE.fullmatch(key) or key in ("name", "external_id"):
                raise InvalidProvisionRequest(
                    f"variable {key!r} is not allowed (letters, digits, _; not name or "
                    "external_id, which come from the request)",
                    code="invalid_template_variable",
                )
        values = {**variables, "name": name, "external_id": external_id}
        missing = sorted(self.placeholders() - values.keys())
        if missing:
            raise InvalidProvisionRequest(
                f"template {self.name} v{self.version} needs variables: {', '.join(missing)}",
                code="template_variables_missing",
            )
        fill = _Filler(values)
        content = self.bootstrap.content
        rendered_content = fill.text(content) if isinstance(content, str) else fill.json(content)
        return Plan(
            template=self.name,
            version=self.version,
            thing_name=fill.text(self.thing.name),
            thing_metadata=fill.value(self.thing.metadata),
            thing_tags=tuple(fill.text(tag) for tag in self.thing.tags),
            channels=tuple(
                ChannelPlan(
                    name=fill.text(channel.name),
                    create=channel.create,
                    metadata=fill.value(channel.metadata),
                    tags=tuple(fill.text(tag) for tag in channel.tags),
                    permissions=tuple(dict.fromkeys(channel.permissions)),
                )
                for channel in self.channels
            ),
            certificate_ttl=(
                parse_duration(self.certificate.ttl) if self.certificate.issue else None
            ),
            bootstrap_active=self.bootstrap.active,
            bootstrap_content=rendered_content,
        )

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False, allow_unicode=True)


@dataclass(frozen=True, slots=True)
class ChannelPlan:
    name: str
    create: bool
    metadata: dict[str, Any]
    tags: tuple[str, ...]
    permissions: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Plan:
    """A rendered template: exactly what provisioning one device will do."""

    template: str
    version: int
    thing_name: str
    thing_metadata: dict[str, Any]
    thing_tags: tuple[str, ...]
    channels: tuple[ChannelPlan, ...]
    certificate_ttl: timedelta | None
    bootstrap_active: bool
    bootstrap_content: str

    def to_data(self) -> dict[str, Any]:
        return {
            "template": self.template,
            "version": self.version,
            "thing": {
                "name": self.thing_name,
                "metadata": self.thing_metadata,
                "tags": list(self.thing_tags),
            },
            "channels": [
                {
                    "name": c.name,
                    "create": c.create,
                    "metadata": c.metadata,
                    "tags": list(c.tags),
                    "permissions": list(c.permissions),
                }
                for c in self.channels
            ],
            "certificate": (
                None
                if self.certificate_ttl is None
                else {"ttl_seconds": int(self.certificate_ttl.total_seconds())}
            ),
            "bootstrap": {"active": self.bootstrap_active, "content": self.bootstrap_content},
        }


def parse_template(source: str | Mapping[str, Any]) -> Template:
    """A template from YAML text (or an already-parsed mapping), validated."""
    if isinstance(source, str):
        try:
            data = yaml.safe_load(source)
        except yaml.YAMLError as exc:
            raise InvalidTemplate(f"the template is not YAML: {exc}") from exc
    else:
        data = dict(source)
    if not isinstance(data, dict):
        raise InvalidTemplate("a template is a YAML mapping")
    try:
        return Template.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "template"
        raise InvalidTemplate(f"{where}: {first['msg']}") from exc


class _Filler:
    def __init__(self, values: Mapping[str, str]) -> None:
        self._values = {key: str(value) for key, value in values.items()}

    def text(self, text: str) -> str:
        try:
            return string.Template(text).substitute(self._values)
        except (KeyError, ValueError) as exc:
            raise InvalidProvisionRequest(
                f"cannot fill {text!r}: {exc}", code="template_variables_missing"
            ) from exc

    def value(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {self.text(str(k)): self.value(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.value(v) for v in value]
        return value

    def json(self, value: Any) -> str:
        return json.dumps(self.value(value), separators=(",", ":"), ensure_ascii=False)


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in (*_strings(str(k)), *_strings(v))]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []
