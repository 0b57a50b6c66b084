"""The one interface every certificate authority implements, and the registry of them.

    authority = create_authority("builtin://", options=AuthorityOptions(data_dir=...))
    async with authority:
        certificate = await authority.sign(SigningRequest(csr, entity, ttl=...))

A backend signs what `SigningRequest` describes (the subject, SAN and EKU of
`_x509`); it never sees a private key. The platform's `certificates` table, not the
backend, is the record of what was issued and revoked: `revoke` only tells a backend
that keeps its own records, and `crl` answers None where the backend cannot sign one.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import ClassVar, Self

from cryptography import x509

from shopfloor.core import Backends, Pluggable

from ._errors import CaMisconfigured
from ._identity import Entity
from ._x509 import CertificateKind

__all__ = [
    "AuthorityOptions",
    "CertificateAuthority",
    "RevokedEntry",
    "SigningRequest",
    "create_authority",
]

_BACKENDS: Backends[CertificateAuthority] = Backends(
    "certificate authority", keyword="scheme", error=CaMisconfigured
)


@dataclass(frozen=True, slots=True, kw_only=True)
class AuthorityOptions:
    """What every backend may need beside its URL (read from the settings at the edge)."""

    data_dir: Path
    passphrase: str = ""
    crl_next_update: timedelta = timedelta(days=7)


@dataclass(frozen=True, slots=True)
class SigningRequest:
    """Sign `csr`'s key for `entity`, for `ttl`; `hostnames` only for server certificates."""

    csr: x509.CertificateSigningRequest
    entity: Entity
    ttl: timedelta
    kind: str = CertificateKind.CLIENT
    hostnames: Sequence[str] = field(default=())


@dataclass(frozen=True, slots=True)
class RevokedEntry:
    serial: int
    revoked_at: datetime
    reason: x509.ReasonFlags


class CertificateAuthority(Pluggable, abc.ABC, registry=_BACKENDS):
    """A CA that signs the platform's certificates.

    Backends subclass it with a URL scheme (`class BuiltinAuthority(CertificateAuthority,
    scheme="builtin")`) and implement `from_url`, `_open`, `sign`. Entering loads or
    creates the CA, so `certificate` is known from then on.
    """

    scheme: ClassVar[str]
    #: Whether certificates of this backend carry the SAN URI (else only the subject).
    writes_uri: ClassVar[bool] = True
    #: Whether the validity asked for is the validity signed (else the backend's profile).
    honours_ttl: ClassVar[bool] = True

    def __init__(self) -> None:
        self._certificate: x509.Certificate | None = None

    @classmethod
    @abc.abstractmethod
    def from_url(cls, url: str, *, options: AuthorityOptions) -> Self: ...

    @abc.abstractmethod
    async def _open(self) -> x509.Certificate:
        """Load (or create) the CA; returns its certificate."""

    async def _close(self) -> None:
        return None

    @abc.abstractmethod
    async def sign(self, request: SigningRequest) -> x509.Certificate:
        """The signed certificate, or `InvalidCertificateRequest` / `CaUnavailable`."""

    async def revoke(self, serial: int, reason: x509.ReasonFlags) -> None:
        """Tell a backend that keeps its own records (the platform's table is the record)."""
        return None

    async def crl(self, revoked: Sequence[RevokedEntry]) -> str | None:
        """A CRL of `revoked`, signed now, in PEM; None when this backend cannot sign one."""
        return None

    @property
    def certificate(self) -> x509.Certificate:
        if self._certificate is None:
            raise CaMisconfigured(f"{type(self).__name__} is not open")
        return self._certificate

    @property
    def ready(self) -> bool:
        return self._certificate is not None

    async def __aenter__(self) -> Self:
        self._certificate = await self._open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._certificate = None
        await self._close()


def create_authority(url: str, *, options: AuthorityOptions) -> CertificateAuthority:
    """The authority for `url`: `builtin://` or `cfssl+http://host:8888` (`CaMisconfigured`
    for a URL no backend understands)."""
    return _BACKENDS.for_url(url).from_url(url, options=options)
