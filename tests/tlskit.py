"""A throwaway certificate authority for the TLS tests: CA, server and client certificates.

Certificates name their entity as the platform's CA does: SAN URI
`urn:shopfloor:<type>:<id>` and CN = the id. Everything is written as PEM files in a
folder, ready for `ssl`, Mosquitto and the Mosquitto clients.
"""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from ipaddress import IPv4Address
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

_KEY_FORMAT = serialization.PrivateFormat.TraditionalOpenSSL
_CA_USAGE = x509.KeyUsage(
    digital_signature=True, content_commitment=False, key_encipherment=False,
    data_encipherment=False, key_agreement=False, key_cert_sign=True,
    crl_sign=True, encipher_only=False, decipher_only=False,
)  # fmt: skip
_CA_USAGE = x509.KeyUsage(
    digital_signature=True, content_commitment=False, key_encipherment=False,
    data_encipherment=False, key_agreement=False, key_cert_sign=True,
    crl_sign=True, encipher_only=False, decipher_only=False,
)  # fmt: skip


@dataclass(frozen=True)
class Issued:
    cert_file: Path
    key_file: Path
    certificate: x509.Certificate

    @property
    def serial(self) -> int:
        return self.certificate.serial_number

    @property
    def der(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.DER)


class TestCa:
    """A CA in `folder`: `ca.pem`, and a cert/key pair per `issue` or `server` call."""

    __test__ = False  # not a test class, whatever its name

    def __init__(self, folder: Path, *, name: str = "Shopfloor Test CA") -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self._key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.now(UTC)
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        self.certificate = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_CA_USAGE, critical=True)
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(self._key.public_key()), critical=False
            )
            .sign(self._key, hashes.SHA256())
        )
        self.ca_file = folder / "ca.pem"
        self.ca_file.write_bytes(self.certificate.public_bytes(serialization.Encoding.PEM))
        self._revoked: dict[int, datetime] = {}

    def issue(
        self,
        entity_id: str,
        *,
        entity_type: str = "thing",
        valid_from: datetime | None = None,
        valid_until: datetime | None = None,
        uri: str | None = None,
    ) -> Issued:
        """A client certificate naming `urn:shopfloor:<entity_type>:<entity_id>`."""
        now = datetime.now(UTC)
        san = x509.SubjectAlternativeName(
            [x509.UniformResourceIdentifier(uri or f"urn:shopfloor:{entity_type}:{entity_id}")]
        )
        return self._sign(
            f"{entity_type}-{entity_id}",
            entity_id,
            san,
            ExtendedKeyUsageOID.CLIENT_AUTH,
            valid_from or now - timedelta(minutes=5),
            valid_until or now + timedelta(days=1),
        )

    def server(self, hostnames: tuple[str, ...] = ("localhost",)) -> Issued:
        """A server certificate for 127.0.0.1 and `hostnames`."""
        now = datetime.now(UTC)
        names: list[x509.GeneralName] = [x509.DNSName(h) for h in hostnames]
        names.append(x509.IPAddress(IPv4Address("127.0.0.1")))
        return self._sign(
            "server",
            hostnames[0],
            x509.SubjectAlternativeName(names),
            ExtendedKeyUsageOID.SERVER_AUTH,
            now - timedelta(minutes=5),
            now + timedelta(days=1),
        )

    def revoke(self, serial: int) -> None:
        self._revoked[serial] = datetime.now(UTC)

    def crl_pem(self, *, next_update: timedelta = timedelta(days=7)) -> str:
        """A CRL of what `revoke` was given, signed by this CA."""
        now = datetime.now(UTC)
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(self.certificate.subject)
            .last_update(now - timedelta(minutes=1))
            .next_update(now + next_update)
        )
        for serial, when in self._revoked.items():
            builder = builder.add_revoked_certificate(
                x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(when).build()
            )
        crl = builder.sign(self._key, hashes.SHA256())
        return crl.public_bytes(serialization.Encoding.PEM).decode()

    def client_context(self, issued: Issued | None = None) -> ssl.SSLContext:
        """A client-side context trusting this CA, presenting `issued` when given."""
        context = ssl.create_default_context(cafile=str(self.ca_file))
        if issued is not None:
            context.load_cert_chain(issued.cert_file, issued.key_file)
        return context

    def _sign(
        self,
        stem: str,
        common_name: str,
        san: x509.SubjectAlternativeName,
        usage: x509.ObjectIdentifier,
        valid_from: datetime,
        valid_until: datetime,
    ) -> Issued:
        key = ec.generate_private_key(ec.SECP256R1())
        certificate = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
            .issuer_name(self.certificate.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(valid_from)
            .not_valid_after(valid_until)
            .add_extension(san, critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key()),
                critical=False,
            )
            .sign(self._key, hashes.SHA256())
        )
        serial = certificate.serial_number
        cert_file = self.folder / f"{stem}-{serial:x}.pem"
        key_file = self.folder / f"{stem}-{serial:x}.key"
        cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
        key_file.write_bytes(
            key.private_bytes(serialization.Encoding.PEM, _KEY_FORMAT, serialization.NoEncryption())
        )
        key_file.chmod(0o600)
        return Issued(cert_file, key_file, certificate)


async def run_tool(*argv: str) -> tuple[int, str]:
    """Run a device-side tool (`mosquitto_pub`, `openssl`...) to its end, within 20 s:
    its exit status and its output (stdout and stderr together)."""
    process = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    try:
        async with asyncio.timeout(20):
            output, _ = await process.communicate()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode is not None
    return process.returncode, output.decode(errors="replace")
