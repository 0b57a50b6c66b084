"""The pki service in running platforms: revocations reach every process, the CA's files
are private, a passphrase protects the key, listener certificates are kept up to date."""

from __future__ import annotations

import asyncio
import stat
import time
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import nats
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from shopfloor.core import Platform
from shopfloor.core.capability import DatabaseService
from shopfloor.pki import (
    AuthorityOptions,
    BuiltinAuthority,
    CaMisconfigured,
    CertificateGate,
    Certificates,
    Entity,
    EntityType,
    create_authority,
)
from shopfloor.pki.capability import PkiService

from .conftest import openssl_verify

AGENT = Entity(EntityType.AGENT, "edge-1")


@pytest.fixture
async def bus_url() -> AsyncIterator[str]:
    name = f"T{uuid.uuid4().hex[:10]}"
    yield f"nats://127.0.0.1:4222?stream={name}&prefix={name.lower()}"
    client = await nats.connect("nats://127.0.0.1:4222")
    try:
        await client.jetstream().delete_stream(name)
    finally:
        await client.close()


async def _until(condition: Callable[[], bool], *, within: float) -> float:
    """Seconds until `condition` held; fails after `within` seconds."""
    start = time.monotonic()
    while not condition():
        assert time.monotonic() - start < within, "the condition did not hold in time"
        await asyncio.sleep(0.01)
    return time.monotonic() - start


async def test_a_revocation_reaches_the_gate_of_another_process_over_the_bus(
    make_settings: Callable[..., Any], bus_url: str, tmp_path: Path
) -> None:
    settings = make_settings(
        services="api", bus_url=bus_url, database_url=f"sqlite:///{tmp_path / 'shared.db'}"
    )
    async with Platform(settings) as first, Platform(settings) as second:
        issuer, follower = first.get(PkiService), second.get(PkiService)
        issued = await issuer.certs.issue(AGENT, ttl=timedelta(hours=1), org_id=None)
        cert = x509.load_pem_x509_certificate(issued.cert_pem.encode())
        assert follower.gate.admit(cert).entity == AGENT
        await issuer.certs.revoke(None, issued.serial, "key_compromise")
        assert issuer.gate.is_revoked(cert.serial_number)  # before revoke returned
        took = await _until(lambda: follower.gate.is_revoked(cert.serial_number), within=2)
        assert took < 1


async def test_a_revocation_without_an_event_is_caught_by_the_periodic_reload(
    make_settings: Callable[..., Any], tmp_path: Path
) -> None:
    settings = make_settings(services="api", ca_reload_seconds=0.2)
    async with Platform(settings) as platform:
        service = platform.get(PkiService)
        issued = await service.certs.issue(AGENT, ttl=timedelta(hours=1), org_id=None)
        # As the CLI does: the table only, no bus, no gate of this process.
        silent = Certificates(
            platform.get(DatabaseService).engine,
            service.authority,
            CertificateGate(),
            max_ttl=timedelta(days=1),
        )
        await silent.revoke(None, issued.serial, "superseded")
        await _until(lambda: service.gate.is_revoked(int(issued.serial, 16)), within=5)


async def test_the_gate_starts_with_what_the_table_holds(
    make_settings: Callable[..., Any],
) -> None:
    settings = make_settings(services="api")
    async with Platform(settings) as platform:
        certs = platform.get(PkiService).certs
        issued = await certs.issue(AGENT, ttl=timedelta(hours=1), org_id=None)
        await certs.revoke(None, issued.serial, "cessation_of_operation")
    async with Platform(settings) as platform:
        assert platform.get(PkiService).gate.is_revoked(int(issued.serial, 16))
        health = await platform.health.report()
        assert health["pki"] is True


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_the_ca_key_is_private_and_encrypted_with_the_passphrase(tmp_path: Path) -> None:
    options = AuthorityOptions(data_dir=tmp_path, passphrase="correct horse")
    async with create_authority("builtin://", options=options) as authority:
        assert isinstance(authority, BuiltinAuthority)
        first = authority.certificate
        key_file = authority.key_file
    assert _mode(key_file) == 0o600
    assert _mode(key_file.parent) == 0o700
    assert b"ENCRYPTED PRIVATE KEY" in key_file.read_bytes()
    basic = first.extensions.get_extension_for_class(x509.BasicConstraints)
    assert basic.critical and basic.value.ca
    usage = first.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.key_cert_sign and usage.crl_sign
    assert first.subject.rfc4514_string().startswith("CN=Shopfloor CA ")

    async with create_authority("builtin://", options=options) as again:
        assert again.certificate == first  # reloaded, not made anew
    for wrong, says in (("battery staple", "wrong SHOPFLOOR_CA_PASSPHRASE"), ("", "encrypted")):
        with pytest.raises(CaMisconfigured, match=says):
            async with create_authority(
                "builtin://", options=AuthorityOptions(data_dir=tmp_path, passphrase=wrong)
            ):
                pass


async def test_processes_starting_together_make_one_root(tmp_path: Path) -> None:
    authorities = [
        create_authority("builtin://", options=AuthorityOptions(data_dir=tmp_path))
        for _ in range(4)
    ]
    opened = await asyncio.gather(*(a.__aenter__() for a in authorities))
    try:
        assert len({a.certificate.fingerprint(hashes.SHA256()) for a in opened}) == 1
    finally:
        for authority in opened:
            await authority.__aexit__(None, None, None)


async def test_listener_certificates_are_kept_and_issued_again_when_they_no_longer_fit(
    make_settings: Callable[..., Any], tmp_path: Path
) -> None:
    async with Platform(make_settings(services="api")) as platform:
        service = platform.get(PkiService)
        files = await service.server_identity("mqtts", ["localhost", "127.0.0.1"])
        assert files.ca_file == service.ca_file
        assert files.ca_file.read_text() == await service.certs.ca_pem()
        assert _mode(files.key_file) == 0o600
        assert _mode(files.cert_file) == _mode(files.ca_file) == 0o600
        chain = files.cert_file.read_text()
        openssl_verify(files.ca_file.read_text(), chain, tmp_path, purpose="sslserver")
        again = await service.server_identity("mqtts", ["127.0.0.1", "localhost"])
        assert again.cert_file.read_text() == chain  # the same names: kept
        other = await service.server_identity("mqtts", ["broker.plant", "127.0.0.1"])
        assert other.cert_file.read_text() != chain
        cert = x509.load_pem_x509_certificate(other.cert_file.read_bytes())
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert san.get_values_for_type(x509.DNSName) == ["broker.plant"]
        records = await service.certs.list(None, entity_id="mqtts")
        assert records.total == 2
