"""Certificates as a service: the CA (built-in or CFSSL), the certificates table, the gate.

Revocations are enforced by the platform whatever the backend: the gate of every
process refuses what the `certificates` table says is revoked. It is filled at start,
follows `pki.certificate_revoked` from every process, is reloaded whole when the bus
connection comes back (events may have been missed) and every `reload_seconds` (a
revocation made by the CLI, which has no bus, or an event lost otherwise).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from contextlib import AsyncExitStack
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import Field, SecretStr, field_validator, model_validator

from shopfloor.auth.capability import IdentityService
from shopfloor.core import Section, Service, first_set
from shopfloor.core.capability import DatabaseService
from shopfloor.messaging import RECONNECTED, Event
from shopfloor.messaging.capability import BusService
from shopfloor.ui import PREFIX, ConsolePage, pages
from shopfloor.ui.capability import console_templates

from ._assertions import ISSUER_PREFIX, AgentAssertions
from ._authority import AuthorityOptions, CertificateAuthority, create_authority
from ._certificates import REVOKED_EVENT, Certificates
from ._errors import InvalidCertificateRequest
from ._files import write_atomically
from ._gate import CertificateGate
from ._identity import Entity, EntityType
from ._servers import ServerIdentities, TlsFiles
from ._tables import MIGRATIONS
from ._x509 import parse_duration

if TYPE_CHECKING:
    from shopfloor.core import CoreSettings, Platform

__all__ = ["PkiService", "PkiSettings", "authority_options"]

logger = logging.getLogger(__name__)


class PkiSettings(Section, section="pki", env_prefix="SHOPFLOOR_CA_"):
    url: str = Field(
        default="builtin://",
        description="Certificate authority: builtin:// (in the data dir) or cfssl+http://host:8888.",
    )
    passphrase: SecretStr = Field(
        default=SecretStr(""), description="Encrypts the built-in CA's key file (empty: not)."
    )
    default_ttl: timedelta = Field(
        default=timedelta(days=30), description="Life of a certificate when none is asked."
    )
    max_ttl: timedelta = Field(
        default=timedelta(days=365), description="Longest certificate life one may ask for."
    )
    server_ttl: timedelta = Field(
        default=timedelta(days=90), description="Life of this process's listener certificates."
    )
    crl_next_update_days: int = Field(
        default=7, ge=1, le=366, description="nextUpdate of the built-in CA's CRL, in days."
    )
    crl_file: str = Field(
        default="", description="CRL served when the CA signs none (CFSSL): a PEM file."
    )
    reload_seconds: float = Field(
        default=30.0, gt=0, description="Revoked serials are read again this often."
    )

    @field_validator("default_ttl", "max_ttl", "server_ttl", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> timedelta:
        try:
            return parse_duration(value)
        except InvalidCertificateRequest as exc:
            raise ValueError(str(exc)) from exc

    @model_validator(mode="after")
    def _default_within_max(self) -> PkiSettings:
        if self.default_ttl > self.max_ttl:
            raise ValueError("SHOPFLOOR_CA_DEFAULT_TTL is longer than SHOPFLOOR_CA_MAX_TTL")
        if self.server_ttl > self.max_ttl:
            raise ValueError(
                "SHOPFLOOR_CA_SERVER_TTL (the listeners' own certificates) is longer than "
                "SHOPFLOOR_CA_MAX_TTL"
            )
        return self


def authority_options(settings: CoreSettings) -> AuthorityOptions:
    section = settings.section(PkiSettings)
    return AuthorityOptions(
        data_dir=settings.data_dir,
        passphrase=section.passphrase.get_secret_value(),
        crl_next_update=timedelta(days=section.crl_next_update_days),
    )


pages.add(
    ConsolePage(
        capability="pki", path=PREFIX + "/certificates", title="certificates.title", order=70
    )
)


class PkiService(Service, name="pki", needs=("database", "bus", "identity"), internal=True):
    """Certificate authority, the certificates API and revocation for mTLS."""

    health = "pki"
    routes = ("shopfloor.pki.routes:router", "shopfloor.pki.console:router")
    commands = {"certs": "shopfloor.pki.commands:certs_app"}
    migrations = MIGRATIONS.versions
    version_table = MIGRATIONS.version_table

    def __init__(self, platform: Platform) -> None:
        super().__init__(platform)
        settings = platform.settings.section(PkiSettings)
        self.settings = settings
        self.authority: CertificateAuthority = create_authority(
            settings.url, options=authority_options(platform.settings)
        )
        self.gate = CertificateGate()
        self._events = platform.get(BusService).events
        identity = platform.get(IdentityService)
        self._auth = identity.auth
        registry = identity.registry
        self.certs = Certificates(
            platform.get(DatabaseService).engine,
            self.authority,
            self.gate,
            max_ttl=settings.max_ttl,
            announce=self._events.emit,
            thing_check=registry.get_thing,
            crl_file=settings.crl_file or None,
        )
        folder = platform.settings.data_dir / "pki"
        self.ca_file: Path = folder / "ca.pem"
        self._servers = ServerIdentities(
            self.certs, folder / "servers", ca_file=self.ca_file, ttl=settings.server_ttl
        )
        self._reload = asyncio.Event()
        #: Things deleted through this process, whose certificates are to be revoked.
        self._retired: asyncio.Queue[str] = asyncio.Queue()
        console_templates(platform, "shopfloor.pki")  # the certificates page's

    async def _start(self, stack: AsyncExitStack) -> None:
        await stack.enter_async_context(self.authority)
        ca_pem = (await self.certs.ca_pem()).encode()
        await asyncio.to_thread(write_atomically, self.ca_file, ca_pem)
        await self.certs.reload_gate()
        # Agents sign in to the API with their certificates (docs/agents.md).
        assertions = AgentAssertions(self.gate, lambda: self.authority.certificate)
        stack.callback(self._auth.accept_issuer(ISSUER_PREFIX, assertions))
        stack.enter_context(self._events.listen(REVOKED_EVENT, self._on_revoked))
        # Revocations elsewhere while this process was cut off from the bus are unknown.
        stack.enter_context(self._events.listen(RECONNECTED, lambda _event: self._reload.set()))
        await self.spawn("pki-reload", self._reload_loop)
        stack.enter_context(self._events.listen("registry.thing_deleted", self._on_thing_deleted))
        await self.spawn("pki-retire", self._retire_loop, cancel_on_stop=True)
        logger.info("certificate authority %s ready", self.authority.scheme)

    @property
    def ready(self) -> bool:
        return self.authority.ready and not self.stopping

    async def server_identity(self, name: str, hostnames: Sequence[str]) -> TlsFiles:
        """The certificate and key of this process's listener `name` (issued if needed)."""
        return await self._servers.identity(name, hostnames)

    def _on_revoked(self, event: Event) -> None:
        try:
            serial = int(str(event.data["serial"]), 16)
            entity = Entity(EntityType(event.data["entity_type"]), str(event.data["entity_id"]))
        except (KeyError, ValueError, InvalidCertificateRequest):
            logger.warning("ignoring a malformed %s event", event.subject)
            return
        self.gate.revoke(serial, entity)

    def _on_thing_deleted(self, event: Event) -> None:
        # Only the process that deleted the thing revokes: every process hears the event.
        if event.origin != self._events.origin:
            return
        for thing_id in event.data.get("thing_ids") or ():
            self._retired.put_nowait(str(thing_id))

    async def _retire_loop(self, stopping: asyncio.Event) -> None:
        """A deleted thing's certificates are revoked (`cessation_of_operation`): a device
        whose thing is gone must not keep a certificate that names it."""
        while not stopping.is_set():
            thing_id = await self._retired.get()
            try:
                entity = Entity(EntityType.THING, thing_id)
            except InvalidCertificateRequest:
                continue  # not an id a certificate can name
            revoked = await self.certs.revoke_entity(entity, "cessation_of_operation")
            if revoked:
                logger.info("revoked %d certificate(s) of deleted thing %s", revoked, thing_id)

    async def _reload_loop(self, stopping: asyncio.Event) -> None:
        while not stopping.is_set():
            await first_set(stopping, self._reload, within=self.settings.reload_seconds)
            if stopping.is_set():
                return
            self._reload.clear()
            await self.certs.reload_gate()
