"""`CertificateGate`: what every place that accepts a client certificate asks.

TLS has already checked the chain to the CA; the gate says whose the certificate is
and whether it may in: not revoked (the platform's own revocation table, whatever
the CA backend), within its validity. It answers from memory, so the hot path of a
TLS handshake never waits on the database; the pki service fills it at start and on
every `pki.certificate_revoked` event, from any process of the deployment.

Places holding live sessions listen with `on_revoked` and close the sessions of the
serial they are told about.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography import x509

from ._errors import CertificateRefused
from ._identity import Entity, entity_of

__all__ = ["Admitted", "CertificateGate", "Revoked"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Admitted:
    """A certificate the gate let in: whose it is, its serial and when it ends."""

    entity: Entity
    serial: int
    not_after: datetime


@dataclass(frozen=True, slots=True)
class Revoked:
    serial: int
    entity: Entity | None


RevokedListener = Callable[[Revoked], None]


class CertificateGate:
    def __init__(self) -> None:
        self._revoked: set[int] = set()
        self._listeners: list[RevokedListener] = []

    def admit(
        self, certificate: x509.Certificate | bytes, *, now: datetime | None = None
    ) -> Admitted:
        """Whose `certificate` (an object or DER bytes) is, or `CertificateRefused`."""
        if isinstance(certificate, bytes):
            certificate = x509.load_der_x509_certificate(certificate)
        now = now or datetime.now(UTC)
        serial = certificate.serial_number
        if serial in self._revoked:
            raise CertificateRefused("the certificate is revoked", code="certificate_revoked")
        if now > certificate.not_valid_after_utc:
            raise CertificateRefused("the certificate has expired", code="certificate_expired")
        if now < certificate.not_valid_before_utc:
            raise CertificateRefused(
                "the certificate is not valid yet", code="certificate_not_yet_valid"
            )
        return Admitted(entity_of(certificate), serial, certificate.not_valid_after_utc)

    def is_revoked(self, serial: int) -> bool:
        return serial in self._revoked

    def revoke(self, serial: int, entity: Entity | None = None) -> None:
        """Refuse `serial` from now on and tell the listeners (idempotent)."""
        if serial in self._revoked:
            return
        self._revoked.add(serial)
        revoked = Revoked(serial, entity)
        for listener in list(self._listeners):
            try:
                listener(revoked)
            except Exception:
                logger.exception("a revocation listener failed for serial %x", serial)

    def load(self, serials: set[int]) -> None:
        """Replace the revoked set (at start, and after the bus reconnects)."""
        added = serials - self._revoked
        self._revoked = set(serials)
        for serial in added:
            for listener in list(self._listeners):
                try:
                    listener(Revoked(serial, None))
                except Exception:
                    logger.exception("a revocation listener failed for serial %x", serial)

    def on_revoked(self, listener: RevokedListener) -> Callable[[], None]:
        """Call `listener` for each newly revoked serial; returns its remover."""
        self._listeners.append(listener)

        def remove() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return remove
