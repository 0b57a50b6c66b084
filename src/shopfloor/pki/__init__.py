"""Certificates: a certificate authority (built-in or CFSSL), the certs API, mTLS helpers.

gate = CertificateGate()                    # filled by the pki service
admitted = gate.admit(peer_certificate)     # -> Admitted(entity, serial, not_after)
gate.on_revoked(lambda revoked: close_sessions(revoked.serial))
"""

from ._errors import (
    CaMisconfigured,
    CaUnavailable,
    CertificateNotFound,
    CertificateRefused,
    CrlUnavailable,
    InvalidCertificateRequest,
    PkiError,
)
from ._gate import Admitted, CertificateGate, Revoked
from ._identity import URN_PREFIX, Entity, EntityType, entity_of

__all__ = [
    "URN_PREFIX",
    "Admitted",
    "CaMisconfigured",
    "CaUnavailable",
    "CertificateGate",
    "CertificateNotFound",
    "CertificateRefused",
    "CrlUnavailable",
    "Entity",
    "EntityType",
    "InvalidCertificateRequest",
    "PkiError",
    "Revoked",
    "entity_of",
]
