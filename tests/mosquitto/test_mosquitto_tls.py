"""Mosquitto mode with client certificates, on the real Mosquitto 2.0: a thing presents its
certificate and logs in with its id and key; revoking the certificate refuses new
handshakes (the CRL the platform rewrites and signals) and ends the live session
(dynamic security's disableClient). A certificate alone (`use_identity_as_username`)
connects but gets none of the thing's permissions on this Mosquitto: pinned below."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from mosquitto_testkit import (
    BRIDGE_PASSWORD,
    RunningBroker,
    connection,
    free_port,
    make_key,
    make_thing,
    run_mosquitto,
)
from tests.tlskit import Issued, TestCa, run_tool

from shopfloor.adapters.mosquitto import (
    CrlKeeper,
    DynsecClient,
    DynsecSync,
    MosquittoConfig,
    MosquittoTls,
    render_config,
    signal_pid_file,
)
from shopfloor.pki import Entity, EntityType, Revoked

CHANNEL = "chan-1"


@pytest.fixture(params=[False], ids=["key"])
def identity_as_username(request: pytest.FixtureRequest) -> bool:
    return bool(request.param)


def test_the_tls_listener_in_the_config() -> None:
    tls = MosquittoTls(
        port=8883, cafile=Path("/etc/ca.pem"), certfile=Path("/etc/s.pem"),
        keyfile=Path("/etc/s.key"), crlfile=Path("/var/lib/crl.pem"),
    )  # fmt: skip
    config = MosquittoConfig(
        dynsec_plugin=Path("/d.so"), dynsec_config=Path("/d.json"),
        publisher_plugin=Path("/p.so"), tls=tls, pid_file=Path("/run/m.pid"),
    )  # fmt: skip
    text = render_config(config)
    lines = text.splitlines()
    for line in (
        "listener 8883", "cafile /etc/ca.pem", "certfile /etc/s.pem", "keyfile /etc/s.key",
        "require_certificate true", "use_identity_as_username false",
        "crlfile /var/lib/crl.pem", "pid_file /run/m.pid",
    ):  # fmt: skip
        assert line in lines, line


async def _listening(port: int) -> None:
    async with asyncio.timeout(10):
        while True:
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                await asyncio.sleep(0.02)
                continue
            writer.close()
            await writer.wait_closed()
            return


async def _until(condition: Callable[[], bool], what: str) -> None:
    try:
        async with asyncio.timeout(10):
            while not condition():  # noqa: ASYNC110 - a log file has no event to wait on
                await asyncio.sleep(0.05)
    except TimeoutError:
        raise AssertionError(f"never saw {what}") from None


@pytest.fixture
async def tls_broker(
    tmp_path: Path, publisher_plugin: Path, identity_as_username: bool
) -> AsyncIterator[tuple[RunningBroker, TestCa, MosquittoTls, Path]]:
    ca = TestCa(tmp_path / "ca")
    server = ca.server()
    crl = tmp_path / "crl.pem"
    crl.write_text(ca.crl_pem())  # Mosquitto will not start without the file
    tls = MosquittoTls(
        port=free_port(), cafile=ca.ca_file, certfile=server.cert_file,
        keyfile=server.key_file, crlfile=crl, use_identity_as_username=identity_as_username,
    )  # fmt: skip
    pid_file = tmp_path / "mosquitto.pid"
    async with run_mosquitto(
        tmp_path / "broker", publisher_plugin, tls=tls, pid_file=pid_file
    ) as broker:
        await _listening(tls.port)
        yield broker, ca, tls, pid_file


def _tls_args(ca: TestCa, tls: MosquittoTls, issued: Issued) -> list[str]:
    return [
        "-h", "127.0.0.1", "-p", str(tls.port), "--cafile", str(ca.ca_file),
        "--cert", str(issued.cert_file), "--key", str(issued.key_file),
    ]  # fmt: skip


async def test_a_certificate_login_gets_the_things_acls_and_revocation_ends_it(
    tls_broker: tuple[RunningBroker, TestCa, MosquittoTls, Path],
) -> None:
    broker, ca, tls, pid_file = tls_broker
    async with DynsecClient.from_url(broker.admin_url, timeout=5.0) as admin:
        sync = DynsecSync(admin, bridge_password=BRIDGE_PASSWORD)
        await sync.ensure_defaults()
        thing = make_thing()
        key = make_key()
        await sync.thing_created(thing, key, [connection(thing, CHANNEL)])
        issued = ca.issue(thing.id)
        args = [*_tls_args(ca, tls, issued), "-u", thing.id, "-P", key, "-V", "mqttv5"]
        code, output = await run_tool(
            "mosquitto_pub", *args, "-t", f"channels/{CHANNEL}/messages", "-m", "[]",
            "-q", "1", "-d",
        )  # fmt: skip
        assert code == 0 and "RC:16" in output, output  # accepted: no subscribers yet
        code, output = await run_tool(
            "mosquitto_pub", *args, "-t", "channels/other/messages", "-m", "[]", "-q", "1"
        )
        assert "Not authorized" in output, output

        async def crl_pem() -> str:
            return ca.crl_pem()

        keeper = CrlKeeper(
            tls.crlfile or Path(), crl_pem=crl_pem, reload=signal_pid_file(pid_file),
            kick=sync.kick,
        )  # fmt: skip
        async with keeper, _subscriber(args) as subscriber:
            await _until(lambda: "Subscribed" in "".join(subscriber), "the SUBACK")
            ca.revoke(issued.serial)
            keeper.revoked(Revoked(issued.serial, Entity(EntityType.THING, thing.id)))
            await _until(
                lambda: "disconnected by administrative action" in broker.log(),
                "the live session kicked",
            )
            code, output = await run_tool(
                "mosquitto_pub", *args, "-t", f"channels/{CHANNEL}/messages", "-m", "[]"
            )
            assert code != 0, output
            await _until(
                lambda: "certificate verify failed" in broker.log(), "the handshake refused"
            )
            assert not keeper.expires_soon


@contextlib.asynccontextmanager
async def _subscriber(args: list[str]) -> AsyncIterator[list[str]]:
    """A mosquitto_sub on the thing's channel; yields the lines it printed so far."""
    process = await asyncio.create_subprocess_exec(
        "stdbuf", "-oL", "mosquitto_sub", *args, "-t", f"channels/{CHANNEL}/messages",
        "-q", "1", "-d", "-i", "tls-subscriber",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    lines: list[str] = []

    async def read() -> None:
        assert process.stdout is not None
        while line := await process.stdout.readline():
            lines.append(line.decode(errors="replace"))

    reader = asyncio.create_task(read())
    try:
        yield lines
    finally:
        if process.returncode is None:
            process.terminate()
        await process.wait()
        await reader


async def test_the_keeper_warns_of_a_crl_about_to_expire(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from datetime import timedelta

    ca = TestCa(tmp_path / "ca")

    async def crl_pem() -> str:
        return ca.crl_pem(next_update=timedelta(hours=2))

    path = tmp_path / "crl.pem"
    async with CrlKeeper(path, crl_pem=crl_pem, reload=None) as keeper:
        assert keeper.expires_soon
        assert path.read_text().startswith("-----BEGIN X509 CRL-----")
    assert "expires" in caplog.text


@pytest.mark.parametrize("identity_as_username", [True], ids=["certificate only"])
async def test_a_certificate_alone_gets_none_of_the_things_permissions_on_mosquitto_2_0(
    tls_broker: tuple[RunningBroker, TestCa, MosquittoTls, Path],
) -> None:
    """What docs/mtls.md tells operators: with `use_identity_as_username true` the thing
    connects (CN = username, no password), but dynamic security refuses its PUBLISH."""
    broker, ca, tls, _ = tls_broker
    async with DynsecClient.from_url(broker.admin_url, timeout=5.0) as admin:
        sync = DynsecSync(admin, bridge_password=BRIDGE_PASSWORD)
        await sync.ensure_defaults()
        thing = make_thing()
        await sync.thing_created(thing, make_key(), [connection(thing, CHANNEL)])
        args = [*_tls_args(ca, tls, ca.issue(thing.id)), "-V", "mqttv5"]
        _, output = await run_tool(
            "mosquitto_pub", *args, "-t", f"channels/{CHANNEL}/messages", "-m", "[]",
            "-q", "1", "-d",
        )  # fmt: skip
    assert "received CONNACK (0)" in output, output  # connected, as the thing
    assert "RC:135" in output, output  # and not authorised to publish on its channel
    assert f"u'{thing.id}'" in broker.log()
