"""Certificate authorities for the tests: the built-in one in a temp dir, and a real
`cfssl serve` on a free port with a sqlite certificate database, so revoke works."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from shopfloor.pki import AuthorityOptions, CertificateAuthority, create_authority
from tests.serving import free_port, stop_process

#: The tables cfssl's certdb reads and writes (its sqlite migration, column for column).
CFSSL_SCHEMA = """
CREATE TABLE certificates (
  serial_number            blob NOT NULL,
  authority_key_identifier blob NOT NULL,
  ca_label                 blob,
  status                   blob NOT NULL,
  reason                   int,
  expiry                   timestamp,
  revoked_at               timestamp,
  pem                      blob NOT NULL,
  PRIMARY KEY(serial_number, authority_key_identifier)
);
CREATE TABLE ocsp_responses (
  serial_number            blob NOT NULL,
  authority_key_identifier blob NOT NULL,
  body                     blob NOT NULL,
  expiry                   timestamp,
  PRIMARY KEY(serial_number, authority_key_identifier)
);
"""
#: The profile life of the test server: the 2016 build signs for this, whatever is asked.
CFSSL_EXPIRY = timedelta(hours=720)
USAGES = ["digital signature", "client auth"]


@dataclass
class Cfssl:
    url: str  # cfssl+http://127.0.0.1:<port>
    ca_file: Path
    database: Path

    def status(self, serial: int) -> tuple[str, int]:
        with sqlite3.connect(self.database) as conn:
            row = conn.execute(
                "SELECT status, reason FROM certificates WHERE serial_number = ?", (str(serial),)
            ).fetchone()
        assert row is not None, f"cfssl has no record of {serial}"
        return str(row[0]), int(row[1])


def _make_ca(folder: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test CFSSL CA")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    ca_file, key_file = folder / "ca.pem", folder / "ca-key.pem"
    ca_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    return ca_file, key_file


@pytest.fixture(scope="session")
def cfssl(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cfssl]:
    binary = shutil.which("cfssl")
    assert binary, "cfssl is not installed (make test installs golang-cfssl)"
    folder = tmp_path_factory.mktemp("cfssl")
    ca_file, key_file = _make_ca(folder)
    database = folder / "certs.db"
    with sqlite3.connect(database) as conn:
        conn.executescript(CFSSL_SCHEMA)
    (folder / "db.json").write_text(json.dumps({"driver": "sqlite3", "data_source": str(database)}))
    expiry = f"{int(CFSSL_EXPIRY.total_seconds() // 3600)}h"
    profiles = {
        "client": {"expiry": expiry, "usages": USAGES},
        "server": {"expiry": expiry, "usages": [*USAGES, "key encipherment", "server auth"]},
    }
    config = {"signing": {"default": {"expiry": expiry, "usages": USAGES}, "profiles": profiles}}
    (folder / "config.json").write_text(json.dumps(config))
    port = free_port()
    log = (folder / "cfssl.log").open("wb")
    process = subprocess.Popen(
        [binary, "serve", "-address", "127.0.0.1", "-port", str(port), "-ca", str(ca_file),
         "-ca-key", str(key_file), "-config", str(folder / "config.json"),
         "-db-config", str(folder / "db.json"), "-loglevel", "2"],
        stdout=log, stderr=log,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx.post(f"http://127.0.0.1:{port}/api/v1/cfssl/info", json={}).is_success:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None, (folder / "cfssl.log").read_text()
            assert time.monotonic() < deadline, (folder / "cfssl.log").read_text()
            time.sleep(0.05)
        yield Cfssl(f"cfssl+http://127.0.0.1:{port}", ca_file, database)
    finally:
        stop_process(process)
        log.close()


@pytest.fixture(params=["builtin", "cfssl"])
def authority_url(request: pytest.FixtureRequest) -> str:
    if request.param == "builtin":
        return "builtin://"
    cfssl: Cfssl = request.getfixturevalue("cfssl")
    return cfssl.url


@pytest.fixture
async def authority(authority_url: str, tmp_path: Path) -> AsyncIterator[CertificateAuthority]:
    options = AuthorityOptions(data_dir=tmp_path / "data")
    async with create_authority(authority_url, options=options) as opened:
        yield opened


def openssl_verify(ca_pem: str, cert_pem: str, folder: Path, *, purpose: str = "sslclient") -> None:
    """`openssl verify` accepts `cert_pem` as issued by `ca_pem` for `purpose`."""
    ca, cert = folder / "verify-ca.pem", folder / "verify-cert.pem"
    ca.write_text(ca_pem)
    cert.write_text(cert_pem)
    done = subprocess.run(
        ["openssl", "verify", "-purpose", purpose, "-CAfile", str(ca), str(cert)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0 and ": OK" in done.stdout, done.stdout + done.stderr
