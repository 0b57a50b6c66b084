"""What is particular to CFSSL: no CRL of its own, failures answered as `CaUnavailable`."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from shopfloor.core import create_engine, migrate
from shopfloor.pki import (
    AuthorityOptions,
    CaMisconfigured,
    CaUnavailable,
    CertificateGate,
    Certificates,
    CrlUnavailable,
    create_authority,
)
from shopfloor.pki._tables import MIGRATIONS
from tests.serving import free_port

from .conftest import Cfssl


async def test_a_cfssl_ca_serves_the_operators_crl_or_none(cfssl: Cfssl, tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'platform.db'}")
    await migrate(engine, [MIGRATIONS])
    options = AuthorityOptions(data_dir=tmp_path)
    try:
        async with create_authority(cfssl.url, options=options) as authority:
            assert authority.certificate.subject.rfc4514_string() == "CN=Test CFSSL CA"
            plain = Certificates(engine, authority, CertificateGate(), max_ttl=timedelta(days=1))
            with pytest.raises(CrlUnavailable) as missing:
                await plain.crl_pem()
            assert missing.value.code == "crl_unavailable"
            crl_file = tmp_path / "operator-crl.pem"
            crl_file.write_text("-----BEGIN X509 CRL-----\n...\n-----END X509 CRL-----\n")
            served = Certificates(
                engine, authority, CertificateGate(), max_ttl=timedelta(days=1),
                crl_file=str(crl_file),
            )  # fmt: skip
            assert await served.crl_pem() == crl_file.read_text()
    finally:
        await engine.dispose()


async def test_a_cfssl_that_does_not_answer_is_unavailable(tmp_path: Path) -> None:
    url = f"cfssl+http://127.0.0.1:{free_port()}"
    with pytest.raises(CaUnavailable) as down:
        async with create_authority(url, options=AuthorityOptions(data_dir=tmp_path)):
            pass
    assert down.value.retry_after is not None


@pytest.mark.parametrize(
    "url", ["cfssl+ftp://host:8888", "cfssl+http://host:8888?profile=x", "vault://host", "x"]
)
def test_urls_no_backend_understands_are_misconfigured(url: str, tmp_path: Path) -> None:
    with pytest.raises(CaMisconfigured):
        create_authority(url, options=AuthorityOptions(data_dir=tmp_path))
