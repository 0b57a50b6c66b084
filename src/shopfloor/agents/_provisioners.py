"""Label provisioners: per-agent credentials for platform services, from labels.

An agent labelled `shopfloor.provision.<name>=<value>` gets what the provisioner
`<name>` makes for it: its own database role, its own thing identity... Each
provisioner creates real credentials of the agent's own (never shared ones, unlike
IAMS's plugins, which mostly injected shared settings), hands them over as environment
variables and files, and removes them when the agent is deleted.

    provisioner = Provisioner.backends.get("postgres")(...)
    granted = await provisioner.provision(agent, value)   # Grant(env, files, secrets)
    await provisioner.deprovision(agent)

`provision` is idempotent: provisioning an agent again gives it working credentials
(the same identity; secrets may be new) without a second identity. `Grant.secrets`
lists the values that must never reach a log, an API listing or the stored spec.
"""

from __future__ import annotations

import abc
import hashlib
import json
import re
import secrets
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from shopfloor.core import Backends, Pluggable, create_engine
from shopfloor.registry import Permission, Registry

from ._errors import InvalidAgentSpec, RuntimeUnavailable

if TYPE_CHECKING:
    from shopfloor.core import Platform

__all__ = [
    "AgentRef",
    "Grant",
    "LogsProvisioner",
    "MqttProvisioner",
    "PostgresProvisioner",
    "Provisioner",
]


@dataclass(frozen=True, slots=True)
class AgentRef:
    """The agent a provisioner works for."""

    org_id: str
    name: str

    @property
    def key(self) -> str:
        return f"{self.org_id}/{self.name}"

    def slug(self, prefix: str, limit: int = 63) -> str:
        """A name of `[a-z0-9_]` for engines with strict identifiers: readable, with a
        digest of the full key so two agents never share one."""
        digest = hashlib.sha256(self.key.encode()).hexdigest()[:10]
        readable = re.sub(r"[^a-z0-9]+", "_", self.name.lower()).strip("_")
        room = limit - len(prefix) - len(digest) - 2
        return f"{prefix}_{readable[:room]}_{digest}"


@dataclass(frozen=True, slots=True)
class Grant:
    env: Mapping[str, str] = field(default_factory=dict)
    files: Mapping[str, bytes] = field(default_factory=dict)
    secrets: frozenset[str] = frozenset()


class Provisioner(
    Pluggable,
    abc.ABC,
    registry=Backends("agent provisioner", keyword="name", error=InvalidAgentSpec),
):
    name: ClassVar[str]

    @classmethod
    def from_platform(cls, platform: Platform) -> Provisioner | None:
        """The provisioner another running service offers (the aas service's `aas`),
        made by the agents service at its start; None where it is not offered, and for
        the agents service's own, which its settings configure."""
        return None

    def validate(self, value: str) -> None:
        """Refuse a label value this provisioner cannot work with (`InvalidAgentSpec`),
        before the agent is stored; checks that need the service are `provision`'s."""

    @abc.abstractmethod
    async def provision(self, agent: AgentRef, value: str) -> Grant:
        """Credentials of `agent`'s own for this service; `value` is the label's."""

    @abc.abstractmethod
    async def deprovision(self, agent: AgentRef) -> None:
        """Remove what `provision` made; nothing to remove is not an error."""


class PostgresProvisioner(Provisioner, name="postgres"):
    """A login role and a database owned by it, on the configured PostgreSQL server.

    The label's value is ignored (`true`). The role may connect to its own database
    only (CONNECT is revoked from PUBLIC on it). Deprovisioning ends the role's
    sessions, drops the database and the role. The administrative URL needs a role
    with CREATEROLE and CREATEDB; it is never handed to an agent.
    """

    def __init__(self, admin_url: str, *, agent_host: str | None = None) -> None:
        if not admin_url.startswith(("postgresql://", "postgres://")):
            raise InvalidAgentSpec(
                "the postgres provisioner needs SHOPFLOOR_AGENT_POSTGRES_URL "
                "(postgresql://...)", code="provisioner_unconfigured",
            )  # fmt: skip
        self._admin_url = admin_url
        url = sa.make_url(admin_url)
        self._host = agent_host or url.host or "127.0.0.1"
        self._port = url.port or 5432

    async def provision(self, agent: AgentRef, value: str) -> Grant:
        role, database = agent.slug("sf_agent"), agent.slug("sf_db")
        password = secrets.token_hex(24)  # hex: nothing to escape in the statement

        async def make(conn: AsyncConnection) -> None:
            exists = await conn.scalar(
                sa.text("SELECT 1 FROM pg_roles WHERE rolname = :role"), {"role": role}
            )
            verb = "ALTER" if exists else "CREATE"
            # Identifiers are [a-z0-9_] (AgentRef.slug), the password hex: no quoting issues.
            await conn.execute(sa.text(f"{verb} ROLE {role} LOGIN PASSWORD '{password}'"))
            found = await conn.scalar(
                sa.text("SELECT 1 FROM pg_database WHERE datname = :db"), {"db": database}
            )
            if not found:
                await conn.execute(sa.text(f"CREATE DATABASE {database} OWNER {role}"))
            await conn.execute(sa.text(f"REVOKE CONNECT ON DATABASE {database} FROM PUBLIC"))

        await self._run(make, f"make {role}")
        url = f"postgresql://{role}:{password}@{self._host}:{self._port}/{database}"
        env = {
            "SHOPFLOOR_POSTGRES_URL": url,
            "PGHOST": self._host,
            "PGPORT": str(self._port),
            "PGUSER": role,
            "PGPASSWORD": password,
            "PGDATABASE": database,
        }
        return Grant(env=env, secrets=frozenset({password, url}))

    async def deprovision(self, agent: AgentRef) -> None:
        role, database = agent.slug("sf_agent"), agent.slug("sf_db")

        async def drop(conn: AsyncConnection) -> None:
            await conn.execute(
                sa.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = :r"
                ),
                {"r": role},
            )
            await conn.execute(sa.text(f"DROP DATABASE IF EXISTS {database}"))
            await conn.execute(sa.text(f"DROP ROLE IF EXISTS {role}"))

        await self._run(drop, f"drop {role}")

    async def _run(self, work: Callable[[AsyncConnection], Awaitable[None]], what: str) -> None:
        # CREATE/DROP DATABASE cannot run in a transaction: autocommit, one connection.
        engine = create_engine(self._admin_url).execution_options(isolation_level="AUTOCOMMIT")
        try:
            async with engine.connect() as conn:
                await work(conn)
        except (OSError, sa.exc.SQLAlchemyError) as exc:
            # The server's own message only: SQLAlchemy's text quotes the statement, and a
            # statement may hold the new password.
            reason = getattr(exc, "orig", None) or type(exc).__name__
            raise RuntimeUnavailable(
                f"the postgres provisioner could not {what}: {reason}"
            ) from None
        finally:
            await engine.dispose()


