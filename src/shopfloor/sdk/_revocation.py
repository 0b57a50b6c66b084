"""`RevocationList`: the platform's CRL, as an agent checks its callers against it.

    revocations = RevocationList(HttpCrlSource(platform_url), ca=ca_certificates)
    await revocations.refresh()                # now; `run()` keeps refreshing it
    revocations.check(serial)                  # raises CertificateRevoked / RevocationUnknown

gRPC has no CRL option, so an agent checks the serial of every caller's certificate
itself, against the list the platform publishes at `GET /api/v1/pki/crl.pem` (public:
the list is signed, so where it comes from does not matter, only its signature by the
agents' CA, checked before a list is taken). The list is fetched every `refresh_seconds`
(60) and on demand; a fetch that fails keeps the list held, and is retried sooner.

It fails closed: until a first list has been taken, and once the list held is past its
`nextUpdate` without a newer one, every caller is `RevocationUnknown`. A serial revoked
on the platform is refused by an agent within `refresh_seconds` (docs/sdk.md).

The source is one small interface (`CrlSource`, one method); `StaticCrlSource` is the
in-memory twin for tests.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Protocol

import httpx
from cryptography import x509

from shopfloor.core import Backoff

from ._tls import platform_tls

__all__ = [
    "CRL_PATH",
    "CertificateRevoked",
    "CrlSource",
    "HttpCrlSource",
    "RevocationList",
    "RevocationUnknown",
    "StaticCrlSource",
]

logger = logging.getLogger(__name__)

CRL_PATH = "/api/v1/pki/crl.pem"


class CertificateRevoked(Exception):
    """The serial is on the list."""


class RevocationUnknown(Exception):
    """No list to check against: none fetched yet, or the one held has expired."""


class CrlSource(Protocol):
    async def fetch(self) -> bytes:
        """The CRL, PEM or DER; raises on failure."""
        ...


class StaticCrlSource:
    """A CRL held in memory: `set(pem)` changes what the next fetch returns."""

    def __init__(self, crl: bytes | str | None = None) -> None:
        self._crl = crl.encode() if isinstance(crl, str) else crl
        self.fetches = 0

    def set(self, crl: bytes | str) -> None:
        self._crl = crl.encode() if isinstance(crl, str) else crl

    async def fetch(self) -> bytes:
        self.fetches += 1
        if self._crl is None:
            raise ConnectionError("no CRL set")
        return self._crl


class HttpCrlSource:
    """`GET {platform_url}/api/v1/pki/crl.pem`, trusting the system's CAs and `ca_file`
    (a platform serving HTTPS with a certificate of its own CA)."""

    def __init__(
        self,
        platform_url: str,
        *,
        ca_file: str | os.PathLike[str] | None = None,
        timeout: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.url = platform_url.rstrip("/") + CRL_PATH
        self._client = httpx.AsyncClient(
            timeout=timeout, verify=platform_tls(ca_file), transport=transport
        )

    async def fetch(self) -> bytes:
        answer = await self._client.get(self.url)
        answer.raise_for_status()
        return answer.content

    async def aclose(self) -> None:
        await self._client.aclose()


class RevocationList:
    """The revoked serials of the platform's CA, refreshed in the background by `run()`."""

    def __init__(
        self,
        source: CrlSource,
        *,
        ca: Sequence[x509.Certificate],
        refresh_seconds: float = 60.0,
    ) -> None:
        if refresh_seconds <= 0:
            raise ValueError("refresh_seconds is > 0")
        self.source = source
        self.refresh_seconds = refresh_seconds
        self._ca = tuple(ca)
        self._serials: frozenset[int] | None = None
        self._next_update: datetime | None = None
        self._wake = asyncio.Event()
        self._refreshing: asyncio.Lock | None = None
        #: When the list held was taken (None: never).
        self.updated_at: datetime | None = None

    @property
    def ready(self) -> bool:
        return self._serials is not None and not self._expired()

    def check(self, serial: int) -> None:
        """Return when `serial` is not revoked, else `CertificateRevoked`; without a list
        to check against, `RevocationUnknown`."""
        serials = self._serials
        if serials is None:
            raise RevocationUnknown("no revocation list yet")
        if self._expired():
            raise RevocationUnknown("the revocation list held has expired")
        if serial in serials:
            raise CertificateRevoked(f"certificate {serial:x} is revoked")

    def revoked(self, serial: int) -> bool:
        """Whether `serial` is on the list held (False without one: use `check`)."""
        return self._serials is not None and serial in self._serials

    async def refresh(self) -> None:
        """Fetch the list now and take it; raises when it cannot be had or does not hold
        (the list held stays)."""
        if self._refreshing is None:
            self._refreshing = asyncio.Lock()
        async with self._refreshing:
            crl = _load(await self.source.fetch())
            if not any(_signed_by(crl, ca) for ca in self._ca):
                raise ValueError("the CRL is not signed by the agents' CA")
            serials = frozenset(entry.serial_number for entry in crl)
            if serials != self._serials:
                logger.info("revocation list: %d revoked serials", len(serials))
            self._serials = serials
            self._next_update = crl.next_update_utc
            self.updated_at = datetime.now(UTC)

    def refresh_soon(self) -> None:
        """Ask `run()` for a refresh now, without waiting for it."""
        self._wake.set()

    async def run(self) -> None:
        """Refresh every `refresh_seconds`, or sooner when asked; until cancelled. A failed
        fetch is retried with a capped, randomised backoff under `refresh_seconds`."""
        backoff = Backoff(base=1.0, cap=self.refresh_seconds, min_fraction=0.5)
        failures = 0
        while True:
            try:
                await self.refresh()
            except Exception as exc:
                logger.warning("revocation list not refreshed: %s", exc)
                delay = backoff.delay(failures)
                failures += 1
            else:
                delay, failures = self.refresh_seconds, 0
            self._wake.clear()
            try:
                async with asyncio.timeout(delay):
                    await self._wake.wait()
            except TimeoutError:
                pass

    def _expired(self) -> bool:
        return self._next_update is not None and datetime.now(UTC) > self._next_update


def _load(data: bytes) -> x509.CertificateRevocationList:
    if data.lstrip().startswith(b"-----BEGIN"):
        return x509.load_pem_x509_crl(data)
    return x509.load_der_x509_crl(data)


def _signed_by(crl: x509.CertificateRevocationList, ca: x509.Certificate) -> bool:
    if crl.issuer != ca.subject:
        return False
    try:
        return crl.is_signature_valid(ca.public_key())  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False
