"""Certificates issued per second through `Certificates.issue`, built-in CA and CFSSL.

Both sign CSRs made before the clock starts (ECDSA P-256), one at a time, each recorded
in the platform's SQLite table as the API does. The anchor is bare `cryptography`
signing the same certificate (same key type, same subject and extensions) with the
same CA key type in a loop: what signing alone costs. The built-in figure then shows
the price of the CSR check and the table; CFSSL's adds its HTTP round trip, its own
signing and its certificate database. Every issued certificate is checked against
the CA's key afterwards. A real `cfssl serve` runs on a free loopback port.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import sqlite3
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from bench._scenario import Anchor, BenchContext, Figure, Scenario, ScenarioResult
from bench._servers import free_port
from shopfloor.core import create_engine, migrate
from shopfloor.pki import (
    AuthorityOptions,
    CertificateGate,
    Certificates,
    Entity,
    EntityType,
    create_authority,
)
from shopfloor.pki._tables import MIGRATIONS

__all__ = ["PkiScenario"]

TTL = timedelta(days=30)
#: The cfssl sqlite certificate database (the columns its certdb reads and writes).
CFSSL_SCHEMA = """
CREATE TABLE certificates (serial_number blob NOT NULL, authority_key_identifier blob NOT NULL,
  ca_label blob, status blob NOT NULL, reason int, expiry timestamp, revoked_at timestamp,
  pem blob NOT NULL, PRIMARY KEY(serial_number, authority_key_identifier));
CREATE TABLE ocsp_responses (serial_number blob NOT NULL, authority_key_identifier blob NOT NULL,
  body blob NOT NULL, expiry timestamp, PRIMARY KEY(serial_number, authority_key_identifier));
"""


def _csrs(count: int) -> list[str]:
    builder = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bench")])
    )
    out = []
    for _ in range(count):
        csr = builder.sign(ec.generate_private_key(ec.SECP256R1()), hashes.SHA256())
        out.append(csr.public_bytes(serialization.Encoding.PEM).decode())
    return out


def _bare_rate(template: x509.Certificate, seconds: float) -> float:
    """Certificates per second of bare `cryptography` re-signing `template`'s content."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    public = ec.generate_private_key(ec.SECP256R1()).public_key()
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        now = datetime.now(UTC)
        builder = (
            x509.CertificateBuilder()
            .subject_name(template.subject)
            .issuer_name(template.issuer)
            .public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now)
            .not_valid_after(now + TTL)
        )
        for extension in template.extensions:
            builder = builder.add_extension(extension.value, critical=extension.critical)
        builder.sign(ca_key, hashes.SHA256())
        done += 1
    return done / (time.perf_counter() - start)


async def _issue_rate(
    url: str, data_dir: Path, csrs: list[str]
) -> tuple[float, list[x509.Certificate], x509.Certificate]:
    engine = create_engine(f"sqlite:///{data_dir / 'platform.db'}")
    await migrate(engine, [MIGRATIONS])
    try:
        async with create_authority(url, options=AuthorityOptions(data_dir=data_dir)) as ca:
            certs = Certificates(engine, ca, CertificateGate(), max_ttl=TTL)
            entity = Entity(EntityType.THING, "press-04")
            await certs.issue(entity, ttl=TTL, csr_pem=csrs[0], org_id="org")  # warm up
            start = time.perf_counter()
            issued = [await certs.issue(entity, ttl=TTL, csr_pem=csr, org_id="org") for csr in csrs]
            rate = len(issued) / (time.perf_counter() - start)
            return (
                rate,
                [x509.load_pem_x509_certificate(i.cert_pem.encode()) for i in issued],
                ca.certificate,
            )
    finally:
        await engine.dispose()


def _verified(certificates: list[x509.Certificate], ca: x509.Certificate) -> int:
    good = 0
    for certificate in certificates:
        try:
            certificate.verify_directly_issued_by(ca)
        except (ValueError, TypeError, InvalidSignature):
            continue
        good += 1
    return good


