"""Agents as a service: their API, the reconciler, the runtime and the provisioners.

One process of a deployment runs `agents` (it owns the runtime: the process runtime's
data dir, or the Swarm or Kubernetes objects it labels as the platform's).
"""

from __future__ import annotations

from contextlib import AsyncExitStack
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from pydantic import Field, SecretStr, field_validator

from shopfloor.auth.capability import IdentityService
from shopfloor.core import Section, Service
from shopfloor.core.capability import DatabaseService
from shopfloor.messaging.capability import BusService
from shopfloor.pki import parse_duration
from shopfloor.pki.capability import PkiService

from ._agents import AgentOptions, Agents
from ._influxdb import InfluxdbProvisioner
from ._logs import LogShipper
from ._provisioners import LogsProvisioner, MqttProvisioner, PostgresProvisioner, Provisioner
from ._runtime import AgentRuntime
from ._sealed import SECRET_FILE, Sealer
from ._states import AgentStates
from ._store import AgentStore
from ._tables import MIGRATIONS

if TYPE_CHECKING:
    from shopfloor.core import Platform

__all__ = ["AgentsService", "AgentsSettings"]

#: Settings the runtimes read (`AgentRuntime.from_settings`); unset ones take theirs.
RUNTIME_KEYS = (
    *("grace_period", "ready_after", "log_max_bytes", "log_files", "restart_backoff_base"),
    *("restart_backoff_cap", "restart_reset_after", "poll_interval"),
    *("docker_url", "docker_api_version", "docker_timeout"),
    *("kube_host", "kube_config", "kube_context", "kube_namespace"),
)


class AgentsSettings(Section, section="agents", env_prefix="SHOPFLOOR_AGENT_"):
    runtime: str = Field(
        default="process", description="Where agents run: process, swarm or kubernetes."
    )
    postgres_url: SecretStr = Field(
        default=SecretStr(""),
        description="PostgreSQL admin URL (CREATEROLE, CREATEDB) of the postgres provisioner.",
    )
    postgres_agent_host: str = Field(
        default="", description="Host agents reach that PostgreSQL at (default: the URL's)."
    )
    influxdb_url: SecretStr = Field(
        default=SecretStr(""), description="InfluxDB 1.x admin URL of the influxdb provisioner."
    )
    http_url: str = Field(
        default="", description="HTTP adapter URL agents are told (default: this process's)."
    )
    platform_url: str = Field(
        default="",
        description="API URL agents are told: CRL, relations, state reports (default: this "
        "process's).",
    )
    mqtt_url: str = Field(default="", description="MQTT URL agents are told (mqtt://host:1883).")
    reconcile_interval: float = Field(
        default=2.0, gt=0, le=300, description="Seconds between reconcile passes when idle."
    )
    cert_ttl: timedelta = Field(
        default=timedelta(days=30), description="Life of an agent's certificate (renewed at 2/3)."
    )
    upgrade_settle_seconds: float = Field(
        default=5.0, ge=0, le=3600, description="An upgrade is kept once healthy this long."
    )
    delete_wait_seconds: float = Field(
        default=30.0, ge=0, le=600, description="DELETE waits this long before answering 202."
    )
    remove_orphans: bool = Field(
        default=True, description="Remove runtime objects of agents the platform has not."
    )
    log_retention_lines: int = Field(
        default=100_000, ge=100, description="Shipped log lines kept per agent."
    )
    # The runtimes' own (docs/agents.md); unset: the runtime's default.
    grace_period: float | None = None
    ready_after: float | None = None
    log_max_bytes: int | None = None
    log_files: int | None = None
    restart_backoff_base: float | None = None
    restart_backoff_cap: float | None = None
    restart_reset_after: float | None = None
    poll_interval: float | None = None
    docker_url: str | None = None
    docker_api_version: str | None = None
    docker_timeout: float | None = None
    kube_host: str | None = None
    kube_config: str | None = None
    kube_context: str | None = None
    kube_namespace: str | None = None

    @field_validator("cert_ttl", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> timedelta:
        try:
            return parse_duration(value)
        except Exception as exc:
            raise ValueError(str(exc)) from exc

    def runtime_settings(self) -> dict[str, Any]:
        values = {key: getattr(self, key) for key in RUNTIME_KEYS}
        return {key: value for key, value in values.items() if value is not None}


class AgentsService(
    Service, name="agents", needs=("database", "bus", "identity", "pki"), before=("flows",)
):
    """Industrial agents: deployed, provisioned, certified and supervised."""

    health = "agents"
    routes = ("shopfloor.agents.routes:router",)
    commands = {"agents": "shopfloor.agents.commands:agents_app"}
    migrations = MIGRATIONS.versions
    version_table = MIGRATIONS.version_table

    def __init__(self, platform: Platform) -> None:
        super().__init__(platform)
        settings = platform.settings.section(AgentsSettings)
        self.settings = settings
        identity = platform.get(IdentityService)
        engine = platform.get(DatabaseService).engine
        runtime_class = AgentRuntime.backends.get(settings.runtime)
        self.runtime = runtime_class.from_settings(
            settings.runtime_settings(), data_dir=platform.settings.data_dir
        )
        own_url = f"http://127.0.0.1:{platform.settings.http_port}"
        http_url = settings.http_url or own_url
        provisioners: dict[str, Provisioner] = {
            "mqtt": MqttProvisioner(
                identity.registry, mqtt_url=settings.mqtt_url, http_url=http_url
            ),
            "logs": LogsProvisioner(),
        }
        if settings.postgres_url.get_secret_value():
            provisioners["postgres"] = PostgresProvisioner(
                settings.postgres_url.get_secret_value(),
                agent_host=settings.postgres_agent_host or None,
            )
        if settings.influxdb_url.get_secret_value():
            provisioners["influxdb"] = InfluxdbProvisioner(settings.influxdb_url.get_secret_value())
        for offered in Provisioner.backends:
            if offered.name not in provisioners:
                made = offered.from_platform(platform)
                if made is not None:
                    provisioners[offered.name] = made
        pki = platform.get(PkiService)
        store = AgentStore(engine)
        self.agents = Agents(
            store,
            self.runtime,
            sealer=Sealer(identity.secrets.random_secret(SECRET_FILE)),
            provisioners=provisioners,
            certificates=pki.certs,
            emit=platform.get(BusService).events.emit,
            thing_check=identity.registry.get_thing,
            options=AgentOptions(
                reconcile_interval=settings.reconcile_interval,
                cert_ttl=settings.cert_ttl,
                upgrade_settle=settings.upgrade_settle_seconds,
                remove_orphans=settings.remove_orphans,
                delete_wait=settings.delete_wait_seconds,
                platform_url=settings.platform_url or own_url,
            ),
        )
        self.states = AgentStates(engine, store, platform.get(BusService).events)
        self.shipper = LogShipper(engine, self.agents, retention_lines=settings.log_retention_lines)

    async def _start(self, stack: AsyncExitStack) -> None:
        await stack.enter_async_context(self.runtime)
        stack.callback(self.states.close)  # first thing at a stop: the followers let go
        await self.spawn("agents-reconciler", self.agents.run)
        await self.spawn("agents-logs", self.shipper.run)

    @property
    def ready(self) -> bool:
        return not self.stopping
