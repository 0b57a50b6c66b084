"""The embedded broker's TLS listener: things log in with a client certificate (or a key),
revoked certificates are refused, and live sessions end when their certificate is revoked.

Devices are played by Debian's `mosquitto_pub` and `mosquitto_sub`, as a plant would.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiomqtt
import pytest

from shopfloor.adapters.mqtt import BrokerTls
from shopfloor.adapters.tls import server_tls_context
from shopfloor.pki import CertificateGate

from ..tlskit import Issued, TestCa, run_tool
from .conftest import Plant, bus_tap, mqtt_client, next_message, running_plant, wait_until

MOSQUITTO_PUB = "mosquitto_pub"
MOSQUITTO_SUB = "mosquitto_sub"


@dataclass
class TlsPlant:
    plant: Plant
    ca: TestCa
    gate: CertificateGate

    @property
    def port(self) -> int:
        port = self.plant.broker.tls_port
        assert port is not None
        return port

    def thing_cert(self, name: str) -> Issued:
        return self.ca.issue(self.plant.things[name][0])

    def refused(self, reason: str) -> float:
        value = self.plant.metrics.get_sample_value(
            "shopfloor_mqtt_connections_refused_total", {"reason": reason}
        )
        return value or 0.0

    def tls_args(self, issued: Issued | None) -> list[str]:
        args = ["-h", "127.0.0.1", "-p", str(self.port), "--cafile", str(self.ca.ca_file)]
        if issued is not None:
            args += ["--cert", str(issued.cert_file), "--key", str(issued.key_file)]
        return args

    def client(self, issued: Issued | None, **options: object) -> aiomqtt.Client:
        return mqtt_client(
            self.port,
            tls_context=self.ca.client_context(issued),
            **options,  # type: ignore[arg-type]
        )


@pytest.fixture
async def tls_plant(tmp_path: Path) -> AsyncIterator[TlsPlant]:
    ca = TestCa(tmp_path / "ca")
    server = ca.server()
    gate = CertificateGate()
    context = server_tls_context(server.cert_file, server.key_file, client_ca=ca.ca_file)
    tls = BrokerTls(context=context, gate=gate, port=0)
    async with running_plant(tmp_path, tls=tls) as plant:
        yield TlsPlant(plant, ca, gate)


@contextlib.asynccontextmanager
async def mosquitto_sub(tls_plant: TlsPlant, issued: Issued, topic: str) -> AsyncIterator[Sub]:
    # stdbuf: mosquitto_sub buffers its output when it is not a terminal.
    process = await asyncio.create_subprocess_exec(
        "stdbuf", "-oL", MOSQUITTO_SUB, *tls_plant.tls_args(issued),
        "-t", topic, "-q", "1", "-V", "mqttv311", "-i", f"sub-{uuid.uuid4().hex[:8]}", "-d",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    sub = Sub(process)
    try:
        yield sub
    finally:
        if process.returncode is None:
            process.terminate()
            await process.wait()


@dataclass
class Sub:
    """A running mosquitto_sub (with -d: its packet log shows the CONNACK and SUBACK)."""

    process: asyncio.subprocess.Process
    lines: list[str] = field(default_factory=list)

    async def line_with(self, text: str, within: float = 10) -> str:
        assert self.process.stdout is not None
        try:
            async with asyncio.timeout(within):
                while True:
                    line = (await self.process.stdout.readline()).decode(errors="replace")
                    if not line:
                        raise AssertionError(f"mosquitto_sub ended before printing {text!r}")
                    self.lines.append(line)
                    if text in line:
                        return line
        except TimeoutError:
            raise AssertionError(f"no {text!r} from mosquitto_sub in {self.lines}") from None


async def test_a_thing_publishes_with_its_certificate_and_no_key(tls_plant: TlsPlant) -> None:
    plant = tls_plant.plant
    press = tls_plant.thing_cert("press")
    async with bus_tap(plant.bus) as received, plant.client("reader") as reader:
        await reader.subscribe(plant.topic("#"), qos=1)
        code, output = await run_tool(
            MOSQUITTO_PUB, *tls_plant.tls_args(press), "-t", plant.topic("line"),
            "-m", '[{"n": "temp", "v": 21.5}]', "-q", "1",
        )  # fmt: skip
        assert code == 0, output
        envelope = await asyncio.wait_for(received.get(), 10)
        assert envelope.publisher == plant.things["press"][0]
        assert envelope.subtopic == "line"
        message = await next_message(reader)  # a key-login subscriber on plain MQTT sees it
        assert message.payload == b'[{"n": "temp", "v": 21.5}]'


async def test_a_certificate_subscriber_gets_messages_and_is_cut_off_when_revoked(
    tls_plant: TlsPlant,
) -> None:
    plant = tls_plant.plant
    reader = tls_plant.thing_cert("reader")
    async with mosquitto_sub(tls_plant, reader, plant.topic("#")) as sub:
        await sub.line_with("SUBACK")
        async with plant.client("press") as press:
            await press.publish(plant.topic(), b'[{"n": "temp", "v": 1}]', qos=1)
            await sub.line_with('[{"n": "temp", "v": 1}]')
            tls_plant.gate.revoke(reader.serial)
            # The broker hangs up at once; mosquitto_sub's reconnect is refused.
            await sub.line_with("not authorised")
            async with asyncio.timeout(10):
                await sub.process.wait()
            await wait_until(lambda: tls_plant.refused("certificate_revoked") >= 1)


@pytest.mark.parametrize(
    ("problem", "reason"),
    [
        ("revoked", "certificate_revoked"),
        ("agent", "certificate_not_a_thing"),
        ("deleted thing", "certificate_unknown_thing"),
        ("no entity", "certificate_unknown_entity"),
    ],
)
async def test_certificates_that_name_no_admissible_thing_are_refused_at_connect(
    tls_plant: TlsPlant, problem: str, reason: str
) -> None:
    plant = tls_plant.plant
    thing_id = plant.things["press"][0]
    if problem == "agent":
        issued = tls_plant.ca.issue("agent-7", entity_type="agent")
    elif problem == "no entity":
        issued = tls_plant.ca.issue(thing_id, uri="https://example.com/press")
    else:
        issued = tls_plant.ca.issue(thing_id)
    if problem == "revoked":
        tls_plant.gate.revoke(issued.serial)
    if problem == "deleted thing":
        await plant.registry.delete_thing(plant.org, thing_id)
    code, output = await run_tool(
        MOSQUITTO_PUB, *tls_plant.tls_args(issued), "-t", plant.topic(), "-m", "[]", "-q", "1"
    )
    assert code != 0
    assert "not authorised" in output, output
    assert tls_plant.refused(reason) == 1


async def test_a_username_other_than_the_certificates_thing_is_refused(
    tls_plant: TlsPlant,
) -> None:
    plant = tls_plant.plant
    press = tls_plant.thing_cert("press")
    robot_id, robot_key = plant.things["robot"]
    with pytest.raises(aiomqtt.MqttCodeError) as refused:
        async with tls_plant.client(press, username=robot_id, password=robot_key):
            pass
    assert str(refused.value.rc) == "Not authorized"
    assert tls_plant.refused("certificate_username_mismatch") == 1
    # Its own id as username is fine.
    async with tls_plant.client(press, username=plant.things["press"][0]) as client:
        await client.publish(plant.topic(), b'[{"n": "temp", "v": 2}]', qos=1)


async def test_key_login_works_over_tls_without_a_certificate(tls_plant: TlsPlant) -> None:
    plant = tls_plant.plant
    robot_id, robot_key = plant.things["robot"]
    async with tls_plant.client(None, username=robot_id, password=robot_key) as robot:
        await robot.subscribe(plant.topic("#"), qos=1)
        await robot.publish(plant.topic("echo"), b'[{"n": "temp", "v": 3}]', qos=1)
        assert (await next_message(robot)).payload == b'[{"n": "temp", "v": 3}]'
    with pytest.raises(aiomqtt.MqttCodeError):
        async with tls_plant.client(None, username=robot_id, password="wrong"):
            pass


@pytest.mark.parametrize("problem", ["expired", "other CA"])
async def test_certificates_tls_cannot_verify_end_the_handshake(
    tls_plant: TlsPlant, tmp_path: Path, problem: str
) -> None:
    plant = tls_plant.plant
    thing_id = plant.things["press"][0]
    if problem == "expired":
        past = datetime.now(UTC) - timedelta(days=2)
        issued = tls_plant.ca.issue(thing_id, valid_from=past, valid_until=past + timedelta(days=1))
    else:
        issued = TestCa(tmp_path / "other").issue(thing_id)
    code, output = await run_tool(
        MOSQUITTO_PUB, *tls_plant.tls_args(issued), "-t", plant.topic(), "-m", "[]", "-q", "1"
    )
    assert code != 0, output
    assert "not authorised" not in output  # no CONNACK: the handshake itself failed
    assert plant.rejected("protocol_violation") == 0
