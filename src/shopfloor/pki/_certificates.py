"""`Certificates`: issuing, listing, revoking and renewing, recorded in the platform database.

The `certificates` table is the record whatever the backend: what was issued to whom,
and what is revoked. A generated private key is handed back once and never stored.
Revoking writes the table, refuses the serial in this process's gate before it
returns, then tells the backend (CFSSL keeps its own records) and the other processes
(`pki.certificate_revoked`).
"""

from __future__ import annotations

import asyncio
import builtins
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal, get_args

import sqlalchemy as sa
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ._authority import CertificateAuthority, RevokedEntry, SigningRequest
from ._errors import (
    CaUnavailable,
    CertificateAlreadyRevoked,
    CertificateNotFound,
    CrlUnavailable,
    InvalidCertificateRequest,
)
from ._gate import CertificateGate
from ._identity import Entity, EntityType, entity_of
from ._tables import certificates
from ._x509 import (
    REVOCATION_REASONS,
    CertificateKind,
    new_key_and_request,
    parse_request,
    revocation_reason,
    serial_hex,
)

__all__ = [
    "CERTIFICATE_SORTS",
    "REVOKED_EVENT",
    "CertificateRecord",
    "CertificateSort",
    "Certificates",
    "IssuedCertificate",
    "Page",
    "parse_serial",
]

logger = logging.getLogger(__name__)

#: Platform event of a revocation: `{serial, entity_type, entity_id}`.
REVOKED_EVENT = "pki.certificate_revoked"
MAX_SERIAL_HEX = 40

#: Checks that a thing exists in an organisation (raises the registry's not-found).
ThingCheck = Callable[[str, str], Awaitable[object]]
#: Tells the other processes: `emit(subject, data)`.
Announce = Callable[[str, dict[str, Any]], object]


#: Orders of a page of certificates.
CertificateSort = Literal[
    "-issued_at", "issued_at", "expires_at", "-expires_at", "entity_id", "-entity_id"
]
CERTIFICATE_SORTS: tuple[CertificateSort, ...] = get_args(CertificateSort)


@dataclass(frozen=True, slots=True)
class IssuedCertificate:
    """A new certificate; `key_pem` only when the platform made the key (shown once)."""

    serial: str
    cert_pem: str
    key_pem: str | None
    ca_pem: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class CertificateRecord:
    """What the table holds of one certificate (no private material)."""

    serial: str
    entity: Entity
    org_id: str | None
    issued_at: datetime
    expires_at: datetime
    backend: str
    cert_pem: str
    revoked_at: datetime | None
    revocation_reason: str | None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None


@dataclass(frozen=True, slots=True)
class Page:
    total: int
    offset: int
    limit: int
    items: list[CertificateRecord]


def parse_serial(serial: str) -> int:
    """A serial as the API spells it (hex, any case, optional `:` separators)."""
    text = serial.replace(":", "").lower()
    if not text or len(text) > MAX_SERIAL_HEX or text.strip("0123456789abcdef"):
        raise CertificateNotFound(f"no certificate {serial[:64]!r}")
    return int(text, 16)


