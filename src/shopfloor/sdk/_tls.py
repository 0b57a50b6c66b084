"""An agent's certificate, key and CA, served and presented over gRPC, renewed in place.

    credentials = AgentCredentials.from_context(context)
    server.add_secure_port("0.0.0.0:7443", credentials.server_credentials())
    channel = grpc.aio.secure_channel(address, credentials.channel_credentials(), ...)

The platform renews an agent's certificate by replacing `cert.pem`, `key.pem` and
`ca.pem` and sending SIGHUP (docs/agents.md). The server's credentials are
`grpc.dynamic_ssl_server_credentials`: grpc asks `fetch` on every TLS handshake,
from a thread of its own, whether there is a new certificate, so a renewal reaches
the next connection without a restart; connections already open keep theirs. Clients
build new channels from `channel_credentials()` after a renewal. The files are looked
at again on `reload()` (SIGHUP) and, without one, at most every `check_interval`
seconds when a handshake or a new channel asks; files caught half-written (a key that
is not the certificate's) are taken at the next look, the old ones served meanwhile.
"""

from __future__ import annotations

import logging
import os
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Self, cast

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from shopfloor.pki import CertificateRefused, Entity, EntityType, entity_of

from ._context import AgentContext, AgentContextError

__all__ = [
    "AgentCredentials",
    "AgentIdentity",
    "FlowIdentity",
    "MemoryCredentials",
    "TlsMaterial",
    "agent_dns_name",
    "platform_tls",
]

logger = logging.getLogger(__name__)

FILES = ("cert.pem", "key.pem", "ca.pem")
_SPKI = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def agent_dns_name(org_id: str, name: str) -> str:
    """The DNS name in an agent's certificate, as the platform issues it:
    `<name>.<org_id>.agents` (docs/agents.md, "certifies")."""
    return f"{name}.{org_id.lower()}.agents"


@dataclass(frozen=True, slots=True)
class _Named:
    """An entity of an organisation named `<org_id>/<name>` in its certificate."""

    org_id: str
    name: str

    #: Its entity type, and the relation graph's type of it.
    TYPE: ClassVar[EntityType]

    @classmethod
    def of(cls, certificate: x509.Certificate) -> Self:
        """The entity `certificate` names; `CertificateRefused` for any other."""
        entity = entity_of(certificate)
        org_id, slash, name = entity.id.partition("/")
        if entity.type is not cls.TYPE or not slash:
            kind = cls.TYPE.value
            article = "an" if kind[0] in "aeiou" else "a"
            raise CertificateRefused(
                f"the certificate names {entity.uri}, not {article} {kind}",
                code=f"certificate_not_{kind}",
            )
        return cls(org_id, name)

    @property
    def entity(self) -> Entity:
        return Entity(self.TYPE, f"{self.org_id}/{self.name}")

    @property
    def subject(self) -> str:
        """How the relation graph names it: `agent:<name>`, `flow:<flow_id>`."""
        return f"{self.TYPE.value}:{self.name}"


@dataclass(frozen=True, slots=True)
class AgentIdentity(_Named):
    """An agent of an organisation, as its certificate's SAN URI names it."""

    TYPE: ClassVar[EntityType] = EntityType.AGENT

    @property
    def dns_name(self) -> str:
        return agent_dns_name(self.org_id, self.name)


@dataclass(frozen=True, slots=True)
class FlowIdentity(_Named):
    """A flow of an organisation calling as itself (`urn:shopfloor:flow:<org_id>/<flow_id>`,
    a certificate the flows service makes for it: docs/flows.md). `name` is the flow's id."""

    TYPE: ClassVar[EntityType] = EntityType.FLOW


@dataclass(frozen=True, slots=True, eq=False)
class TlsMaterial:
    """One generation of the three files, checked to belong together."""

    cert_pem: bytes
    key_pem: bytes
    ca_pem: bytes
    certificate: x509.Certificate
    ca: tuple[x509.Certificate, ...]

    @classmethod
    def parse(cls, cert_pem: bytes, key_pem: bytes, ca_pem: bytes) -> TlsMaterial:
        """The material, or ValueError saying what does not hold."""
        certificate = x509.load_pem_x509_certificate(cert_pem)
        key = serialization.load_pem_private_key(key_pem, password=None)
        if key.public_key().public_bytes(*_SPKI) != certificate.public_key().public_bytes(*_SPKI):
            raise ValueError("key.pem is not the key of cert.pem")
        ca = tuple(x509.load_pem_x509_certificates(ca_pem))
        return cls(cert_pem, key_pem, ca_pem, certificate, ca)

    @property
    def serial(self) -> int:
        return self.certificate.serial_number

    @property
    def identity(self) -> AgentIdentity:
        return AgentIdentity.of(self.certificate)

    def server_configuration(self) -> grpc.ServerCertificateConfiguration:
        return grpc.ssl_server_certificate_configuration(
            [(self.key_pem, self.cert_pem)], root_certificates=self.ca_pem
        )


