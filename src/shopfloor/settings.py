"""The one settings model, read once at the edge (CLI) and passed in.

Every field can be set from the environment with the `SHOPFLOOR_` prefix
(`SHOPFLOOR_HTTP_PORT=8080`) or from the `shopfloor serve` options. Backends are
chosen by URL scheme; the defaults are the embedded ones.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

#: Services `shopfloor serve --services` can start: `api` (identity, registry and reader
#: routes), `http` (HTTP and WebSocket adapters), `mqtt` (the embedded MQTT broker, or the
#: Mosquitto bridge when `mqtt_broker_url` is set), `writer` (bus → time-series store).
KNOWN_SERVICES: tuple[str, ...] = ("api", "http", "mqtt", "writer")
DEFAULT_SERVICES: tuple[str, ...] = KNOWN_SERVICES


class Settings(BaseSettings):
    """Shopfloor server settings (environment prefix `SHOPFLOOR_`)."""

    model_config = SettingsConfigDict(env_prefix="SHOPFLOOR_", extra="ignore", frozen=True)

    data_dir: Path = Field(
        default=Path("var/data"),
        description="Folder for the SQLite files, the signing key and other secrets.",
    )
    http_host: str = Field(default="0.0.0.0", description="Address the HTTP server binds.")  # noqa: S104
    http_port: int = Field(default=8000, ge=0, le=65535, description="HTTP API port.")
    mqtt_host: str = Field(default="0.0.0.0", description="Address the MQTT broker binds.")  # noqa: S104
    mqtt_port: int = Field(default=1883, ge=0, le=65535, description="Embedded MQTT broker port.")
    services: Annotated[tuple[str, ...], NoDecode] = Field(
        default=DEFAULT_SERVICES,
        description="Comma-separated services this process runs.",
    )

    database_url: str = Field(
        default="",
        description="Registry database: empty for SQLite in the data dir, or postgresql://...",
    )
    bus_url: str = Field(default="memory://", description="Message bus: memory:// or nats://...")
    mqtt_broker_url: str = Field(
        default="", description="Empty for the embedded broker, or mqtt://host:port (Mosquitto)."
    )
    mqtt_bridge_password: SecretStr = Field(
        default=SecretStr(""),
        description="Mosquitto mode: password of the platform's bridge identity (16+ chars, "
        "the same in every process).",
    )
    mqtt_bridge_client_id: str = Field(
        default="shopfloor-bridge",
        description="Mosquitto mode: MQTT client id of this process's bridge session.",
    )
    timeseries_url: str = Field(
        default="sqlite://",
        description="Time-series store: sqlite://, postgresql://..., influxdb://host:8086/db",
    )

    admin_email: str = Field(default="", description="First platform admin, on an empty database.")
    admin_password: SecretStr = Field(default=SecretStr(""), description="Its password.")

    token_ttl_seconds: int = Field(default=900, ge=30, le=86400, description="Bearer token life.")

    oidc_issuer: str = Field(default="", description="OIDC issuer URL, e.g. a Keycloak realm.")
    oidc_audience: str = Field(default="", description="Required `aud` of OIDC tokens, if set.")
    oidc_role_claim: str = Field(
        default="realm_access.roles", description="Dotted path of the roles claim."
    )
    oidc_org_claim: str = Field(default="groups", description="Dotted path of the org claim.")
    oidc_email_claim: str = Field(default="email", description="Claim holding the user's e-mail.")
    oidc_platform_admin_role: str = Field(
        default="shopfloor-admin", description="Role value that makes a platform admin."
    )
    oidc_jwks_ttl_seconds: int = Field(default=300, ge=10, description="JWKS cache life.")
    oidc_jwks_min_refresh_seconds: float = Field(
        default=10.0, ge=0, description="Least time between two JWKS refetches for unknown keys."
    )

    max_body_bytes: int = Field(default=1_048_576, ge=1024, description="Largest request body.")
    log_format: str = Field(default="json", pattern="^(json|text)$", description="json or text")
    log_level: str = Field(default="INFO", description="Python log level name.")

    @field_validator("services", mode="before")
    @classmethod
    def _split_services(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("services")
    @classmethod
    def _known_services(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = sorted(set(value) - set(KNOWN_SERVICES))
        if unknown:
            raise ValueError(
                f"unknown service(s) {', '.join(unknown)}; known: {', '.join(KNOWN_SERVICES)}"
            )
        if not value:
            raise ValueError("at least one service is needed")
        return value

    @field_validator("database_url")
    @classmethod
    def _database_scheme(cls, value: str) -> str:
        if value and not value.startswith(("sqlite", "postgresql", "postgres://")):
            raise ValueError("database_url must be empty, sqlite:///path or postgresql://...")
        return value

    @field_validator("oidc_issuer")
    @classmethod
    def _issuer_url(cls, value: str) -> str:
        if value and not value.startswith(("http://", "https://")):
            raise ValueError("oidc_issuer must be an http(s) URL")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _admin_pair(self) -> Settings:
        if bool(self.admin_email) != bool(self.admin_password.get_secret_value()):
            raise ValueError("set both SHOPFLOOR_ADMIN_EMAIL and SHOPFLOOR_ADMIN_PASSWORD, or none")
        return self

    @model_validator(mode="after")
    def _mosquitto_mode(self) -> Settings:
        if self.mqtt_broker_url and len(self.mqtt_bridge_password.get_secret_value()) < 16:
            raise ValueError(
                "Mosquitto mode needs SHOPFLOOR_MQTT_BRIDGE_PASSWORD (at least 16 characters)"
            )
        return self

    @property
    def registry_url(self) -> str:
        """The SQLAlchemy URL of the registry database."""
        return self.database_url or f"sqlite:///{self.data_dir / 'registry.db'}"
