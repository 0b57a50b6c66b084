"""Certificate failures (a subtree of `shopfloor.core`'s error tree).

PkiError                    every failure of the certificate authority
├── InvalidCertificateRequest   a bad CSR, entity, TTL or serial (invalid)
├── CertificateNotFound         no such serial (in this organisation)
├── CertificateAlreadyRevoked   revoking a certificate a second time (conflict)
├── CertificateRefused          a presented certificate may not in (unauthenticated):
│                               `code` is certificate_revoked, certificate_expired,
│                               certificate_not_yet_valid or certificate_unknown_entity
├── CrlUnavailable              no CRL to serve: a CFSSL CA with no operator CRL
├── CaMisconfigured             SHOPFLOOR_CA_URL or the CA files are wrong (at start)
└── CaUnavailable               the external CA is down or answered an error (retry)
"""

from __future__ import annotations

from shopfloor.core import ErrorKind, ShopfloorError

__all__ = [
    "CaMisconfigured",
    "CaUnavailable",
    "CertificateAlreadyRevoked",
    "CertificateNotFound",
    "CertificateRefused",
    "CrlUnavailable",
    "InvalidCertificateRequest",
    "PkiError",
]


class PkiError(ShopfloorError):
    code = "pki_error"
    kind = ErrorKind.UNAVAILABLE


class InvalidCertificateRequest(PkiError):
    code = "invalid_certificate_request"
    kind = ErrorKind.INVALID


class CertificateNotFound(PkiError):
    code = "certificate_not_found"
    kind = ErrorKind.NOT_FOUND


class CertificateAlreadyRevoked(PkiError):
    code = "certificate_already_revoked"
    kind = ErrorKind.CONFLICT


class CertificateRefused(PkiError):
    code = "certificate_refused"
    kind = ErrorKind.UNAUTHENTICATED


class CrlUnavailable(PkiError):
    code = "crl_unavailable"
    kind = ErrorKind.NOT_FOUND


class CaMisconfigured(PkiError):
    code = "ca_misconfigured"
    kind = ErrorKind.INVALID


class CaUnavailable(PkiError):
    code = "ca_unavailable"
    kind = ErrorKind.UNAVAILABLE
