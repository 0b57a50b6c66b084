"""One machine per protocol for the contract suite, started before and stopped after."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from shopfloor.sdk.connectors import Connector, connect

from .machines import HttpMachine, Machine, ModbusMachine, MqttMachine, OpcUaMachine, TcpMachine

PROTOCOLS = ["opcua", "modbus", "mqtt", "http", "tcp"]


def make_machine(protocol: str, work_dir: Path, cache_dir: Path) -> Machine:
    if protocol == "mqtt":
        return MqttMachine(work_dir)
    if protocol == "opcua":
        return OpcUaMachine(cache_dir)
    return {"modbus": ModbusMachine, "http": HttpMachine, "tcp": TcpMachine}[protocol]()


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Files the test servers make once and share (OPC UA's standard address space)."""
    return tmp_path_factory.mktemp("connector-servers")


@pytest.fixture(params=PROTOCOLS)
async def machine(
    request: pytest.FixtureRequest, tmp_path: Path, cache_dir: Path
) -> AsyncIterator[Machine]:
    running = make_machine(request.param, tmp_path, cache_dir)
    await running.start()
    try:
        yield running
    finally:
        await running.stop()


async def eventually(condition: Callable[[], bool | Awaitable[bool]]) -> None:
    """Poll a condition with a deadline (for state with no event to wait on)."""
    async with asyncio.timeout(10):
        while True:
            result = condition()
            if not isinstance(result, bool):
                result = await result
            if result:
                return
            await asyncio.sleep(0.02)


@contextlib.asynccontextmanager
async def running(machine: Machine) -> AsyncIterator[Machine]:
    """`machine`, started, and stopped when the block ends."""
    await machine.start()
    try:
        yield machine
    finally:
        await machine.stop()


@contextlib.asynccontextmanager
async def linked(url: str) -> AsyncIterator[Connector[Any]]:
    """The connector of `url`, entered and connected."""
    async with connect(url) as connector:
        async with asyncio.timeout(10):
            await connector.wait_connected()
        yield connector
