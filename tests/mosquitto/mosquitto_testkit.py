"""Helpers of the Mosquitto tests: a real broker per test, MQTT v5 clients, inboxes.

Every broker is a real `mosquitto` 2.0 process on a free loopback port, configured by
`render_config` with the dynamic-security plugin and the publisher plugin, and
stopped when the test ends. When mosquitto, mosquitto_ctrl, gcc or the Mosquitto
headers are missing the tests fail (`make test` installs them).
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import shutil
import socket
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import aiomqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from shopfloor.adapters.mosquitto import (
    MosquittoConfig,
    MosquittoTls,
    ThingAccess,
    find_dynsec_plugin,
    init_dynsec_config,
    render_config,
)
from shopfloor.registry import Connection, Permission, Thing

ADMIN_USERNAME = "shopfloor-admin"
ADMIN_PASSWORD = "admin-" + uuid.uuid4().hex
BRIDGE_PASSWORD = "bridge-" + uuid.uuid4().hex
#: Debian installs the broker in /usr/sbin, which is not on every user's PATH.
MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
NOT_AUTHORIZED = 0x87
BAD_CREDENTIALS = {0x86, 0x87}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class RunningBroker:
    host: str
    port: int
    work_dir: Path

    @property
    def admin_url(self) -> str:
        return f"mqtt://{ADMIN_USERNAME}:{ADMIN_PASSWORD}@{self.host}:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.work_dir / "mosquitto.log"

    def log(self) -> str:
        return self.log_path.read_text() if self.log_path.exists() else ""


def write_broker_files(
    work_dir: Path,
    plugin: Path,
    port: int,
    *,
    tls: MosquittoTls | None = None,
    pid_file: Path | None = None,
) -> Path:
    """Config and dynsec file of a test broker (the dynsec file survives restarts)."""
    (work_dir / "data").mkdir(parents=True, exist_ok=True)
    dynsec_file = work_dir / "dynsec.json"
    if not dynsec_file.exists():
        init_dynsec_config(dynsec_file, ADMIN_USERNAME, ADMIN_PASSWORD)
    config = MosquittoConfig(
        dynsec_plugin=find_dynsec_plugin(),
        dynsec_config=dynsec_file,
        publisher_plugin=plugin,
        port=port,
        bind_address="127.0.0.1",
        persistence_dir=work_dir / "data",
        # Run as whoever runs the tests: as root, mosquitto would switch to its own user
        # and then could not write the dynsec file in the test's folder.
        user=getpass.getuser(),
        tls=tls,
        pid_file=pid_file,
    )
    config_path = work_dir / "mosquitto.conf"
    log = work_dir / "mosquitto.log"
    config_path.write_text(
        render_config(config) + f"log_dest file {log}\nlog_type all\nconnection_messages true\n"
    )
    return config_path


@contextlib.asynccontextmanager
async def run_mosquitto(
    work_dir: Path,
    plugin: Path,
    *,
    port: int | None = None,
    tls: MosquittoTls | None = None,
    pid_file: Path | None = None,
) -> AsyncIterator[RunningBroker]:
    port = port or free_port()
    config_path = write_broker_files(work_dir, plugin, port, tls=tls, pid_file=pid_file)
    process = await asyncio.create_subprocess_exec(
        MOSQUITTO,
        "-c",
        str(config_path),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    broker = RunningBroker(host="127.0.0.1", port=port, work_dir=work_dir)
    try:
        await _wait_listening(process, broker)
        yield broker
    finally:
        if process.returncode is None:
            process.terminate()
            try:
                async with asyncio.timeout(10):
                    await process.wait()
            except TimeoutError:
                process.kill()
                await process.wait()


async def _wait_listening(process: asyncio.subprocess.Process, broker: RunningBroker) -> None:
    async with asyncio.timeout(10):
        while True:
            if process.returncode is not None:
                assert process.stderr is not None
                stderr = (await process.stderr.read()).decode(errors="replace")
                raise RuntimeError(f"mosquitto exited: {stderr}\n{broker.log()}")
            try:
                _, writer = await asyncio.open_connection(broker.host, broker.port)
            except OSError:
                await asyncio.sleep(0.02)
                continue
            writer.close()
            await writer.wait_closed()
            return


def make_thing(name: str = "press", org_id: str = "org-1") -> Thing:
    return Thing(
        id=uuid.uuid4().hex,
        org_id=org_id,
        name=name,
        metadata={},
        tags=(),
        created_at=datetime.now(UTC),
        key_ciphertext="not-used-by-these-tests",
    )


def make_key() -> str:
    return uuid.uuid4().hex + uuid.uuid4().hex


def connection(thing: Thing, channel_id: str, *permissions: Permission) -> Connection:
    granted = permissions or (Permission.PUBLISH, Permission.SUBSCRIBE)
    return Connection(
        channel_id=channel_id,
        thing_id=thing.id,
        permissions=frozenset(granted),
        created_at=datetime.now(UTC),
    )


async def snapshot(*things: ThingAccess) -> AsyncIterator[ThingAccess]:
    """A registry snapshot made of these things, for `DynsecSync.sync_all`."""
    for item in things:
        yield item


def user_properties(message: aiomqtt.Message) -> list[tuple[str, str]]:
    if message.properties is None:
        return []
    return list(getattr(message.properties, "UserProperty", []))


def publish_properties(*pairs: tuple[str, str]) -> Properties:
    properties = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    properties.UserProperty = list(pairs)
    return properties


@dataclass
class Inbox:
    """Messages one MQTT client received, and whether its connection ended."""

    client: aiomqtt.Client
    messages: list[aiomqtt.Message] = field(default_factory=list)
    closed: asyncio.Event = field(default_factory=asyncio.Event)
    error: BaseException | None = None
    _changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def read(self) -> None:
        try:
            async for message in self.client.messages:
                self.messages.append(message)
                async with self._changed:
                    self._changed.notify_all()
        except aiomqtt.MqttError as exc:
            self.error = exc
        finally:
            self.closed.set()

    async def wait_for(
        self, predicate: Callable[[aiomqtt.Message], bool], within: float = 5.0
    ) -> aiomqtt.Message:
        def found() -> aiomqtt.Message | None:
            return next((m for m in self.messages if predicate(m)), None)

        async with asyncio.timeout(within), self._changed:
            await self._changed.wait_for(lambda: found() is not None)
        message = found()
        assert message is not None
        return message

    def on_topic(self, topic: str) -> list[aiomqtt.Message]:
        return [m for m in self.messages if m.topic.value == topic]


def mqtt_client(
    broker: RunningBroker,
    username: str,
    password: str,
    *,
    will: aiomqtt.Will | None = None,
) -> aiomqtt.Client:
    return aiomqtt.Client(
        broker.host,
        broker.port,
        username=username,
        password=password,
        identifier=f"test-{uuid.uuid4().hex[:10]}",
        protocol=aiomqtt.ProtocolVersion.V5,
        will=will,
        timeout=5,
    )


@contextlib.asynccontextmanager
async def connected(
    broker: RunningBroker,
    username: str,
    password: str,
    *,
    will: aiomqtt.Will | None = None,
) -> AsyncIterator[Inbox]:
    """A connected MQTT v5 client whose messages land in an inbox."""
    client = mqtt_client(broker, username, password, will=will)
    async with client, asyncio.TaskGroup() as group:
        inbox = Inbox(client)
        reader = group.create_task(inbox.read(), name=f"inbox-{username}")
        try:
            yield inbox
        finally:
            reader.cancel()


async def subscribe(inbox: Inbox, topic: str) -> int:
    """Subscribe at QoS 1; the SUBACK reason code (1 = granted, 0x87 = not authorised)."""
    codes = await inbox.client.subscribe(topic, qos=1)
    (code,) = codes
    return int(code.value) if hasattr(code, "value") else int(code)
