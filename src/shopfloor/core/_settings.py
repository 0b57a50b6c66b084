"""Settings by capability: core server settings plus one section per capability.

    class MessagingSettings(Section, section="messaging"):
        bus_url: str = Field(default="memory://", description="...")

    settings.section(MessagingSettings).bus_url        # typed

Every field is an environment variable: `SHOPFLOOR_<FIELD>` by default, so the names
of the SPEC (`SHOPFLOOR_BUS_URL`, `SHOPFLOOR_DATABASE_URL` ...) stay exactly as they
were before settings had sections; a section may name its own prefix
(`env_prefix="SHOPFLOOR_CA_"` makes field `url` read `SHOPFLOOR_CA_URL`). Code and
tests may pass every field flat (`Settings(bus_url=...)`, the env name without
`SHOPFLOOR_`, lower case); two fields with one environment name are refused when the
model is built. `describe()` lists every setting with secrets masked, for
`check-config`, without touching anything.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, ClassVar, TypeVar
from urllib.parse import urlsplit, urlunsplit

from pydantic import Field, SecretStr, create_model, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from ._backends import Backends, Pluggable
from ._errors import ErrorKind, ShopfloorError

__all__ = ["CoreSettings", "Section", "SettingInfo", "SettingsError", "settings_model"]

ENV_PREFIX = "SHOPFLOOR_"
S = TypeVar("S", bound="Section")


class SettingsError(ShopfloorError):
    code = "invalid_settings"
    kind = ErrorKind.INVALID


_SECTIONS: Backends[Section] = Backends("settings", keyword="section", error=SettingsError)


class Section(BaseSettings, Pluggable, registry=_SECTIONS):
    """One capability's settings; subclasses register with `section="<name>"`."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)
    section: ClassVar[str]

    @classmethod
    def env_names(cls) -> dict[str, str]:
        """Field name → environment variable."""
        prefix = cls.model_config.get("env_prefix", ENV_PREFIX)
        return {name: f"{prefix}{name}".upper() for name in cls.model_fields}


def _split_names(value: object) -> object:
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return value


class CoreSettings(BaseSettings):
    """The server's own settings; capability sections are added by `settings_model`."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)
    #: Section name → section class, filled in by `settings_model`.
    sections: ClassVar[dict[str, type[Section]]] = {}
    #: Names `services` may hold, filled in by `settings_model`.
    selectable: ClassVar[tuple[str, ...]] = ()

    data_dir: Path = Field(
        default=Path("var/data"),
        description="Folder for the SQLite files, the signing key and other secrets.",
    )
    http_host: str = Field(default="0.0.0.0", description="Address the HTTP server binds.")  # noqa: S104
    http_port: int = Field(default=8000, ge=0, le=65535, description="HTTP API port.")
    services: Annotated[tuple[str, ...], NoDecode] = Field(
        default=(), description="Comma-separated services this process runs (default: all)."
    )
    capabilities: Annotated[tuple[str, ...], NoDecode] = Field(
        default=(),
        description="Comma-separated extra modules that register capabilities (plug-ins).",
    )
    max_body_bytes: int = Field(default=1_048_576, ge=1024, description="Largest request body.")
    http_header_timeout_seconds: float = Field(
        default=10.0, gt=0, description="Time a request's headers may take (then 408)."
    )
    http_max_header_bytes: int = Field(
        default=16_384, ge=1024, description="Largest request headers (then 431)."
    )
    http_keep_alive_seconds: int = Field(
        default=5, ge=1, description="Idle time before a keep-alive connection is closed."
    )
    http_max_connections: int = Field(
        default=2048, ge=16, description="Connections and requests at once (then 503)."
    )
    tls_cert: Path | None = Field(
        default=None, description="Server certificate (PEM) for HTTPS; empty: plain HTTP."
    )
    tls_key: Path | None = Field(
        default=None, description="Private key (PEM) of SHOPFLOOR_TLS_CERT."
    )
    tls_client_ca: Path | None = Field(
        default=None,
        description="CA (PEM) HTTPS client certificates are checked against; default: the CA's.",
    )
    log_format: str = Field(default="json", pattern="^(json|text)$", description="json or text")
    log_level: str = Field(default="INFO", description="Python log level name.")

    @field_validator("services", "capabilities", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        return _split_names(value)

    @field_validator("services")
    @classmethod
    def _known_services(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        value = value or cls.selectable
        unknown = sorted(set(value) - set(cls.selectable))
        if unknown:
            raise ValueError(
                f"unknown service(s) {', '.join(unknown)}; known: {', '.join(cls.selectable)}"
            )
        if not value:
            raise ValueError("at least one service is needed")
        return value

    @model_validator(mode="after")
    def _tls_pair(self) -> CoreSettings:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("set both SHOPFLOOR_TLS_CERT and SHOPFLOOR_TLS_KEY, or neither")
        return self

    @model_validator(mode="before")
    @classmethod
    def _sections(cls, data: Any) -> Any:
        """Build each section from its own environment and the flat or nested values given."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        for name, section in cls.sections.items():
            given = data.get(name)
            if isinstance(given, Section):
                continue
            values: dict[str, Any] = dict(given or {})
            for field, env in section.env_names().items():
                flat = env[len(ENV_PREFIX) :].lower()
                if flat in data:
                    values[field] = data.pop(flat)
            data[name] = section(**values)
        return data

    def section(self, cls: type[S]) -> S:
        """This process's settings of one capability."""
        value = getattr(self, cls.section, None)
        if not isinstance(value, cls):
            raise SettingsError(f"settings section {cls.section!r} is not registered")
        return value

    def describe(self) -> Iterator[SettingInfo]:
        """Every setting with its environment name and a printable, masked value."""
        for field in _fields(type(self)):
            owner = self if field.section is None else getattr(self, field.section)
            shown = _shown(field.name, getattr(owner, field.name))
            yield SettingInfo(field.env, shown, field.description)


