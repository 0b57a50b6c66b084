"""`BuiltinAuthority`: a root CA of the platform's own, kept in `<data_dir>/pki/builtin/`.

On first start it makes the root (ECDSA P-256, ten years, `CN=Shopfloor CA <id>`):
`ca.key` (mode 0600, encrypted with `SHOPFLOOR_CA_PASSPHRASE` when set) and `ca.crt`.
Processes starting together on one data dir take a file lock, so one makes the root
and the others load it. Signing an ECDSA P-256 certificate takes about 0.1 ms, less
than handing it to a thread would, so it runs in the event loop.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Self

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ._authority import AuthorityOptions, CertificateAuthority, RevokedEntry, SigningRequest
from ._errors import CaMisconfigured
from ._files import exclusive, write_atomically
from ._x509 import client_or_server_extensions, entity_subject, general_names

__all__ = ["BuiltinAuthority"]

CA_LIFE = timedelta(days=3652)
#: Certificates start a little in the past: a device whose clock lags still accepts them.
BACKDATE = timedelta(minutes=5)

CaKey = ec.EllipticCurvePrivateKey


class BuiltinAuthority(CertificateAuthority, scheme="builtin"):
    def __init__(self, folder: Path, *, passphrase: str, crl_next_update: timedelta) -> None:
        super().__init__()
        self.folder = folder
        self.key_file = folder / "ca.key"
        self.cert_file = folder / "ca.crt"
        self._passphrase = passphrase.encode()
        self._crl_next_update = crl_next_update
        self._key: CaKey | None = None

    @classmethod
    def from_url(cls, url: str, *, options: AuthorityOptions) -> Self:
        rest = url.partition("://")[2]
        if rest.strip("/"):
            raise CaMisconfigured("builtin:// takes no host or path: its files are in the data dir")
        return cls(
            options.data_dir / "pki" / "builtin",
            passphrase=options.passphrase,
            crl_next_update=options.crl_next_update,
        )

    async def _open(self) -> x509.Certificate:
        key, certificate = await asyncio.to_thread(self._load_or_create)
        self._key = key
        return certificate

    def _load_or_create(self) -> tuple[CaKey, x509.Certificate]:
        with exclusive(self.folder / ".ca.lock"):
            if not self.cert_file.exists():
                self._create()
            return self._load()

    def _create(self) -> None:
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name(
            [x509.NameAttribute(NameOID.COMMON_NAME, f"Shopfloor CA {os.urandom(4).hex()}")]
        )
        now = datetime.now(UTC)
        ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
        certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - BACKDATE)
            .not_valid_after(now + CA_LIFE)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=False,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(ski, critical=False)
            .sign(key, hashes.SHA256())
        )
        encryption: serialization.KeySerializationEncryption = (
            serialization.BestAvailableEncryption(self._passphrase)
            if self._passphrase
            else serialization.NoEncryption()
        )
        key_pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
        )
        # The key first: a certificate on disk means its key is there too.
        write_atomically(self.key_file, key_pem)
        write_atomically(self.cert_file, certificate.public_bytes(serialization.Encoding.PEM))

    def _load(self) -> tuple[CaKey, x509.Certificate]:
        try:
            certificate = x509.load_pem_x509_certificate(self.cert_file.read_bytes())
            key_pem = self.key_file.read_bytes()
        except (OSError, ValueError) as exc:
            raise CaMisconfigured(f"cannot read the built-in CA in {self.folder}: {exc}") from exc
        try:
            key = serialization.load_pem_private_key(key_pem, self._passphrase or None)
        except TypeError as exc:
            # cryptography: TypeError when a password is missing or given for a plain key
            hint = (
                "the CA key is not encrypted, but SHOPFLOOR_CA_PASSPHRASE is set"
                if self._passphrase
                else "the CA key is encrypted: set SHOPFLOOR_CA_PASSPHRASE"
            )
            raise CaMisconfigured(f"{hint} ({self.key_file})") from exc
        except ValueError as exc:
            raise CaMisconfigured(
                f"cannot decrypt the CA key {self.key_file}: wrong SHOPFLOOR_CA_PASSPHRASE?"
            ) from exc
        if not isinstance(key, ec.EllipticCurvePrivateKey) or (
            key.public_key() != certificate.public_key()
        ):
            raise CaMisconfigured(f"{self.key_file} is not the key of {self.cert_file}")
        return key, certificate

    async def sign(self, request: SigningRequest) -> x509.Certificate:
        if self._key is None:
            raise CaMisconfigured("the built-in CA is not open")
        ca = self.certificate
        now = datetime.now(UTC)
        builder = (
            x509.CertificateBuilder()
            .subject_name(entity_subject(request.entity))
            .issuer_name(ca.subject)
            .public_key(request.csr.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - BACKDATE)
            .not_valid_after(min(now + request.ttl, ca.not_valid_after_utc))
            .add_extension(
                x509.SubjectAlternativeName(general_names(request.entity, request.hostnames)),
                critical=False,
            )
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(request.csr.public_key()),
                critical=False,
            )
            .add_extension(_authority_key_id(ca), critical=False)
        )
        for extension, critical in client_or_server_extensions(request.kind):
            builder = builder.add_extension(extension, critical=critical)
        return builder.sign(self._key, hashes.SHA256())

    async def crl(self, revoked: Sequence[RevokedEntry]) -> str:
        if self._key is None:
            raise CaMisconfigured("the built-in CA is not open")
        ca = self.certificate
        now = datetime.now(UTC)
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(ca.subject)
            .last_update(now)
            .next_update(now + self._crl_next_update)
            .add_extension(_authority_key_id(ca), critical=False)
            # Milliseconds: increasing across restarts and processes, as RFC 5280 asks.
            .add_extension(x509.CRLNumber(int(now.timestamp() * 1000)), critical=False)
        )
        for entry in revoked:
            item = (
                x509.RevokedCertificateBuilder()
                .serial_number(entry.serial)
                .revocation_date(entry.revoked_at)
            )
            if entry.reason is not x509.ReasonFlags.unspecified:  # RFC 5280 5.3.1
                item = item.add_extension(x509.CRLReason(entry.reason), critical=False)
            builder = builder.add_revoked_certificate(item.build())
        crl = builder.sign(self._key, hashes.SHA256())
        return crl.public_bytes(serialization.Encoding.PEM).decode()


def _authority_key_id(ca: x509.Certificate) -> x509.AuthorityKeyIdentifier:
    ski = ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    return x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)
