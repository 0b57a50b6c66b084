"""`AgentSpec`: what an engineer asks for — one agent, per machine or coordinating others.

    name: press-7                      # a DNS label, unique in the organisation
    image: registry.example/press-agent   # container runtimes; or
    command: [python, -m, press_agent]    # the process runtime; or
    module: press_agent.main:run          # `module:callable`, run by the agent SDK
    version: "1.4.2"
    config: {opcua_url: "opc.tcp://10.0.0.7:4840"}   # handed to the agent as a file
    labels:
      shopfloor.agent: "true"
      shopfloor.provision.postgres: "true"           # a database of its own
      shopfloor.provision.mqtt: "press-7 telemetry"  # a thing connected to that channel
    env: {LOG_LEVEL: info}
    desired_state: running             # or stopped
    restart_policy: on-failure         # always | on-failure | never
    health: {grace_seconds: 30, interval_seconds: 10, failures: 3,
             url: "http://127.0.0.1:18080/health"}   # optional: else alive = healthy
    thing_id: ...                      # the thing it stands for, optional

Labels follow IAMS: its `iams.services.agent` and `iams.plugins.<name>` are read as
`shopfloor.agent` and `shopfloor.provision.<name>`, so existing images keep working.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from ._errors import InvalidAgentSpec
from ._runtime import RestartPolicy

__all__ = [
    "AGENT_LABEL",
    "PROVISION_PREFIX",
    "AgentSpec",
    "DesiredState",
    "HealthSettings",
    "agent_label",
    "parse_spec",
    "provisioning_labels",
]

AGENT_LABEL = "shopfloor.agent"
PROVISION_PREFIX = "shopfloor.provision."
#: IAMS's names for the same labels (glomium/industrial-ams), read as aliases.
_IAMS_AGENT = "iams.services.agent"
_IAMS_PROVISION = "iams.plugins."

_DNS_LABEL = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")
_LABEL_KEY = re.compile(r"[A-Za-z0-9]([A-Za-z0-9._/-]{0,126}[A-Za-z0-9])?")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
_MODULE = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_][\w]*(\.[A-Za-z_]\w*)*")
_VERSION = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,127}")
#: Environment names the platform sets itself; a spec may not set them.
RESERVED_ENV_PREFIX = "SHOPFLOOR_"


class DesiredState(enum.StrEnum):
    RUNNING = "running"
    STOPPED = "stopped"


class HealthSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    grace_seconds: float = Field(default=30.0, ge=0, le=3600, description="Time to become healthy.")
    interval_seconds: float = Field(default=10.0, ge=1, le=3600)
    failures: int = Field(default=3, ge=1, le=100, description="Failed checks before a restart.")
    url: str | None = Field(
        default=None,
        max_length=512,
        description="GET; 2xx is healthy. `{endpoint}` is replaced by the agent's endpoint.",
    )

    @field_validator("url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("a health URL is http:// or https://")
        return value


class AgentSpec(BaseModel):
    """A validated agent spec (what is stored; credentials never are)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    image: str | None = Field(default=None, max_length=512)
    command: tuple[str, ...] = Field(default=(), max_length=64)
    module: str | None = Field(default=None, max_length=256)
    version: str = "1"
    config: dict[str, Any] = Field(default_factory=dict)
    labels: dict[str, str] = Field(default_factory=dict, max_length=64)
    env: dict[str, str] = Field(default_factory=dict, max_length=128)
    desired_state: DesiredState = DesiredState.RUNNING
    restart_policy: RestartPolicy = RestartPolicy.ON_FAILURE
    health: HealthSettings = Field(default_factory=HealthSettings)
    thing_id: str | None = Field(default=None, max_length=36)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _DNS_LABEL.fullmatch(value):
            raise ValueError("an agent name is a DNS label: a-z, 0-9 and -, at most 63")
        return value

    @field_validator("version")
    @classmethod
    def _version(cls, value: str) -> str:
        if not _VERSION.fullmatch(value):
            raise ValueError("a version is letters, digits and . _ + -, as an image tag")
        return value

    @field_validator("module")
    @classmethod
    def _module(cls, value: str | None) -> str | None:
        if value is not None and not _MODULE.fullmatch(value):
            raise ValueError("module is `package.module:callable`")
        return value

    @field_validator("labels")
    @classmethod
    def _labels(cls, value: dict[str, str]) -> dict[str, str]:
        for key, text in value.items():
            if not _LABEL_KEY.fullmatch(key):
                raise ValueError(f"label {key!r} is not a label key")
            if len(text) > 256:
                raise ValueError(f"label {key!r}: a value is at most 256 characters")
        return value

    @field_validator("env")
    @classmethod
    def _env(cls, value: dict[str, str]) -> dict[str, str]:
        for key in value:
            if not _ENV_NAME.fullmatch(key):
                raise ValueError(f"{key!r} is not an environment variable name")
            if key.startswith(RESERVED_ENV_PREFIX):
                raise ValueError(f"{key}: SHOPFLOOR_* variables are set by the platform")
        return value

    @model_validator(mode="after")
    def _one_way_to_run(self) -> AgentSpec:
        ways = [bool(self.image), bool(self.command), bool(self.module)]
        if sum(ways) != 1:
            raise ValueError("an agent has exactly one of image, command and module")
        return self

    @property
    def runs_as(self) -> Literal["image", "command", "module"]:
        return "image" if self.image else "command" if self.command else "module"


def agent_label(labels: Mapping[str, str]) -> bool:
    """Whether labels mark an agent (`shopfloor.agent=true`, or IAMS's alias)."""
    value = labels.get(AGENT_LABEL, labels.get(_IAMS_AGENT, ""))
    return value.strip().lower() in ("true", "1", "yes")


def provisioning_labels(*label_sets: Mapping[str, str]) -> dict[str, str]:
    """`{provisioner: value}` from `shopfloor.provision.<name>` (or `iams.plugins.<name>`)
    labels. Later sets win (the spec's over the image's); `shopfloor.` over `iams.`."""
    found: dict[str, str] = {}
    for labels in label_sets:
        aliases = {
            k[len(_IAMS_PROVISION) :]: v for k, v in labels.items() if k.startswith(_IAMS_PROVISION)
        }
        own = {
            k[len(PROVISION_PREFIX) :]: v
            for k, v in labels.items()
            if k.startswith(PROVISION_PREFIX)
        }
        found.update(aliases)
        found.update(own)
    return {name: value for name, value in found.items() if name}


def parse_spec(data: Mapping[str, Any]) -> AgentSpec:
    """A spec from a mapping (a request body, a YAML file), or `InvalidAgentSpec` saying
    which field is wrong and why."""
    try:
        return AgentSpec.model_validate(dict(data))
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "spec"
        message = str(first["msg"]).removeprefix("Value error, ")
        raise InvalidAgentSpec(f"{where}: {message}") from exc
