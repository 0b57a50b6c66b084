"""`Provisioner`: a device from its external id and key to a thing ready to bootstrap.

One request creates the thing, the channels its template names (or reuses them by
name), the connections, the bootstrap config and, if the template says so, a
certificate — in one database transaction. A certificate the CA has signed before
something later failed is revoked again at the CA (for the built-in CA its record
simply rolls back: nobody ever saw it), so a failed provisioning leaves nothing
behind.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from shopfloor.pki import Certificates, Entity, EntityType, IssuedCertificate
from shopfloor.registry import (
    Channel,
    Conflict,
    Permission,
    Registry,
    RegistryTransaction,
    Thing,
)

from .._store import ConfigStore
from .._types import BootstrapConfig, State
from ._errors import InvalidProvisionRequest
from ._store import TemplateStore
from ._templates import BootstrapSpec, Plan, Template

__all__ = ["ProvisionRequest", "Provisioned", "Provisioner"]

logger = logging.getLogger(__name__)

#: Tries of one provisioning whose shared channel another one created at the same time.
_CHANNEL_RACE_ATTEMPTS = 3


class _ChannelRace(Exception):
    def __init__(self, conflict: Conflict) -> None:
        super().__init__(str(conflict))
        self.conflict = conflict


#: Without a template: the thing alone, its bootstrap config active and empty.
BARE = Template(name="bare", version=1, bootstrap=BootstrapSpec(active=True))


@dataclass(frozen=True, slots=True, kw_only=True)
class ProvisionRequest:
    external_id: str
    external_key: str
    name: str
    template: str | None = None
    variables: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class Provisioned:
    plan: Plan
    thing: Thing
    thing_key: str
    channels: tuple[tuple[Channel, bool], ...]  # (channel, created by this provisioning)
    config: BootstrapConfig
    certificate: IssuedCertificate | None


class Provisioner:
    def __init__(
        self,
        registry: Registry,
        templates: TemplateStore,
        configs: ConfigStore,
        certificates: Certificates,
        *,
        on_provisioned: Callable[[Provisioned], None] = lambda _done: None,
    ) -> None:
        self._registry = registry
        self._templates = templates
        self._configs = configs
        self._certificates = certificates
        self._on_provisioned = on_provisioned

    async def plan(self, org_id: str, request: ProvisionRequest) -> Plan:
        """What `provision` would do, without doing any of it (the preview)."""
        template = BARE
        if request.template:
            template = (await self._templates.get(org_id, request.template)).template
        return template.render(
            name=request.name, external_id=request.external_id, variables=request.variables
        )

    async def provision(self, org_id: str, request: ProvisionRequest) -> Provisioned:
        plan = await self.plan(org_id, request)
        for attempt in range(1, _CHANNEL_RACE_ATTEMPTS + 1):
            try:
                done = await self._provision(org_id, request, plan)
            except _ChannelRace as race:
                # Another device of the same type created the shared channel meanwhile:
                # everything rolled back; the next attempt finds the channel and reuses it.
                if attempt == _CHANNEL_RACE_ATTEMPTS:
                    raise race.conflict from race
                continue
            self._on_provisioned(done)
            return done
        raise AssertionError("unreachable")

    async def _provision(self, org_id: str, request: ProvisionRequest, plan: Plan) -> Provisioned:
        issued: IssuedCertificate | None = None
        try:
            async with self._registry.transaction() as tx:
                thing, key = await tx.create_thing(
                    org_id, name=plan.thing_name, metadata=plan.thing_metadata,
                    tags=plan.thing_tags,
                )  # fmt: skip
                channels = await self._channels(tx, org_id, plan)
                if plan.bootstrap_active:
                    for (channel, _), wanted in zip(channels, plan.channels, strict=True):
                        permissions = [Permission(p) for p in wanted.permissions]
                        await tx.connect(org_id, channel.id, thing.id, permissions)
                if plan.certificate_ttl is not None:
                    issued = await self._certificates.issue(
                        Entity(EntityType.THING, thing.id),
                        ttl=plan.certificate_ttl, org_id=org_id, conn=tx.conn,
                    )  # fmt: skip
                config = await self._configs.create(
                    org_id,
                    external_id=request.external_id,
                    external_key=request.external_key,
                    thing_id=thing.id,
                    name=request.name,
                    channels=[channel.id for channel, _ in channels],
                    content=plan.bootstrap_content,
                    client_cert="" if issued is None else issued.cert_pem,
                    client_key="" if issued is None else issued.key_pem or "",
                    ca_cert="" if issued is None else issued.ca_pem,
                    state=State.ACTIVE if plan.bootstrap_active else State.INACTIVE,
                    conn=tx.conn,
                )
        except BaseException:
            if issued is not None:
                await self._certificates.withdraw_quietly(issued.serial)
            raise
        return Provisioned(
            plan=plan, thing=thing, thing_key=key, channels=tuple(channels), config=config,
            certificate=issued,
        )  # fmt: skip

    async def _channels(
        self, tx: RegistryTransaction, org_id: str, plan: Plan
    ) -> list[tuple[Channel, bool]]:
        found: list[tuple[Channel, bool]] = []
        for wanted in plan.channels:
            channel = await tx.channel_named(org_id, wanted.name)
            if channel is not None:
                found.append((channel, False))
                continue
            if not wanted.create:
                raise InvalidProvisionRequest(
                    f"template {plan.template} v{plan.version} needs the channel "
                    f"{wanted.name!r}, which this organisation does not have",
                    code="template_channel_missing",
                )
            try:
                created = await tx.create_channel(
                    org_id, name=wanted.name, metadata=wanted.metadata, tags=wanted.tags
                )
            except Conflict as exc:
                raise _ChannelRace(exc) from exc
            found.append((created, True))
        return found
