"""Bootstrap as a service: device configurations, their management routes and the
device routes (Mainflux-compatible fetch and Shopfloor's secure exchange)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import Field, field_validator

from shopfloor.auth.capability import IdentityService
from shopfloor.core import Section, Service
from shopfloor.core.capability import DatabaseService
from shopfloor.messaging.capability import BusService
from shopfloor.ui import PREFIX, ConsolePage, pages
from shopfloor.ui.capability import console_templates

from ._bootstrap import Bootstrap, PublicUrls
from ._devices import Challenges, UnknownDevices
from ._limits import DeviceLimits, TokenBuckets
from ._sealed import SECRET_FILE, SealedFields
from ._store import ConfigStore

if TYPE_CHECKING:
    from shopfloor.core import Platform

__all__ = ["BootstrapService", "BootstrapSettings"]


class BootstrapSettings(Section, section="bootstrap"):
    public_mqtt_url: str = Field(
        default="", description="MQTT URL devices are told at bootstrap, e.g. mqtt://host:1883."
    )
    public_mqtts_url: str = Field(
        default="", description="MQTT over TLS URL devices are told, e.g. mqtts://host:8883."
    )
    public_http_url: str = Field(
        default="", description="HTTP URL devices are told, e.g. https://host."
    )
    bootstrap_challenge_ttl_seconds: int = Field(
        default=60, ge=5, le=3600, description="Life of a secure-bootstrap challenge."
    )
    bootstrap_id_requests_per_minute: float = Field(
        default=12.0, gt=0, description="Device requests per external id, sustained."
    )
    bootstrap_id_burst: int = Field(
        default=6, ge=2, description="Device requests per external id at once."
    )
    bootstrap_address_requests_per_minute: float = Field(
        default=600.0, gt=0, description="Device requests per source address, sustained."
    )
    bootstrap_address_burst: int = Field(
        default=120, ge=2, description="Device requests per source address at once."
    )
    bootstrap_unknown_max: int = Field(
        default=10_000, ge=10, description="Unknown external ids kept; the oldest go first."
    )

    @field_validator("public_mqtt_url", "public_mqtts_url", "public_http_url")
    @classmethod
    def _url(cls, value: str) -> str:
        if value and "://" not in value:
            raise ValueError("a public URL needs a scheme, e.g. mqtts://host:8883")
        return value.rstrip("/")


pages.add(
    ConsolePage(
        capability="bootstrap", path=PREFIX + "/bootstrap", title="bootstrap.title", order=72
    )
)


class BootstrapService(Service, name="bootstrap", needs=("database", "bus", "identity")):
    """Device bootstrap (Mainflux-compatible and secure)."""

    routes = ("shopfloor.bootstrap.routes:router", "shopfloor.bootstrap.console:router")
    migrations = Path(__file__).parent / "migrations"
    version_table = "alembic_version_bootstrap"

    def __init__(self, platform: Platform) -> None:
        super().__init__(platform)
        settings = platform.settings.section(BootstrapSettings)
        identity = platform.get(IdentityService)
        engine = platform.get(DatabaseService).engine
        sealed = SealedFields(identity.secrets.random_secret(SECRET_FILE))
        self.bootstrap = Bootstrap(
            ConfigStore(engine, sealed),
            identity.registry,
            challenges=Challenges(engine, ttl_seconds=settings.bootstrap_challenge_ttl_seconds),
            unknown=UnknownDevices(engine, max_rows=settings.bootstrap_unknown_max),
            limits=DeviceLimits(
                TokenBuckets(
                    per_minute=settings.bootstrap_id_requests_per_minute,
                    burst=settings.bootstrap_id_burst,
                ),
                TokenBuckets(
                    per_minute=settings.bootstrap_address_requests_per_minute,
                    burst=settings.bootstrap_address_burst,
                ),
            ),
            public=PublicUrls(
                mqtt_url=settings.public_mqtt_url,
                mqtts_url=settings.public_mqtts_url,
                http_url=settings.public_http_url,
            ),
            emit=platform.get(BusService).events.emit,
            metrics_registry=platform.metrics,
        )
        console_templates(platform, "shopfloor.bootstrap")  # the bootstrap page's

    @property
    def configs(self) -> ConfigStore:
        """The store, for a provisioning step writing inside its own transaction."""
        return self.bootstrap.configs
