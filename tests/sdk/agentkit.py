"""Agents for the gRPC tests: certificates from the platform's built-in CA, the files the
platform writes, a CRL it would publish, and a TLS proxy that routes on SNI.

`AgentCa` signs with `shopfloor.pki.BuiltinAuthority` what the agents service signs:
SAN URI `urn:shopfloor:agent:<org>/<name>`, DNS `<name>.<org>.agents`, serverAuth and
clientAuth. `SniProxy` reads the ClientHello's server name by hand, never decrypts,
and pipes the connection to the backend named so.
"""

from __future__ import annotations

import asyncio
import json
import struct
from collections.abc import AsyncIterator, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from shopfloor.pki import BuiltinAuthority, Entity, EntityType, RevokedEntry, SigningRequest
from shopfloor.sdk import Agent, AgentContext, Peers, StaticCrlSource, agent_dns_name

ORG = "org1"


@dataclass
class AgentFiles:
    folder: Path
    name: str
    org_id: str
    serial: int

    def context(self) -> AgentContext:
        return AgentContext(
            name=self.name, org_id=self.org_id, files_dir=self.folder,
            config=json.loads((self.folder / "config.json").read_text()),
        )  # fmt: skip


class AgentCa:
    """The platform's built-in CA in `folder`, opened by `open()`."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.authority = BuiltinAuthority(
            folder / "ca", passphrase="", crl_next_update=timedelta(days=1)
        )
        self.revoked: list[RevokedEntry] = []

    @property
    def ca_pem(self) -> bytes:
        return self.authority.certificate.public_bytes(serialization.Encoding.PEM)

    async def sign(
        self, name: str, *, org_id: str = ORG, entity: Entity | None = None
    ) -> tuple[bytes, bytes, x509.Certificate]:
        """A certificate and key (PEM) as the agents service issues them."""
        key = ec.generate_private_key(ec.SECP256R1())
        csr = (
            x509.CertificateSigningRequestBuilder()
            .subject_name(x509.Name([]))
            .sign(key, hashes.SHA256())
        )
        certificate = await self.authority.sign(
            SigningRequest(
                csr, entity or Entity(EntityType.AGENT, f"{org_id}/{name}"), timedelta(days=1),
                kind="server", hostnames=[agent_dns_name(org_id, name)],
            )
        )  # fmt: skip
        key_pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        return certificate.public_bytes(serialization.Encoding.PEM), key_pem, certificate

    async def agent(
        self, name: str, config: Mapping[str, Any] | None = None, *, org_id: str = ORG
    ) -> AgentFiles:
        """The folder the platform writes for agent `name`: config.json and its files."""
        folder = self.folder / f"{org_id}-{name}"
        folder.mkdir(parents=True, exist_ok=True)
        settings = {"grpc_host": "127.0.0.1", "grpc_port": 0, **(config or {})}
        (folder / "config.json").write_text(json.dumps(settings))
        files = AgentFiles(folder, name, org_id, 0)
        await self.renew(files)
        return files

    async def renew(self, files: AgentFiles) -> int:
        """Replace the agent's files with a new certificate, as a renewal does; its serial."""
        cert_pem, key_pem, certificate = await self.sign(files.name, org_id=files.org_id)
        for name, data in (("key.pem", key_pem), ("cert.pem", cert_pem), ("ca.pem", self.ca_pem)):
            partial = files.folder / f".{name}.tmp"
            partial.write_bytes(data)
            partial.replace(files.folder / name)
        files.serial = certificate.serial_number
        return files.serial

    def revoke(self, serial: int) -> None:
        self.revoked.append(
            RevokedEntry(serial, datetime.now(UTC), x509.ReasonFlags.key_compromise)
        )

    async def crl_pem(self) -> str:
        return await self.authority.crl(self.revoked)


@asynccontextmanager
async def agent_ca(folder: Path) -> AsyncIterator[AgentCa]:
    ca = AgentCa(folder)
    async with ca.authority:
        yield ca


# -- agents started together ------------------------------------------------------------

Grant = tuple[str, str, str]


class Relations:
    """A checker over a set of (subject, relation, object), answering asynchronously as
    the relation graph's cache may; it records what it was asked."""

    def __init__(self, *grants: Grant) -> None:
        self.grants = set(grants)
        self.asked: list[Grant] = []

    async def __call__(self, subject: str, relation: str, object: str) -> bool:
        self.asked.append((subject, relation, object))
        return (subject, relation, object) in self.grants