class MqttProvisioner(Provisioner, name="mqtt"):
    """A thing identity of the agent's own, connected to the channels the label names.

    The label's value is a comma-separated list of channel names of the organisation;
    channels that do not exist yet are created. The thing is named `agent <name>` and
    tagged `agent`; deprovisioning deletes it (which also revokes its certificates).
    """

    def __init__(self, registry: Registry, *, mqtt_url: str = "", http_url: str = "") -> None:
        self._registry = registry
        self._mqtt_url = mqtt_url
        self._http_url = http_url

    @staticmethod
    def thing_name(agent: AgentRef) -> str:
        return f"agent {agent.name}"

    def validate(self, value: str) -> None:
        self._channel_names(value)

    @staticmethod
    def _channel_names(value: str) -> list[str]:
        names = [name.strip() for name in value.split(",") if name.strip()]
        if not names or value.strip().lower() == "true":
            raise InvalidAgentSpec(
                "shopfloor.provision.mqtt names the channels, comma-separated",
                code="invalid_provisioning_label",
            )
        return names

    async def provision(self, agent: AgentRef, value: str) -> Grant:
        names = self._channel_names(value)
        thing = await self._registry.thing_named(agent.org_id, self.thing_name(agent))
        if thing is None:
            thing, key = await self._registry.create_thing(
                agent.org_id, name=self.thing_name(agent), metadata={"agent": agent.name},
                tags=["agent"],
            )  # fmt: skip
        else:
            key = self._registry.thing_key(thing)
        channels = []
        for name in names:
            channel = await self._registry.channel_named(agent.org_id, name)
            if channel is None:
                channel = await self._registry.create_channel(agent.org_id, name=name)
            both = (Permission.PUBLISH, Permission.SUBSCRIBE)
            await self._registry.connect(agent.org_id, channel.id, thing.id, both)
            channels.append({"id": channel.id, "name": channel.name})
        env = {
            "SHOPFLOOR_THING_ID": thing.id,
            "SHOPFLOOR_THING_KEY": key,
            "SHOPFLOOR_CHANNELS": json.dumps(channels, separators=(",", ":")),
        }
        if self._mqtt_url:
            env["SHOPFLOOR_MQTT_URL"] = self._mqtt_url
        if self._http_url:
            env["SHOPFLOOR_HTTP_URL"] = self._http_url
        return Grant(env=env, secrets=frozenset({key}))

    async def deprovision(self, agent: AgentRef) -> None:
        thing = await self._registry.thing_named(agent.org_id, self.thing_name(agent))
        if thing is not None:
            await self._registry.delete_thing(agent.org_id, thing.id)


class LogsProvisioner(Provisioner, name="logs"):
    """The agent's output shipped to the platform's database, searchable through the
    logs route (`search=`) and kept after the runtime has rotated it away.

    No credentials: the agents service ships what the runtime captures (the agent only
    writes to stdout and stderr). The label's value is `true`. Deprovisioning is the
    deletion of the shipped lines, which the agents service does with the agent.
    """

    def validate(self, value: str) -> None:
        if value.strip().lower() not in ("true", "1", "yes"):
            raise InvalidAgentSpec(
                "shopfloor.provision.logs is `true`", code="invalid_provisioning_label"
            )

    async def provision(self, agent: AgentRef, value: str) -> Grant:
        self.validate(value)
        return Grant(env={"SHOPFLOOR_LOGS_SHIPPED": "true"})

    async def deprovision(self, agent: AgentRef) -> None:
        return None
