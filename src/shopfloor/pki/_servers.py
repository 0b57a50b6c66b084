"""Certificates of this process's own TLS listeners, kept in `<data_dir>/pki/servers/`.

`<name>.crt` (the certificate, then the CA) and `<name>.key` (0600) are issued through
the platform's CA as the entity `service:<name>`, and issued again when they are
missing, name other hosts, come from another CA, or are past two thirds of their life.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature

from ._certificates import Certificates
from ._files import held, write_atomically
from ._identity import Entity, EntityType

__all__ = ["ServerIdentities", "TlsFiles"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class TlsFiles:
    """What a TLS listener loads: its certificate chain, its key, the client CA."""

    cert_file: Path
    key_file: Path
    ca_file: Path


class ServerIdentities:
    def __init__(
        self, certificates: Certificates, folder: Path, *, ca_file: Path, ttl: timedelta
    ) -> None:
        self._certificates = certificates
        self.folder = folder
        self.ca_file = ca_file
        self.ttl = ttl
        self._lock = asyncio.Lock()

    async def identity(self, name: str, hostnames: Sequence[str]) -> TlsFiles:
        entity = Entity(EntityType.SERVICE, name)  # validates the name: it is a file name
        files = TlsFiles(self.folder / f"{name}.crt", self.folder / f"{name}.key", self.ca_file)
        async with self._lock:
            current = await asyncio.to_thread(self._current, files.cert_file)
            if self._fits(current, hostnames):
                return files
            # Another process on this data dir may be issuing the same certificate.
            async with held(self.folder / f".{name}.lock"):
                current = await asyncio.to_thread(self._current, files.cert_file)
                if not self._fits(current, hostnames) or not files.key_file.exists():
                    issued = await self._certificates.issue(
                        entity, ttl=self.ttl, org_id=None, hostnames=tuple(hostnames)
                    )
                    assert issued.key_pem is not None  # no CSR given: the key is made here
                    await asyncio.to_thread(
                        _write_pair, files, issued.key_pem, issued.cert_pem + issued.ca_pem
                    )
                    logger.info("issued the listener certificate %s for %s", name, hostnames)
        return files

    def _current(self, cert_file: Path) -> x509.Certificate | None:
        try:
            return x509.load_pem_x509_certificate(cert_file.read_bytes())
        except (OSError, ValueError):
            return None

    def _fits(self, certificate: x509.Certificate | None, hostnames: Sequence[str]) -> bool:
        if certificate is None:
            return False
        ca = self._certificates.authority.certificate
        try:
            certificate.verify_directly_issued_by(ca)
        except (ValueError, TypeError, InvalidSignature):
            return False
        start, end = certificate.not_valid_before_utc, certificate.not_valid_after_utc
        if datetime.now(UTC) > start + (end - start) * 2 / 3:
            return False
        return _names(certificate) == {_normal(host) for host in hostnames}


def _names(certificate: x509.Certificate) -> set[str]:
    try:
        san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return set()
    return set(san.get_values_for_type(x509.DNSName)) | {
        str(ip) for ip in san.get_values_for_type(x509.IPAddress)
    }


def _normal(host: str) -> str:
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return host


def _write_pair(files: TlsFiles, key_pem: str, chain_pem: str) -> None:
    # The key first, so a certificate on disk never names a key that is not there yet.
    write_atomically(files.key_file, key_pem.encode())
    write_atomically(files.cert_file, chain_pem.encode())