@dataclass(frozen=True, slots=True)
class SettingInfo:
    env: str
    shown: str
    description: str


#: Names of settings whose values are secrets whatever they hold.
_SECRET_NAME = re.compile(r"password|secret|passphrase|(^|_)(key|token)$", re.I)


def _shown(name: str, value: object) -> str:
    """A value fit to print: secrets as `[set]`, passwords inside URLs as `***`."""
    if isinstance(value, SecretStr):
        return "[set]" if value.get_secret_value() else ""
    text = ",".join(str(v) for v in value) if isinstance(value, tuple) else str(value)
    if _SECRET_NAME.search(name) and text:
        return "[set]"
    return mask_url_passwords(text)


def mask_url_passwords(text: str) -> str:
    """`scheme://user:secret@host/...` → `scheme://user:***@host/...`, in every URL of text."""
    parts = []
    for word in re.split(r"(\s+|,)", text):
        parts.append(_mask_url(word))
    return "".join(parts)


def _mask_url(word: str) -> str:
    if "://" not in word or "@" not in word:
        return word
    try:
        split = urlsplit(word)
    except ValueError:
        return re.sub(r"://[^@/]*@", "://***@", word)
    if split.password is None and ":" not in split.netloc.rpartition("@")[0]:
        return word
    userinfo, _, host = split.netloc.rpartition("@")
    user = userinfo.split(":", 1)[0]
    return urlunsplit(split._replace(netloc=f"{user}:***@{host}"))


def settings_model(
    sections: Iterable[type[Section]], services: Iterable[str]
) -> type[CoreSettings]:
    """The settings class of a process with these sections and selectable services."""
    by_name: dict[str, type[Section]] = {}
    seen: dict[str, str] = {f"{ENV_PREFIX}{n.upper()}": "core" for n in CoreSettings.model_fields}
    for section in sections:
        for env in section.env_names().values():
            if env in seen:
                raise SettingsError(
                    f"{env} is declared by both {seen[env]} and section {section.section!r}"
                )
            seen[env] = section.section
        by_name[section.section] = section
    fields: dict[str, Any] = {
        name: (section, Field(default_factory=section)) for name, section in by_name.items()
    }
    model = create_model("Settings", __base__=CoreSettings, **fields)
    model.sections = by_name
    model.selectable = tuple(services)
    return model


@dataclass(frozen=True, slots=True)
class _Field:
    env: str
    name: str
    section: str | None  # None for the core settings
    description: str


def _fields(model: type[CoreSettings]) -> Iterator[_Field]:
    """Every setting of a settings class: the core ones, then each section's."""
    for name, info in model.model_fields.items():
        if name not in model.sections:
            env = f"{ENV_PREFIX}{name.upper()}"
            yield _Field(env, name, None, info.description or "")
    for section_name, section in model.sections.items():
        for name, env in section.env_names().items():
            yield _Field(env, name, section_name, section.model_fields[name].description or "")


def env_names(model: type[CoreSettings]) -> Mapping[str, str]:
    """Environment name → description of every setting of a settings class."""
    return {field.env: field.description for field in _fields(model)}