class AgentCredentials:
    """The agent's TLS files, read again when they change."""

    def __init__(
        self, cert_file: Path, key_file: Path, ca_file: Path, *, check_interval: float = 1.0
    ) -> None:
        self.files = (cert_file, key_file, ca_file)
        self.check_interval = check_interval
        self._lock = threading.Lock()  # grpc's handshake thread and the event loop
        self._signature = self._stat()
        try:
            self._material = self._read()
        except (OSError, ValueError) as exc:
            raise AgentContextError(f"cannot use the agent's certificate: {exc}") from exc
        self._checked = time.monotonic()
        self._served = self._material
        #: Counts the certificates taken since start (0: the first).
        self.generation = 0

    @classmethod
    def from_context(
        cls, context: AgentContext, *, check_interval: float = 1.0
    ) -> AgentCredentials:
        """From the files the platform wrote; `AgentContextError` when one is missing."""
        paths = [context.file(name) for name in FILES]
        missing = [name for name, path in zip(FILES, paths, strict=True) if path is None]
        if missing:
            where = context.files_dir or "SHOPFLOOR_AGENT_FILES (unset)"
            raise AgentContextError(f"{where} has no {', '.join(missing)}")
        cert, key, ca = (path for path in paths if path is not None)
        return cls(cert, key, ca, check_interval=check_interval)

    @property
    def material(self) -> TlsMaterial:
        """The current files, looked at again when `check_interval` has passed."""
        with self._lock:
            if time.monotonic() - self._checked >= self.check_interval:
                self._refresh(force=False)
            return self._material

    def channel_generation(self) -> int:
        """The generation of the certificate new channels present, the files looked at
        again when `check_interval` has passed (`ClientCredentials`)."""
        _ = self.material
        return self.generation

    def reload(self) -> bool:
        """Read the files now (on SIGHUP); whether they held a new certificate."""
        with self._lock:
            return self._refresh(force=True)

    def server_credentials(self) -> grpc.ServerCredentials:
        """Mutual TLS that asks every client for a certificate of the agents' CA, and serves
        the current certificate to each new connection."""
        # The stubs say the fetcher returns a configuration; grpc takes None as "no change".
        fetch = cast(Callable[[], grpc.ServerCertificateConfiguration], self._fetch)
        return grpc.dynamic_ssl_server_credentials(
            self.material.server_configuration(), fetch, require_client_authentication=True
        )

    def channel_credentials(self) -> grpc.ChannelCredentials:
        """This agent's certificate for a new channel, trusting the agents' CA only."""
        material = self.material
        return grpc.ssl_channel_credentials(
            root_certificates=material.ca_pem,
            private_key=material.key_pem,
            certificate_chain=material.cert_pem,
        )

    def _fetch(self) -> grpc.ServerCertificateConfiguration | None:
        # grpc's thread, every handshake: None keeps what is served; an exception would
        # only be logged by grpc, so none leaves here.
        try:
            material = self.material
            with self._lock:
                if material is self._served:
                    return None
                self._served = material
            logger.info("serving certificate %x to new connections", material.serial)
            return material.server_configuration()
        except Exception:
            logger.exception("the certificate check of a handshake failed")
            return None

    def _refresh(self, *, force: bool) -> bool:
        self._checked = time.monotonic()
        signature = self._stat()
        if not force and signature == self._signature:
            return False
        try:
            material = self._read()
        except (OSError, ValueError) as exc:
            logger.warning("agent certificate files not taken (%s); keeping serial %x",
                           exc, self._material.serial)  # fmt: skip
            return False
        self._signature = signature
        held = self._material
        if material.cert_pem == held.cert_pem and material.ca_pem == held.ca_pem:
            return False
        if material.identity != held.identity:
            logger.warning("new cert.pem names %s, not %s: not taken",
                           material.identity.entity.uri, held.identity.entity.uri)  # fmt: skip
            return False
        logger.info("certificate %x replaces %x", material.serial, self._material.serial)
        self._material = material
        self.generation += 1
        return True

    def _read(self) -> TlsMaterial:
        cert, key, ca = (path.read_bytes() for path in self.files)
        return TlsMaterial.parse(cert, key, ca)

    def _stat(self) -> tuple[tuple[int, int, int], ...] | None:
        try:
            stats = [os.stat(path) for path in self.files]
        except OSError:
            return None
        return tuple((s.st_mtime_ns, s.st_size, s.st_ino) for s in stats)


class MemoryCredentials:
    """A client certificate, its key and the CA held in memory, never on disk: what a
    caller that is not an agent presents (a flow of the flows service). `replace` takes a
    renewed certificate; channels made after it present the new one."""

    def __init__(self, cert_pem: bytes, key_pem: bytes, ca_pem: bytes) -> None:
        self.material = TlsMaterial.parse(cert_pem, key_pem, ca_pem)
        #: Counts the certificates taken (0: the first).
        self.generation = 0

    def replace(self, cert_pem: bytes, key_pem: bytes, ca_pem: bytes) -> None:
        self.material = TlsMaterial.parse(cert_pem, key_pem, ca_pem)
        self.generation += 1

    @property
    def serial(self) -> int:
        return self.material.serial

    def channel_generation(self) -> int:
        return self.generation

    def channel_credentials(self) -> grpc.ChannelCredentials:
        material = self.material
        return grpc.ssl_channel_credentials(
            root_certificates=material.ca_pem,
            private_key=material.key_pem,
            certificate_chain=material.cert_pem,
        )


def platform_tls(ca_file: str | os.PathLike[str] | None) -> ssl.SSLContext:
    """Trust for the platform's HTTPS: the system's CAs and `ca_file` (the platform's own
    CA, which signs the listener certificates it issues itself)."""
    context = ssl.create_default_context()
    if ca_file is not None:
        context.load_verify_locations(cafile=os.fspath(ca_file))
    return context
