"""What the TLS edges share: the server context, the peer's certificate, the thing it names.

context = server_tls_context(cert_file, key_file, client_ca=ca_file)
der = peer_certificate(transport)                 # None: no client certificate
certified = await admit_thing(gate, access, der)  # or CertificateRefused

Client certificates are optional (`CERT_OPTIONAL`): a device with a certificate is the
thing it names, a device without one logs in with its key as over plain TCP. TLS checks
the chain to the client CA during the handshake (a certificate the CA did not sign, or
one outside its validity, ends the handshake); the `CertificateGate` then says whose it
is and whether it is revoked, from memory.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from shopfloor.auth import AuthenticatedThing, ThingAccess
from shopfloor.pki import Admitted, CertificateGate, CertificateRefused, EntityType

__all__ = [
    "CertifiedThing",
    "admit_thing",
    "peer_certificate",
    "server_tls_context",
    "tls_extension",
]


class _HasExtraInfo(Protocol):
    def get_extra_info(self, name: str, default: object = None) -> object: ...


@dataclass(frozen=True, slots=True)
class CertifiedThing:
    """A thing admitted by its certificate, and the certificate's serial."""

    thing: AuthenticatedThing
    admitted: Admitted

    @property
    def serial(self) -> int:
        return self.admitted.serial


def server_tls_context(
    cert_file: Path | str, key_file: Path | str, *, client_ca: Path | str | None = None
) -> ssl.SSLContext:
    """A server context: TLS 1.2 or newer, client certificates optional, checked against
    `client_ca` (without one, no client certificate can be verified: key login only)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(str(cert_file), str(key_file))
    if client_ca is not None:
        context.load_verify_locations(cafile=str(client_ca))
    context.verify_mode = ssl.CERT_OPTIONAL
    return context


def peer_certificate(transport: _HasExtraInfo) -> bytes | None:
    """The DER client certificate of a TLS transport; None without TLS or certificate."""
    ssl_object = transport.get_extra_info("ssl_object")
    if not isinstance(ssl_object, ssl.SSLObject | ssl.SSLSocket):
        return None
    return ssl_object.getpeercert(binary_form=True)


def tls_extension(transport: _HasExtraInfo) -> dict[str, Any] | None:
    """The ASGI TLS extension (`scope["extensions"]["tls"]`) of a TLS transport.

    `client_cert_chain` holds the client's own certificate only (PEM): Python's `ssl`
    gives the verified leaf, not the chain the client sent.
    """
    ssl_object = transport.get_extra_info("ssl_object")
    if not isinstance(ssl_object, ssl.SSLObject | ssl.SSLSocket):
        return None
    der = ssl_object.getpeercert(binary_form=True)
    cipher = ssl_object.cipher()
    return {
        "server_cert": None,
        "client_cert_chain": [ssl.DER_cert_to_PEM_cert(der)] if der else [],
        "client_cert_name": None,
        "client_cert_error": None,
        "tls_version": _TLS_VERSIONS.get(ssl_object.version() or ""),
        "cipher_suite": None,
        # Ours: the DER bytes, so that the adapters need not parse PEM again.
        "shopfloor.client_cert_der": der,
        "cipher_name": cipher[0] if cipher else None,
    }


#: ASGI reports the TLS version as the protocol's number.
_TLS_VERSIONS = {"TLSv1.2": 0x0303, "TLSv1.3": 0x0304}


async def admit_thing(
    gate: CertificateGate, access: ThingAccess, certificate: bytes
) -> CertifiedThing:
    """The thing a client certificate names, or `CertificateRefused`.

    Beyond the gate's own codes: `certificate_not_a_thing` (an agent's or a service's
    certificate) and `certificate_unknown_thing` (no such thing in the registry, e.g.
    deleted since the certificate was issued).
    """
    admitted = gate.admit(certificate)
    if admitted.entity.type is not EntityType.THING:
        raise CertificateRefused(
            f"a {admitted.entity.type.value} certificate cannot act as a thing",
            code="certificate_not_a_thing",
        )
    thing = await access.thing(admitted.entity.id)
    if thing is None:
        raise CertificateRefused(
            "the certificate names no thing of the registry", code="certificate_unknown_thing"
        )
    return CertifiedThing(thing, admitted)
