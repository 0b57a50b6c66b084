"""`AgentContext`: what the platform handed an agent, read once from its environment.

    context = AgentContext.from_env()
    interval = float(context.config.get("interval", 5))
    cert = context.file("cert.pem")          # None when the platform wrote none

The contract itself (variables, files, signals) is in `shopfloor.sdk.run`.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._bootstrap import DeviceChannel

__all__ = ["AgentContext", "AgentContextError"]

CONFIG_FILE = "config.json"


class AgentContextError(ValueError):
    """The environment or the files the platform wrote cannot be read."""


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentContext:
    """The agent's identity, configuration and provisioned credentials.

    Run by hand, outside the platform, the identity is empty, `files_dir` and the
    credentials are None and `config` is `{}`.
    """

    name: str = ""
    org_id: str = ""
    version: str = ""
    files_dir: Path | None = None
    #: The spec's `config` object, from `config.json` (`{}` without one).
    config: Mapping[str, Any] = field(default_factory=dict)
    thing_id: str | None = None
    thing_key: str | None = field(default=None, repr=False)
    channels: tuple[DeviceChannel, ...] = ()
    http_url: str | None = None
    #: The platform's API (`SHOPFLOOR_PLATFORM_URL`): CRL, relation graph, state reports.
    platform_url: str | None = None
    mqtt_url: str | None = None
    postgres_url: str | None = field(default=None, repr=False)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> AgentContext:
        """From `environ` (the process's environment by default) and the files it names."""
        env = os.environ if environ is None else environ

        def optional(name: str) -> str | None:
            return env.get(name) or None

        files = optional("SHOPFLOOR_AGENT_FILES")
        files_dir = Path(files) if files else None
        return cls(
            name=env.get("SHOPFLOOR_AGENT_NAME", ""),
            org_id=env.get("SHOPFLOOR_AGENT_ORG", ""),
            version=env.get("SHOPFLOOR_AGENT_VERSION", ""),
            files_dir=files_dir,
            config=read_config(files_dir),
            thing_id=optional("SHOPFLOOR_THING_ID"),
            thing_key=optional("SHOPFLOOR_THING_KEY"),
            channels=parse_channels(env.get("SHOPFLOOR_CHANNELS", "")),
            http_url=optional("SHOPFLOOR_HTTP_URL"),
            platform_url=optional("SHOPFLOOR_PLATFORM_URL"),
            mqtt_url=optional("SHOPFLOOR_MQTT_URL"),
            postgres_url=optional("SHOPFLOOR_POSTGRES_URL"),
        )

    def file(self, name: str) -> Path | None:
        """The path of one of the agent's files (`cert.pem`, ...), None when it has none."""
        if self.files_dir is None:
            return None
        path = self.files_dir / name
        return path if path.is_file() else None

    def reloaded(self) -> AgentContext:
        """This context with `config.json` read again: what to do on SIGHUP."""
        return dataclasses.replace(self, config=read_config(self.files_dir))


def config_seconds(config: Mapping[str, Any], key: str, default: float) -> float:
    """`config[key]` as a number of seconds > 0 (`default` when absent), else ValueError."""
    value = config.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ValueError(f"config.{key} is a number of seconds > 0, not {value!r}")
    return float(value)


def config_port(config: Mapping[str, Any], key: str) -> int | None:
    """`config[key]` as a TCP port (None when absent), else ValueError."""
    port = config.get(key)
    if port is not None and (type(port) is not int or not 0 <= port <= 65535):
        raise ValueError(f"config.{key} is a port number, not {port!r}")
    return port


def read_config(files_dir: Path | None) -> dict[str, Any]:
    """The JSON object in `config.json` of `files_dir`; `{}` when there is no such file."""
    if files_dir is None:
        return {}
    path = files_dir / CONFIG_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise AgentContextError(f"cannot read {path}: {exc.strerror}") from exc
    try:
        config = json.loads(text)
    except json.JSONDecodeError as exc:
        raise AgentContextError(f"{path} is not JSON: {exc}") from exc
    if not isinstance(config, dict):
        raise AgentContextError(f"{path} holds {type(config).__name__}, not a JSON object")
    return config


def parse_channels(text: str) -> tuple[DeviceChannel, ...]:
    """`SHOPFLOOR_CHANNELS`: a JSON list of `{"id", "name"}`; empty when unset."""
    if not text.strip():
        return ()
    try:
        items = json.loads(text)
    except json.JSONDecodeError as exc:
        raise AgentContextError(f"SHOPFLOOR_CHANNELS is not JSON: {exc}") from exc
    if not isinstance(items, list) or not all(
        isinstance(item, dict) and isinstance(item.get("id"), str) for item in items
    ):
        raise AgentContextError('SHOPFLOOR_CHANNELS is not a JSON list of {"id", "name"}')
    return tuple(DeviceChannel(id=item["id"], name=str(item.get("name", ""))) for item in items)