class Fleet:
    """Agents started in one exit stack, each reachable by name through `peers`."""

    def __init__(self, ca: AgentCa, stack: AsyncExitStack) -> None:
        self.ca = ca
        self.stack = stack
        self.addresses: dict[str, str] = {}
        self.files: dict[str, AgentFiles] = {}
        self.crl = StaticCrlSource()

    async def start(
        self, name: str, *, cls: type[Agent] = Agent, org_id: str = ORG, **options: Any
    ) -> Agent:
        config = options.pop("config", None)
        files = self.files[name] = await self.ca.agent(name, config, org_id=org_id)
        self.crl.set(await self.ca.crl_pem())
        options.setdefault("crl_source", self.crl)
        options.setdefault("resolver", Peers(self.addresses))
        agent = cls(files.context(), **options)
        await self.stack.enter_async_context(agent)
        self.addresses[name] = f"127.0.0.1:{agent.port}"
        return agent


# -- a TLS passthrough proxy that routes on SNI ------------------------------------------


def server_name(client_hello: bytes) -> str | None:
    """The SNI host name of a TLS record holding a ClientHello (RFC 8446 4.1.2, RFC 6066
    3); None when it has none. Raises ValueError for what is not a ClientHello."""
    if len(client_hello) < 5 or client_hello[0] != 0x16:
        raise ValueError("not a TLS handshake record")
    body = client_hello[5 : 5 + struct.unpack(">H", client_hello[3:5])[0]]
    if not body or body[0] != 0x01:
        raise ValueError("not a ClientHello")
    at = 4 + 2 + 32  # handshake header, legacy_version, random
    at += 1 + body[at]  # legacy_session_id
    at += 2 + struct.unpack(">H", body[at : at + 2])[0]  # cipher_suites
    at += 1 + body[at]  # legacy_compression_methods
    end = at + 2 + struct.unpack(">H", body[at : at + 2])[0]
    at += 2
    while at + 4 <= end:
        kind, size = struct.unpack(">HH", body[at : at + 4])
        at += 4
        if kind == 0:  # server_name: list length, then (type 0 = host_name, length, name)
            names = body[at : at + size]
            if names[2] == 0:
                length = struct.unpack(">H", names[3:5])[0]
                return names[5 : 5 + length].decode("ascii")
        at += size
    return None


class SniProxy:
    """Routes each TLS connection, by its SNI, to `routes[name]` ("host", port)."""

    def __init__(self, routes: Mapping[str, tuple[str, int]]) -> None:
        self.routes = dict(routes)
        #: The server name of every connection, in order (None: no SNI).
        self.seen: list[str | None] = []
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def address(self) -> str:
        assert self._server is not None
        return f"127.0.0.1:{self._server.sockets[0].getsockname()[1]}"

    async def __aenter__(self) -> SniProxy:
        self._server = await asyncio.start_server(self._connection, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)  # type: ignore[arg-type]
        try:
            head = await reader.readexactly(5)
            record = head + await reader.readexactly(struct.unpack(">H", head[3:5])[0])
            name = server_name(record)
            self.seen.append(name)
            route = self.routes.get(name or "")
            if route is None:
                return
            up_reader, up_writer = await asyncio.open_connection(*route)
            up_writer.write(record)
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        except (asyncio.IncompleteReadError, ConnectionError, ValueError):
            pass
        finally:
            writer.close()
            self._tasks.discard(task)  # type: ignore[arg-type]


async def _pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    try:
        while data := await source.read(65536):
            sink.write(data)
            await sink.drain()
    except ConnectionError:
        pass
    finally:
        sink.close()


# -- the platform's CRL over HTTP --------------------------------------------------------


@asynccontextmanager
async def crl_server(ca: AgentCa) -> AsyncIterator[str]:
    """`GET /api/v1/pki/crl.pem` answering `ca`'s current CRL; yields the base URL."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            ok = head.startswith(b"GET /api/v1/pki/crl.pem ")
            body = (await ca.crl_pem()).encode() if ok else b"not found"
            status = "200 OK" if ok else "404 Not Found"
            writer.write(
                f"HTTP/1.1 {status}\r\nContent-Length: {len(body)}\r\n"
                "Connection: close\r\n\r\n".encode()
                + body
            )
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    finally:
        server.close()
        await server.wait_closed()