def _utc(value: datetime) -> datetime:
    """SQLite hands timestamps back naive; they were written in UTC."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


class Certificates:
    """The certificates of a platform: `org_id=None` is the platform's own scope (the CLI,
    service certificates): it sees every organisation's certificates."""

    def __init__(
        self,
        engine: AsyncEngine,
        authority: CertificateAuthority,
        gate: CertificateGate,
        *,
        max_ttl: timedelta,
        announce: Announce | None = None,
        thing_check: ThingCheck | None = None,
        crl_file: str | None = None,
    ) -> None:
        self._engine = engine
        self.authority = authority
        self.gate = gate
        self.max_ttl = max_ttl
        self._announce = announce
        self._thing_check = thing_check
        self._crl_file = crl_file

    async def ca_pem(self) -> str:
        return self.authority.certificate.public_bytes(serialization.Encoding.PEM).decode()

    async def issue(
        self,
        entity: Entity,
        *,
        ttl: timedelta,
        csr_pem: str | None = None,
        org_id: str | None,
        hostnames: Sequence[str] = (),
        conn: AsyncConnection | None = None,
    ) -> IssuedCertificate:
        """Sign a certificate for `entity`: of `csr_pem`'s key, or of a key made here.

        `hostnames` (DNS names, IP addresses) make a listener certificate of a service
        or an agent (serverAuth and clientAuth); others are client certificates.
        A `thing` must exist in `org_id` (the registry's `thing_not_found` otherwise).

        Given `conn`, the record is written in the caller's transaction, which made the
        entity (provisioning); if that transaction rolls back, the caller calls
        `withdraw(serial)` so that a CA keeping its own records revokes it too.
        """
        self._check_ttl(ttl)
        if hostnames and entity.type is EntityType.THING:
            raise InvalidCertificateRequest(
                "only service and agent certificates carry host names",
                code="invalid_entity_type",
            )
        # In the caller's transaction the thing is the caller's own, not yet committed.
        thing_check = self._thing_check if conn is None else None
        if entity.type is EntityType.THING and org_id is not None and thing_check:
            await thing_check(org_id, entity.id)
        key_pem: str | None = None
        if csr_pem is None:
            made = new_key_and_request(entity)
            key_pem, csr = made.key_pem, made.csr
        else:
            csr = parse_request(csr_pem)
        kind = CertificateKind.SERVER if hostnames else CertificateKind.CLIENT
        certificate = await self.authority.sign(
            SigningRequest(csr, entity, ttl, kind=kind, hostnames=tuple(hostnames))
        )
        if entity_of(certificate) != entity:
            raise CaUnavailable(f"the CA signed a certificate that does not name {entity.uri}")
        cert_pem = certificate.public_bytes(serialization.Encoding.PEM).decode()
        serial = serial_hex(certificate.serial_number)
        try:
            async with _within(self._engine, conn) as writing:
                await writing.execute(
                    certificates.insert().values(
                        serial=serial,
                        entity_type=entity.type.value,
                        entity_id=entity.id,
                        org_id=org_id,
                        issued_at=datetime.now(UTC),
                        expires_at=certificate.not_valid_after_utc,
                        backend=self.authority.scheme,
                        cert_pem=cert_pem,
                    )
                )
        except BaseException:
            # Signed but not recorded: nobody will be given it; a CA with its own
            # records revokes it again.
            await self.withdraw_quietly(serial)
            raise
        logger.info("issued certificate %s to %s", serial, entity.uri)
        return IssuedCertificate(
            serial, cert_pem, key_pem, await self.ca_pem(), certificate.not_valid_after_utc
        )

    async def withdraw(self, serial: str) -> None:
        """The transaction that recorded `serial` rolled back: nobody was given it, and no
        record of it is left. A CA that keeps records of its own (CFSSL) revokes it."""
        await self.authority.revoke(int(serial, 16), x509.ReasonFlags.cessation_of_operation)
        logger.info("withdrew certificate %s, never handed out", serial)

    async def withdraw_quietly(self, serial: str) -> None:
        """`withdraw`, logging instead of raising when the CA refuses: the caller is
        already failing, and an operator must revoke the serial at the CA by hand."""
        try:
            await self.withdraw(serial)
        except Exception:
            logger.exception(
                "certificate %s was signed but not recorded, and withdrawing it at the CA "
                "failed: revoke it there", serial,
            )  # fmt: skip

    async def list(
        self,
        org_id: str | None,
        *,
        entity_id: str | None = None,
        offset: int = 0,
        limit: int = 100,
        sort: CertificateSort = "-issued_at",
        in_force_at: datetime | None = None,
    ) -> Page:
        """The certificates of an organisation, newest first unless `sort` says another
        order (`CERTIFICATE_SORTS`; `-`: descending); with `in_force_at`, only those
        neither revoked nor expired then."""
        if sort not in CERTIFICATE_SORTS:
            raise ValueError(f"sort must be one of {', '.join(CERTIFICATE_SORTS)}")
        where: list[sa.ColumnElement[bool]] = self._scope(org_id)
        if entity_id is not None:
            where.append(certificates.c.entity_id == entity_id)
        if in_force_at is not None:
            where.append(certificates.c.revoked_at.is_(None))
            where.append(certificates.c.expires_at > in_force_at)
        column = certificates.c[sort.removeprefix("-")]
        async with self._engine.connect() as conn:
            total = await conn.scalar(
                sa.select(sa.func.count()).select_from(certificates).where(*where)
            )
            rows = await conn.execute(
                sa.select(certificates)
                .where(*where)
                .order_by(column.desc() if sort.startswith("-") else column, certificates.c.serial)
                .offset(offset)
                .limit(limit)
            )
            items = [_record(row) for row in rows.mappings()]
        return Page(int(total or 0), offset, limit, items)

    async def get(self, org_id: str | None, serial: str) -> CertificateRecord:
        key = serial_hex(parse_serial(serial))
        async with self._engine.connect() as conn:
            row = (
                (
                    await conn.execute(
                        sa.select(certificates).where(
                            certificates.c.serial == key, *self._scope(org_id)
                        )
                    )
                )
                .mappings()
                .first()
            )
        if row is None:
            raise CertificateNotFound(f"no certificate {key}")
        return _record(row)

    async def revoke(
        self, org_id: str | None, serial: str, reason: str = "unspecified"
    ) -> CertificateRecord:
        """Revoke for good: refused by this process's gate before this returns.

        A second revocation is `CertificateAlreadyRevoked` (409).
        """
        flag = revocation_reason(reason)
        record = await self.get(org_id, serial)
        now = datetime.now(UTC)
        async with self._engine.begin() as conn:
            changed = await conn.execute(
                certificates.update()
                .where(certificates.c.serial == record.serial, certificates.c.revoked_at.is_(None))
                .values(revoked_at=now, revocation_reason=reason)
            )
        if changed.rowcount != 1:
            raise CertificateAlreadyRevoked(f"certificate {record.serial} is already revoked")
        number = int(record.serial, 16)
        self.gate.revoke(number, record.entity)
        if self._announce is not None:
            self._announce(
                REVOKED_EVENT,
                {
                    "serial": record.serial,
                    "entity_type": record.entity.type.value,
                    "entity_id": record.entity.id,
                },
            )
        logger.info("revoked certificate %s of %s (%s)", record.serial, record.entity.uri, reason)
        if record.backend == self.authority.scheme:
            try:
                await self.authority.revoke(number, flag)
            except CaUnavailable:
                # The platform's table and every gate refuse it already; the CA's own
                # record (CFSSL's OCSP data) is behind until an operator revokes there.
                logger.warning("the CA did not record the revocation of %s", record.serial)
        return await self.get(org_id, record.serial)

    async def revoke_entity(self, entity: Entity, reason: str) -> int:
        """Revoke every certificate of `entity` still in force; returns how many."""
        now = datetime.now(UTC)
        async with self._engine.connect() as conn:
            serials = list(
                await conn.scalars(
                    sa.select(certificates.c.serial).where(
                        certificates.c.entity_type == entity.type.value,
                        certificates.c.entity_id == entity.id,
                        certificates.c.revoked_at.is_(None),
                        certificates.c.expires_at > now,
                    )
                )
            )
        revoked = 0
        for serial in serials:
            try:
                await self.revoke(None, serial, reason)
            except CertificateAlreadyRevoked:
                continue  # revoked meanwhile by someone else
            revoked += 1
        return revoked

    async def renew(
        self,
        org_id: str | None,
        serial: str,
        *,
        ttl: timedelta,
        csr_pem: str | None = None,
    ) -> IssuedCertificate:
        """A new certificate for the same entity; the old one stays valid until it expires
        unless it is revoked. Without a CSR a new key is made (the old key is not known)."""
        record = await self.get(org_id, serial)
        if record.revoked:
            raise CertificateAlreadyRevoked(
                f"certificate {record.serial} is revoked: issue a new one instead"
            )
        return await self.issue(record.entity, ttl=ttl, csr_pem=csr_pem, org_id=record.org_id)

    async def revoked_serials(self) -> set[int]:
        async with self._engine.connect() as conn:
            rows = await conn.execute(
                sa.select(certificates.c.serial).where(certificates.c.revoked_at.is_not(None))
            )
            return {int(serial, 16) for (serial,) in rows}

    async def reload_gate(self) -> None:
        """Make the gate refuse exactly what the table says is revoked."""
        self.gate.load(await self.revoked_serials())

    async def crl_pem(self) -> str:
        """A CRL of every revoked certificate not yet expired, signed now by the CA; for a
        CA that cannot sign one, the operator's CRL file, else `CrlUnavailable`."""
        now = datetime.now(UTC)
        async with self._engine.connect() as conn:
            rows = await conn.execute(
                sa.select(
                    certificates.c.serial,
                    certificates.c.revoked_at,
                    certificates.c.revocation_reason,
                    certificates.c.expires_at,
                )
                .where(certificates.c.revoked_at.is_not(None))
                .order_by(certificates.c.revoked_at)
            )
            entries = [
                RevokedEntry(
                    int(serial, 16),
                    _utc(revoked_at),
                    REVOCATION_REASONS.get(reason or "", x509.ReasonFlags.unspecified),
                )
                for serial, revoked_at, reason, expires_at in rows
                if _utc(expires_at) > now
            ]
        crl = await self.authority.crl(entries)
        if crl is not None:
            return crl
        if self._crl_file:
            try:
                return await asyncio.to_thread(Path(self._crl_file).read_text, "ascii")
            except (OSError, UnicodeDecodeError) as exc:
                raise CrlUnavailable(f"cannot read the CRL file: {exc}") from exc
        raise CrlUnavailable(
            f"the {self.authority.scheme} CA signs no CRL and SHOPFLOOR_CA_CRL_FILE is not set"
        )

    def _check_ttl(self, ttl: timedelta) -> None:
        if ttl <= timedelta(0):
            raise InvalidCertificateRequest("ttl must be positive", code="invalid_ttl")
        if ttl > self.max_ttl:
            raise InvalidCertificateRequest(
                f"ttl {int(ttl.total_seconds())} s is over the maximum of "
                f"{int(self.max_ttl.total_seconds())} s",
                code="ttl_too_long",
            )

    @staticmethod
    def _scope(org_id: str | None) -> builtins.list[sa.ColumnElement[bool]]:
        return [] if org_id is None else [certificates.c.org_id == org_id]


def _record(row: Any) -> CertificateRecord:
    revoked_at = row["revoked_at"]
    return CertificateRecord(
        serial=row["serial"],
        entity=Entity(EntityType(row["entity_type"]), row["entity_id"]),
        org_id=row["org_id"],
        issued_at=_utc(row["issued_at"]),
        expires_at=_utc(row["expires_at"]),
        backend=row["backend"],
        cert_pem=row["cert_pem"],
        revoked_at=_utc(revoked_at) if revoked_at is not None else None,
        revocation_reason=row["revocation_reason"],
    )


@asynccontextmanager
async def _within(
    engine: AsyncEngine, conn: AsyncConnection | None
) -> AsyncIterator[AsyncConnection]:
    """The caller's connection (its transaction is the caller's), or a transaction of our own."""
    if conn is not None:
        yield conn
        return
    async with engine.begin() as own:
        yield own
