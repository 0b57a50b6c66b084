"""Machine connectors: one small interface over OPC UA, Modbus TCP, MQTT, HTTP and raw TCP.

    async with connect("opc.tcp://press:4840?heartbeat=2") as machine:
        machine.on_state(lambda state: ...)           # connecting, connected, lost, closed
        reading = await machine.read("ns=2;s=Temperature")
        await machine.write("ns=2;s=Setpoint", 80.0)
        await machine.call("/2:Machine/2:start", 1200.0)
        async for reading in machine.subscribe(["ns=2;s=Temperature"], interval=0.5):
            ...                                       # resumes by itself after a reconnect

A connector keeps its link: it reconnects with a capped, jittered backoff and checks
liveness every `heartbeat` seconds. Each protocol's addresses and URL options are in
its module's docstring and in docs/connectors.md; the error tree is in `_errors.py`.
"""

from ._connector import Connector, connect, connector_protocols
from ._errors import (
    CallFailed,
    ConnectorError,
    ConnectorTimeout,
    ConnectorUnavailable,
    InvalidAddress,
    InvalidConnectorUrl,
    NotSupported,
    WriteRefused,
)
from ._framing import Framing
from ._http import HttpConnector
from ._modbus import ModbusConnector
from ._mqtt import MqttConnector
from ._opcua import OpcUaConnector
from ._tcp import TcpConnector
from ._types import ConnectorOptions, ConnectorState, Quality, Reading

__all__ = [
    "CallFailed",
    "Connector",
    "ConnectorError",
    "ConnectorOptions",
    "ConnectorState",
    "ConnectorTimeout",
    "ConnectorUnavailable",
    "Framing",
    "HttpConnector",
    "InvalidAddress",
    "InvalidConnectorUrl",
    "ModbusConnector",
    "MqttConnector",
    "NotSupported",
    "OpcUaConnector",
    "Quality",
    "Reading",
    "TcpConnector",
    "WriteRefused",
    "connect",
    "connector_protocols",
]
