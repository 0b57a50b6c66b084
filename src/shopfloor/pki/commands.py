"""`shopfloor certs ...`: certificates from the command line, on the data dir and database.

The CLI has no bus: a revocation made here reaches running servers with their next
reload of the revoked serials (`SHOPFLOOR_CA_RELOAD_SECONDS`, 30 s by default).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated

import typer

from shopfloor._logging import configure_logging
from shopfloor.console import console, load_settings, out
from shopfloor.core import CoreSettings, ShopfloorError, create_engine, migrate
from shopfloor.core.capability import database_url

from ._authority import create_authority
from ._certificates import Certificates
from ._files import write_atomically
from ._gate import CertificateGate
from ._identity import Entity, EntityType
from ._tables import MIGRATIONS
from ._x509 import REVOCATION_REASONS, parse_duration
from .capability import PkiSettings, authority_options

__all__ = ["certs_app"]

certs_app = typer.Typer(help="Issue, list and revoke certificates.", no_args_is_help=True)


@asynccontextmanager
async def _certificates(settings: CoreSettings) -> AsyncIterator[Certificates]:
    section = settings.section(PkiSettings)
    engine = create_engine(database_url(settings))
    try:
        await migrate(engine, [MIGRATIONS])
        authority = create_authority(section.url, options=authority_options(settings))
        async with authority:
            yield Certificates(
                engine,
                authority,
                CertificateGate(),
                max_ttl=section.max_ttl,
                crl_file=section.crl_file or None,
            )
    finally:
        await engine.dispose()


def _fail(exc: ShopfloorError) -> typer.Exit:
    console.print(f"[red]{exc}[/red] ({exc.code})")
    return typer.Exit(1)


@certs_app.command("issue")
def issue(
    entity_id: Annotated[str, typer.Option(help="Thing id, agent or service name.")],
    out_dir: Annotated[
        Path, typer.Option("--out", help="Folder for cert.pem, key.pem (0600) and ca.pem.")
    ],
    entity_type: Annotated[EntityType, typer.Option(help="thing, agent or service.")] = (
        EntityType.THING
    ),
    ttl: Annotated[str | None, typer.Option(help="Life: seconds or e.g. 720h.")] = None,
    csr: Annotated[
        Path | None, typer.Option(help="PEM CSR to sign (then no key.pem is written).")
    ] = None,
    org: Annotated[str | None, typer.Option(help="Organisation id recorded with it.")] = None,
) -> None:
    """Issue a client certificate and write it, its key and the CA into a folder."""
    settings = load_settings()
    configure_logging(fmt="text", level="WARNING")
    section = settings.section(PkiSettings)
    csr_pem = csr.read_text() if csr is not None else None

    async def work() -> None:
        async with _certificates(settings) as certs:
            issued = await certs.issue(
                Entity(entity_type, entity_id),
                ttl=parse_duration(ttl) if ttl is not None else section.default_ttl,
                csr_pem=csr_pem,
                org_id=org,
            )
        write_atomically(out_dir / "cert.pem", issued.cert_pem.encode(), mode=0o644)
        write_atomically(out_dir / "ca.pem", issued.ca_pem.encode(), mode=0o644)
        if issued.key_pem is not None:
            write_atomically(out_dir / "key.pem", issued.key_pem.encode())
        out.print(
            f"issued {issued.serial} to {entity_type}:{entity_id}, "
            f"expires {issued.expires_at:%Y-%m-%d %H:%M} UTC"
        )

    try:
        asyncio.run(work())
    except ShopfloorError as exc:
        raise _fail(exc) from exc


@certs_app.command("list")
def list_certificates(
    entity_id: Annotated[str | None, typer.Option(help="Only this entity's.")] = None,
    org: Annotated[str | None, typer.Option(help="Only this organisation's.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 100,
) -> None:
    """List certificates, newest first (every organisation's unless --org)."""
    settings = load_settings()
    configure_logging(fmt="text", level="WARNING")

    async def work() -> None:
        async with _certificates(settings) as certs:
            page = await certs.list(org, entity_id=entity_id, limit=limit)
        for record in page.items:
            state = f"revoked {record.revocation_reason}" if record.revoked else "valid"
            out.print(
                f"{record.serial}  {record.entity.type}:{record.entity.id}  "
                f"expires {record.expires_at:%Y-%m-%d %H:%M}  {state}"
            )
        out.print(f"{page.total} certificate(s)")

    try:
        asyncio.run(work())
    except ShopfloorError as exc:
        raise _fail(exc) from exc


@certs_app.command("revoke")
def revoke(
    serial: Annotated[str, typer.Argument(help="Serial in hex.")],
    reason: Annotated[
        str, typer.Option(help=f"One of {', '.join(REVOCATION_REASONS)}.")
    ] = "unspecified",
) -> None:
    """Revoke a certificate (running servers refuse it within SHOPFLOOR_CA_RELOAD_SECONDS)."""
    settings = load_settings()
    configure_logging(fmt="text", level="WARNING")

    async def work() -> None:
        async with _certificates(settings) as certs:
            record = await certs.revoke(None, serial, reason)
        out.print(f"revoked {record.serial} ({reason})")

    try:
        asyncio.run(work())
    except ShopfloorError as exc:
        raise _fail(exc) from exc


@certs_app.command("ca")
def ca(
    crl: Annotated[bool, typer.Option("--crl", help="Print the CRL instead.")] = False,
) -> None:
    """Print the CA certificate (or the CRL) in PEM."""
    settings = load_settings()
    configure_logging(fmt="text", level="WARNING")

    async def work() -> str:
        async with _certificates(settings) as certs:
            return await (certs.crl_pem() if crl else certs.ca_pem())

    try:
        out.print(asyncio.run(work()), end="")
    except ShopfloorError as exc:
        raise _fail(exc) from exc
