"""What a Shopfloor certificate holds, as pure functions over `cryptography` objects.

Every backend signs the same thing: subject `CN=<entity id>, OU=urn:shopfloor:<type>`,
the SAN URI `urn:shopfloor:<type>:<id>` where the backend can write one, EKU clientAuth
(plus serverAuth and DNS/IP names for a service's own listeners). Keys the platform
makes are ECDSA P-256; CSRs may bring P-256/P-384/P-521 or RSA of 2048 bits or more.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ._errors import InvalidCertificateRequest
from ._identity import URN_PREFIX, Entity, EntityType

__all__ = [
    "REVOCATION_REASONS",
    "CertificateKind",
    "KeyAndRequest",
    "client_or_server_extensions",
    "entity_subject",
    "general_names",
    "new_key_and_request",
    "parse_duration",
    "parse_request",
    "revocation_reason",
    "serial_hex",
]

#: RFC 5280 reason names as the API spells them (`removeFromCRL` is for delta CRLs only).
REVOCATION_REASONS: dict[str, x509.ReasonFlags] = {
    "unspecified": x509.ReasonFlags.unspecified,
    "key_compromise": x509.ReasonFlags.key_compromise,
    "ca_compromise": x509.ReasonFlags.ca_compromise,
    "affiliation_changed": x509.ReasonFlags.affiliation_changed,
    "superseded": x509.ReasonFlags.superseded,
    "cessation_of_operation": x509.ReasonFlags.cessation_of_operation,
    "certificate_hold": x509.ReasonFlags.certificate_hold,
    "privilege_withdrawn": x509.ReasonFlags.privilege_withdrawn,
    "aa_compromise": x509.ReasonFlags.aa_compromise,
}

#: Longest CN of RFC 5280 (ub-common-name); longer entity ids cannot be named in one.
MAX_COMMON_NAME = 64
_CURVES = (ec.SECP256R1, ec.SECP384R1, ec.SECP521R1)
MIN_RSA_BITS = 2048
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(h|m|s|d)")
_UNITS = {"d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0}


class CertificateKind:
    CLIENT = "client"
    SERVER = "server"


@dataclass(frozen=True, slots=True)
class KeyAndRequest:
    key_pem: str
    csr: x509.CertificateSigningRequest


def serial_hex(serial: int) -> str:
    return format(serial, "x")


def revocation_reason(name: str) -> x509.ReasonFlags:
    try:
        return REVOCATION_REASONS[name]
    except KeyError:
        raise InvalidCertificateRequest(
            f"reason must be one of {', '.join(REVOCATION_REASONS)}",
            code="invalid_revocation_reason",
        ) from None


def parse_duration(value: int | float | str | timedelta) -> timedelta:
    """Seconds (a number or digits) or Go-style `720h`, `1h30m`, `90s`, `30d`."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool):
        raise InvalidCertificateRequest("ttl must be seconds or a duration", code="invalid_ttl")
    if isinstance(value, int | float):
        return timedelta(seconds=value)
    text = value.strip()
    if text.isdigit():
        return timedelta(seconds=int(text))
    parts = _DURATION_PART.findall(text)
    if not parts or "".join(number + unit for number, unit in parts) != text:
        raise InvalidCertificateRequest(
            f"ttl {value!r} is neither seconds nor a duration like 720h or 30m",
            code="invalid_ttl",
        )
    return timedelta(seconds=sum(float(number) * _UNITS[unit] for number, unit in parts))


def entity_subject(entity: Entity) -> x509.Name:
    """`CN=<id>, OU=urn:shopfloor:<type>`: the subject every backend writes."""
    common_name = entity.id
    if len(entity.id) > MAX_COMMON_NAME:
        if entity.type not in (EntityType.AGENT, EntityType.FLOW):
            raise InvalidCertificateRequest(
                f"entity_id longer than {MAX_COMMON_NAME} characters cannot be a certificate's CN",
                code="invalid_entity_id",
            )
        # `<org_id>/<name>` may pass 64: the SAN URI names the agent (or flow) in full, the
        # CN is shortened with a digest (and `~`, which no id holds, so the CN alone names no
        # agent: a CA that drops SAN URIs, as CFSSL does, gives a certificate nobody admits).
        digest = hashlib.sha256(entity.id.encode()).hexdigest()[:12]
        common_name = f"{entity.id[: MAX_COMMON_NAME - 13]}~{digest}"
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, f"{URN_PREFIX}{entity.type}"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def general_names(entity: Entity | None, hostnames: Sequence[str]) -> list[x509.GeneralName]:
    """The entity's URI (if given), then DNS names, with IP-looking names as IP addresses."""
    names: list[x509.GeneralName] = []
    if entity is not None:
        names.append(x509.UniformResourceIdentifier(entity.uri))
    for host in dict.fromkeys(hostnames):
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return names


def client_or_server_extensions(
    kind: str,
) -> list[tuple[x509.ExtensionType, bool]]:
    """Key usage and EKU of a client certificate, or of a service's listener."""
    server = kind == CertificateKind.SERVER
    usages = [ExtendedKeyUsageOID.CLIENT_AUTH]
    if server:
        usages.insert(0, ExtendedKeyUsageOID.SERVER_AUTH)
    key_usage = x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=server,  # RSA key exchange of older TLS clients
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=False,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )
    return [
        (x509.BasicConstraints(ca=False, path_length=None), True),
        (key_usage, True),
        (x509.ExtendedKeyUsage(usages), False),
    ]


def parse_request(pem: str) -> x509.CertificateSigningRequest:
    """A CSR whose signature holds and whose key the platform signs, or a coded error."""
    try:
        csr = x509.load_pem_x509_csr(pem.encode())
    except ValueError as exc:
        raise InvalidCertificateRequest(
            "csr is not a PEM certificate signing request", code="invalid_csr"
        ) from exc
    try:
        key = csr.public_key()
    except (ValueError, TypeError) as exc:
        raise InvalidCertificateRequest(
            "the csr's public key type is not supported", code="unsupported_key_type"
        ) from exc
    if isinstance(key, ec.EllipticCurvePublicKey):
        if not isinstance(key.curve, _CURVES):
            raise InvalidCertificateRequest(
                f"curve {key.curve.name} is not supported (P-256, P-384, P-521)",
                code="unsupported_key_type",
            )
    elif isinstance(key, rsa.RSAPublicKey):
        if key.key_size < MIN_RSA_BITS:
            raise InvalidCertificateRequest(
                f"RSA keys need at least {MIN_RSA_BITS} bits", code="unsupported_key_type"
            )
    else:
        raise InvalidCertificateRequest(
            "only ECDSA (P-256, P-384, P-521) and RSA keys are supported",
            code="unsupported_key_type",
        )
    if not csr.is_signature_valid:
        raise InvalidCertificateRequest("the csr's signature does not hold", code="invalid_csr")
    return csr


def new_key_and_request(entity: Entity) -> KeyAndRequest:
    """A fresh P-256 key and a CSR for it: what is signed when the caller brings no CSR."""
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(entity_subject(entity))
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return KeyAndRequest(key_pem, csr)
