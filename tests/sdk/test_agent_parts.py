"""The parts of the agent SDK one can check without a server: the proto's wiring and
generation, the SNI parser of the test proxy, the revocation list, the TLS files."""

from __future__ import annotations

import ssl
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from shopfloor.sdk import (
    Agent,
    AgentContext,
    AgentContextError,
    AgentCredentials,
    CertificateRevoked,
    Peers,
    PeerUnknown,
    RevocationList,
    RevocationUnknown,
    StaticCrlSource,
    _protos,
)
from shopfloor.sdk._wire import CALL, FOLLOW, GET_STATE, PING, SERVICE, pb
from tests.tlskit import TestCa

from .agentkit import AgentCa, server_name


def test_the_wiring_is_the_protos() -> None:
    service = pb.DESCRIPTOR.services_by_name["AgentService"]
    assert service.full_name == SERVICE
    streams = {m.name: (f"/{SERVICE}/{m.name}", m.server_streaming) for m in service.methods}
    assert streams == {
        "Ping": (PING, False), "GetState": (GET_STATE, False),
        "Follow": (FOLLOW, True), "Call": (CALL, False),
    }  # fmt: skip
    assert pb.DESCRIPTOR.name == "shopfloor/agent/v1/agent.proto"


def test_the_code_is_generated_where_it_is_missing_and_again_when_stale(tmp_path: Path) -> None:
    folder = tmp_path / "_generated"
    assert _protos.stale(folder)
    _protos.generate(folder)
    assert not _protos.stale(folder)
    assert "class StateChange" in (folder / "agent_pb2.pyi").read_text()
    (folder / "STAMP").write_text("another proto\n")
    assert _protos.stale(folder)
    assert not _protos.stale()  # the package's own, as `make proto` or the first import left it


def client_hello(name: str | None) -> bytes:
    context = ssl.create_default_context()
    if name is None:
        context.check_hostname = False
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context.wrap_bio(incoming, outgoing, server_hostname=name)
    with pytest.raises(ssl.SSLWantReadError):
        tls.do_handshake()
    return outgoing.read()


def test_the_proxy_reads_the_server_name_of_a_client_hello() -> None:
    assert server_name(client_hello("beta.org1.agents")) == "beta.org1.agents"
    assert server_name(client_hello(None)) is None
    with pytest.raises(ValueError, match="not a TLS handshake"):
        server_name(b"GET / HTTP/1.1\r\n\r\n")


async def test_a_crl_not_signed_by_the_agents_ca_is_not_taken(ca: AgentCa, tmp_path: Path) -> None:
    ca.revoke(7)
    source = StaticCrlSource(await ca.crl_pem())
    revocations = RevocationList(source, ca=[ca.authority.certificate])
    with pytest.raises(RevocationUnknown):
        revocations.check(7)
    await revocations.refresh()
    with pytest.raises(CertificateRevoked):
        revocations.check(7)
    revocations.check(8)

    other = TestCa(tmp_path / "other")
    source.set(other.crl_pem())  # lists nothing: it would un-revoke 7
    with pytest.raises(ValueError, match="not signed by the agents' CA"):
        await revocations.refresh()
    with pytest.raises(CertificateRevoked):
        revocations.check(7)


async def test_an_expired_crl_leaves_revocation_unknown(tmp_path: Path) -> None:
    other = TestCa(tmp_path / "ca")
    revocations = RevocationList(
        StaticCrlSource(other.crl_pem(next_update=timedelta(seconds=-30))), ca=[other.certificate]
    )
    await revocations.refresh()
    assert not revocations.ready
    with pytest.raises(RevocationUnknown, match="expired"):
        revocations.check(1)


async def test_replaced_files_are_taken_once_whole(ca: AgentCa) -> None:
    files = await ca.agent("beta")
    credentials = AgentCredentials.from_context(files.context(), check_interval=0)
    first = credentials.material.serial

    cert, _, _ = await ca.sign("beta")
    (files.folder / "cert.pem").write_bytes(cert)  # the key not yet written
    assert credentials.material.serial == first
    assert credentials.generation == 0

    renewed = await ca.renew(files)
    assert credentials.material.serial == renewed
    assert credentials.generation == 1


async def test_an_agent_refuses_a_certificate_of_another_name(ca: AgentCa) -> None:
    files = await ca.agent("beta")
    context = AgentContext(name="gamma", org_id=files.org_id, files_dir=files.folder)
    with pytest.raises(AgentContextError, match=r"cert\.pem names 'beta'"):
        async with Agent(context, crl_source=StaticCrlSource()):
            pass


async def test_an_agent_needs_the_platform_url_to_check_revocation(ca: AgentCa) -> None:
    files = await ca.agent("beta")
    with pytest.raises(AgentContextError, match="platform_url"):
        async with Agent(files.context()):
            pass


def test_peers_by_name_else_the_proxy() -> None:
    peers = Peers.from_config({"peers": {"mill-1": "10.0.0.5:7443"}, "proxy": "edge:443"})
    assert (peers("mill-1"), peers("press-1")) == ("10.0.0.5:7443", "edge:443")
    with pytest.raises(PeerUnknown):
        Peers.from_config({})("mill-1")
    with pytest.raises(ValueError, match=r"config\.peers"):
        Peers.from_config({"peers": ["mill-1"]})


def test_a_package_folder_it_cannot_write_gets_the_code_generated_elsewhere() -> None:
    script = (
        "import importlib.util\n"
        "from pathlib import Path\n"
        f"spec = importlib.util.spec_from_file_location('protos', {_protos.__file__!r})\n"
        "protos = importlib.util.module_from_spec(spec)\n"
        "spec.loader.exec_module(protos)\n"
        "pb = protos.load(Path('/proc/shopfloor-cannot-write-here'))\n"
        "print(pb.__file__, pb.StateChange(sequence=3).sequence)\n"
    )
    # standalone, as `make proto` runs it: the package would have loaded its own code first
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    where, sequence = done.stdout.split()
    assert Path(where).parent.name.startswith("shopfloor-proto-")
    assert sequence == "3"