class CfsslServer:
    """`cfssl serve` with a fresh CA and a sqlite certificate database, on a free port."""

    def __init__(self, folder: Path) -> None:
        binary = shutil.which("cfssl")
        if binary is None:
            raise RuntimeError("cfssl is not installed (scripts/ensure-services.sh installs it)")
        folder.mkdir(parents=True, exist_ok=True)
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Bench CFSSL CA")])
        now = datetime.now(UTC)
        cert = (
            x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + TTL)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256())
        )  # fmt: skip
        (folder / "ca.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        (folder / "ca-key.pem").write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.TraditionalOpenSSL,
                serialization.NoEncryption(),
            )
        )
        with sqlite3.connect(folder / "certs.db") as conn:
            conn.executescript(CFSSL_SCHEMA)
        (folder / "db.json").write_text(
            json.dumps({"driver": "sqlite3", "data_source": str(folder / "certs.db")})
        )
        usages = ["digital signature", "client auth"]
        profile = {"expiry": "720h", "usages": usages}
        config = {"signing": {"default": profile, "profiles": {"client": profile}}}
        (folder / "config.json").write_text(json.dumps(config))
        self.port = free_port()
        self._log = (folder / "cfssl.log").open("wb")
        self.process = subprocess.Popen(
            [binary, "serve", "-address", "127.0.0.1", "-port", str(self.port),
             "-ca", str(folder / "ca.pem"), "-ca-key", str(folder / "ca-key.pem"),
             "-config", str(folder / "config.json"), "-db-config", str(folder / "db.json"),
             "-loglevel", "3"],
            stdout=self._log, stderr=self._log,
        )  # fmt: skip
        self.url = f"cfssl+http://127.0.0.1:{self.port}"

    def wait_ready(self, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                info = f"http://127.0.0.1:{self.port}/api/v1/cfssl/info"
                if httpx.post(info, json={}).is_success:
                    return
            except httpx.TransportError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("cfssl serve did not start")
            time.sleep(0.05)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._log.close()


class PkiScenario(Scenario, name="pki"):
    title = "Certificates issued per second"

    def run(self, ctx: BenchContext, result: ScenarioResult) -> None:
        count = ctx.pick(100, 2_000)
        anchor_seconds = ctx.pick(0.5, 5.0)
        csrs = _csrs(count)
        rate, issued, ca = asyncio.run(_issue_rate("builtin://", ctx.work_dir / "builtin", csrs))
        bare = _bare_rate(issued[0], anchor_seconds)
        anchor = Anchor(label="bare `cryptography` signing the same certificate", value=bare)
        result.figures.append(
            Figure(
                key="pki.builtin_issue_rate",
                label="built-in CA, `Certificates.issue` of a CSR (SQLite table)",
                value=rate,
                unit="certificates/s",
                anchor=anchor,
                detail=f"{count} certificates, one at a time",
            )
        )
        result.check(
            "built-in: every issued certificate verifies",
            _verified(issued, ca) == count,
            f"{_verified(issued, ca)} of {count}",
        )

        server = CfsslServer(ctx.work_dir / "cfssl")
        try:
            server.wait_ready()
            cf_rate, cf_issued, cf_ca = asyncio.run(
                _issue_rate(server.url, ctx.work_dir / "cfssl-platform", csrs)
            )
            cf_bare = _bare_rate(cf_issued[0], anchor_seconds)
        finally:
            server.stop()
        result.figures.append(
            Figure(
                key="pki.cfssl_issue_rate",
                label="CFSSL, `Certificates.issue` of a CSR over HTTP (SQLite table)",
                value=cf_rate,
                unit="certificates/s",
                anchor=Anchor(
                    label="bare `cryptography` signing the same certificate", value=cf_bare
                ),
                detail=f"{count} certificates, one at a time; cfssl 2016 with -db-config",
            )
        )
        result.check(
            "cfssl: every issued certificate verifies",
            _verified(cf_issued, cf_ca) == count,
            f"{_verified(cf_issued, cf_ca)} of {count}",
        )
        result.notes.append(
            "Both anchors sign with an ECDSA P-256 CA key, as both CAs here do; the CFSSL "
            "anchor copies CFSSL's own extensions (it adds no SAN URI)."
        )
