"""One contract for every certificate authority: the built-in CA and a real CFSSL.

Certificates are issued through `Certificates` (the platform's table on SQLite) and
checked with `openssl verify` against the CA the backend reports.
"""

from __future__ import annotations

import ipaddress
import subprocess
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from shopfloor.core import create_engine, migrate
from shopfloor.pki import (
    CertificateAlreadyRevoked,
    CertificateAuthority,
    CertificateGate,
    CertificateRefused,
    Certificates,
    CfsslAuthority,
    Entity,
    EntityType,
    InvalidCertificateRequest,
    entity_of,
)
from shopfloor.pki._tables import MIGRATIONS

from .conftest import CFSSL_EXPIRY, Cfssl, openssl_verify

THING = Entity(EntityType.THING, "press-04")


@pytest.fixture
async def certs(authority: CertificateAuthority, tmp_path: Path) -> AsyncIterator[Certificates]:
    engine = create_engine(f"sqlite:///{tmp_path / 'platform.db'}")
    await migrate(engine, [MIGRATIONS])
    try:
        yield Certificates(engine, authority, CertificateGate(), max_ttl=timedelta(days=400))
    finally:
        await engine.dispose()


def _load(pem: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate(pem.encode())


def _names(cert: x509.Certificate, kind: type[x509.GeneralName]) -> list[object]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return list(san.get_values_for_type(kind))  # type: ignore[arg-type]


def _openssl_crl_text(crl_file: Path) -> str:
    done = subprocess.run(
        ["openssl", "crl", "-in", str(crl_file), "-noout", "-text"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return done.stdout


def _csr(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey) -> str:
    algorithm = None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "someone-else")]))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("evil.example")]), critical=False)
        .sign(key, algorithm)
    )
    return csr.public_bytes(serialization.Encoding.PEM).decode()


async def test_an_issued_certificate_names_its_entity_and_verifies(
    certs: Certificates, tmp_path: Path
) -> None:
    issued = await certs.issue(THING, ttl=timedelta(days=7), org_id="org-1")
    cert = _load(issued.cert_pem)
    openssl_verify(issued.ca_pem, issued.cert_pem, tmp_path)
    assert issued.serial == format(cert.serial_number, "x")
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == THING.id
    assert entity_of(cert) == THING
    uris = _names(cert, x509.UniformResourceIdentifier)
    # The CFSSL build of 2016 copies no URI into a certificate: the subject names the type.
    assert uris == (["urn:shopfloor:thing:press-04"] if certs.authority.writes_uri else [])
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    # The key made here belongs to the certificate and is handed back once.
    assert issued.key_pem is not None
    key = serialization.load_pem_private_key(issued.key_pem.encode(), None)
    assert key.public_key() == cert.public_key()
    record = await certs.get("org-1", issued.serial)
    assert record.entity == THING and record.cert_pem == issued.cert_pem
    assert "PRIVATE" not in str(record)


async def test_a_csr_gives_its_key_but_not_its_names(certs: Certificates, tmp_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP384R1())
    issued = await certs.issue(THING, ttl=timedelta(days=1), csr_pem=_csr(key), org_id=None)
    cert = _load(issued.cert_pem)
    openssl_verify(issued.ca_pem, issued.cert_pem, tmp_path)
    assert issued.key_pem is None
    assert cert.public_key() == key.public_key()
    assert entity_of(cert) == THING
    assert "someone-else" not in cert.subject.rfc4514_string()
    assert _names(cert, x509.DNSName) == []


async def test_the_life_is_the_one_asked_where_the_backend_allows(certs: Certificates) -> None:
    asked = timedelta(hours=5)
    before = datetime.now(UTC)
    issued = await certs.issue(THING, ttl=asked, org_id=None)
    cert = _load(issued.cert_pem)
    assert issued.expires_at == cert.not_valid_after_utc
    expected = asked if certs.authority.honours_ttl else CFSSL_EXPIRY
    # CFSSL starts validity 5 minutes back (its backdate) and rounds to the minute.
    assert before + expected - timedelta(minutes=7) <= issued.expires_at
    assert issued.expires_at <= datetime.now(UTC) + expected
    with pytest.raises(InvalidCertificateRequest) as refused:
        await certs.issue(THING, ttl=timedelta(days=401), org_id=None)
    assert refused.value.code == "ttl_too_long"


async def test_a_listener_certificate_serves_and_names_its_hosts(
    certs: Certificates, tmp_path: Path
) -> None:
    service = Entity(EntityType.SERVICE, "mqtts")
    issued = await certs.issue(
        service, ttl=timedelta(days=1), org_id=None, hostnames=("localhost", "127.0.0.1")
    )
    cert = _load(issued.cert_pem)
    openssl_verify(issued.ca_pem, issued.cert_pem, tmp_path, purpose="sslserver")
    openssl_verify(issued.ca_pem, issued.cert_pem, tmp_path, purpose="sslclient")
    assert _names(cert, x509.DNSName) == ["localhost"]
    assert _names(cert, x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert set(eku) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
    assert entity_of(cert) == service


async def test_a_revoked_certificate_is_refused_at_once_and_only_once(
    certs: Certificates, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    issued = await certs.issue(THING, ttl=timedelta(days=1), org_id="org-1")
    cert = _load(issued.cert_pem)
    assert certs.gate.admit(cert).entity == THING
    record = await certs.revoke("org-1", issued.serial, "key_compromise")
    assert record.revoked_at is not None and record.revocation_reason == "key_compromise"
    with pytest.raises(CertificateRefused) as refused:
        certs.gate.admit(cert)
    assert refused.value.code == "certificate_revoked"
    with pytest.raises(CertificateAlreadyRevoked):
        await certs.revoke("org-1", issued.serial, "superseded")
    assert await certs.revoked_serials() == {cert.serial_number}
    if isinstance(certs.authority, CfsslAuthority):
        server: Cfssl = request.getfixturevalue("cfssl")
        assert server.status(cert.serial_number) == ("revoked", 1)  # keyCompromise
    else:
        crl_file = tmp_path / "crl.pem"
        crl_file.write_text(await certs.crl_pem())
        text = _openssl_crl_text(crl_file)
        assert issued.serial.upper().zfill(len(issued.serial) + len(issued.serial) % 2) in (
            text.replace(":", "").upper()
        )
        assert "Key Compromise" in text


async def test_another_organisation_sees_nothing(certs: Certificates) -> None:
    issued = await certs.issue(THING, ttl=timedelta(days=1), org_id="org-1")
    assert (await certs.list("org-2")).total == 0
    assert (await certs.list("org-1", entity_id=THING.id)).total == 1
    with pytest.raises(Exception) as missing:
        await certs.get("org-2", issued.serial)
    assert getattr(missing.value, "code", None) == "certificate_not_found"


@pytest.mark.parametrize(
    ("csr", "code"),
    [
        ("not a csr", "invalid_csr"),
        (_csr(ed25519.Ed25519PrivateKey.generate()), "unsupported_key_type"),
        (_csr(rsa.generate_private_key(65537, 1024)), "unsupported_key_type"),  # noqa: S505
    ],
)  # fmt: skip
async def test_a_bad_csr_is_refused_with_its_reason(
    certs: Certificates, csr: str, code: str
) -> None:
    with pytest.raises(InvalidCertificateRequest) as refused:
        await certs.issue(THING, ttl=timedelta(days=1), csr_pem=csr, org_id=None)
    assert refused.value.code == code
