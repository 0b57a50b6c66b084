"""Certificates: a certificate authority (built-in or CFSSL), the certs API, mTLS helpers.

pki = platform.get(PkiService)              # shopfloor.pki.capability
issued = await pki.certs.issue(Entity(EntityType.THING, thing_id), ttl=..., org_id=org)
files = await pki.server_identity("mqtts", ["localhost", "127.0.0.1"])   # TlsFiles
gate = pki.gate                             # filled by the pki service
admitted = gate.admit(peer_certificate)     # -> Admitted(entity, serial, not_after)
gate.on_revoked(lambda revoked: close_sessions(revoked.serial))
"""

from ._assertions import AgentAssertions, AssertionKey, mint_assertion
from ._authority import (
    AuthorityOptions,
    CertificateAuthority,
    RevokedEntry,
    SigningRequest,
    create_authority,
)
from ._builtin import BuiltinAuthority
from ._certificates import (
    CERTIFICATE_SORTS,
    REVOKED_EVENT,
    CertificateRecord,
    Certificates,
    CertificateSort,
    IssuedCertificate,
    Page,
)
from ._cfssl import CfsslAuthority
from ._errors import (
    CaMisconfigured,
    CaUnavailable,
    CertificateAlreadyRevoked,
    CertificateNotFound,
    CertificateRefused,
    CrlUnavailable,
    InvalidCertificateRequest,
    PkiError,
)
from ._gate import Admitted, CertificateGate, Revoked
from ._identity import URN_PREFIX, Entity, EntityType, entity_of
from ._servers import TlsFiles
from ._x509 import REVOCATION_REASONS, parse_duration

__all__ = [
    "CERTIFICATE_SORTS",
    "REVOCATION_REASONS",
    "REVOKED_EVENT",
    "URN_PREFIX",
    "Admitted",
    "AgentAssertions",
    "AssertionKey",
    "AuthorityOptions",
    "BuiltinAuthority",
    "CaMisconfigured",
    "CaUnavailable",
    "CertificateAlreadyRevoked",
    "CertificateAuthority",
    "CertificateGate",
    "CertificateNotFound",
    "CertificateRecord",
    "CertificateRefused",
    "CertificateSort",
    "Certificates",
    "CfsslAuthority",
    "CrlUnavailable",
    "Entity",
    "EntityType",
    "InvalidCertificateRequest",
    "IssuedCertificate",
    "Page",
    "PkiError",
    "Revoked",
    "RevokedEntry",
    "SigningRequest",
    "TlsFiles",
    "create_authority",
    "entity_of",
    "mint_assertion",
    "parse_duration",
]
