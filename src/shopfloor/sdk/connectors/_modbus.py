"""Modbus TCP through pymodbus' async client. Addresses: see `_modbus_codec`.

    modbus+tcp://host:502?unit=1          the unit (device) id, 1 by default
                         &word_order=big  the default word order of multi-register types
                         &heartbeat_address=holding:40001   read as the heartbeat (by
                                          default the heartbeat only checks the socket:
                                          Modbus has no ping every device answers)

Reads of several addresses are one request per address. Coils and holding registers
are writable; discrete inputs and input registers are read-only (`WriteRefused`).
Modbus has no methods (`NotSupported`) and no subscriptions: they poll.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Self

from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ConnectionException, ModbusIOException
from pymodbus.pdu import ModbusPDU

from ._connector import Connector
from ._errors import (
    ConnectorError,
    ConnectorTimeout,
    ConnectorUnavailable,
    InvalidAddress,
    InvalidConnectorUrl,
    WriteRefused,
)
from ._modbus_codec import WORD_ORDERS, ModbusAddress, decode_registers, encode_registers
from ._types import ConnectorOptions, Reading
from ._url import ConnectorUrl

__all__ = ["ModbusConnector"]

DEFAULT_PORT = 502
#: Modbus exception codes that mean the address (or the value) is wrong, not the link.
ILLEGAL_FUNCTION, ILLEGAL_ADDRESS, ILLEGAL_VALUE = 1, 2, 3


class ModbusConnector(Connector[ModbusAddress], protocol="modbus"):
    """A Modbus TCP device (see the module docstring)."""

    def __init__(
        self,
        host: str,
        port: int = DEFAULT_PORT,
        *,
        unit: int = 1,
        word_order: str = "big",
        heartbeat_address: str | None = None,
        options: ConnectorOptions | None = None,
        name: str | None = None,
    ) -> None:
        super().__init__(name=name or f"modbus+tcp://{host}:{port}", options=options)
        self.host, self.port, self.unit, self.word_order = host, port, unit, word_order
        self._heartbeat_address = (
            None if heartbeat_address is None else self._parse(heartbeat_address)
        )
        self._client: AsyncModbusTcpClient | None = None

    @classmethod
    def from_url(cls, url: str) -> Self:
        parsed = ConnectorUrl(url, schemes=("modbus+tcp", "modbus"))
        host, port = parsed.endpoint(DEFAULT_PORT)
        if parsed.parts.path not in ("", "/"):
            raise InvalidConnectorUrl(f"a Modbus URL has no path: {parsed.redacted!r}")
        unit = parsed.integer("unit", 1, minimum=0, maximum=255)
        word_order = parsed.choice("word_order", "big", WORD_ORDERS)
        heartbeat_address = parsed.text("heartbeat_address", "") or None
        options = parsed.options()
        parsed.finish()
        try:
            return cls(
                host, port, unit=unit, word_order=word_order,
                heartbeat_address=heartbeat_address, options=options, name=parsed.label,
            )  # fmt: skip
        except InvalidAddress as exc:
            raise InvalidConnectorUrl(f"Modbus option heartbeat_address: {exc}") from exc

    def _parse(self, address: str) -> ModbusAddress:
        return ModbusAddress.parse(address, word_order=self.word_order)

    async def _open(self) -> None:
        client = AsyncModbusTcpClient(
            self.host,
            port=self.port,
            timeout=self.options.timeout,
            retries=0,  # a failed request is the connector's to judge, not retried blindly
            reconnect_delay=0,  # the connector reconnects, with its own backoff
            trace_connect=lambda up: self._traced(client, up),
        )
        self._client = client
        if not await client.connect():
            raise ConnectorUnavailable(f"connector {self.name}: no Modbus device answers")
        if self._heartbeat_address is not None:
            await self._probe()  # an open socket is not yet a device that answers

    def _traced(self, client: AsyncModbusTcpClient, up: bool) -> None:
        if not up and client is self._client:
            self._link_broken(ConnectorUnavailable(f"connector {self.name}: connection lost"))

    async def _close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            client.close()

    def _connected_client(self) -> AsyncModbusTcpClient:
        client = self._client
        if client is None or not client.connected:
            raise ConnectorUnavailable(f"connector {self.name}: not connected")
        return client

    async def _read(self, addresses: Sequence[ModbusAddress]) -> list[Reading]:
        return [Reading(address.text, await self._read_one(address)) for address in addresses]

    async def _read_one(self, address: ModbusAddress) -> bool | int | float:
        client = self._connected_client()
        read = {
            "coil": client.read_coils,
            "discrete": client.read_discrete_inputs,
            "input": client.read_input_registers,
            "holding": client.read_holding_registers,
        }[address.table]
        response = self._checked(
            address, await read(address.offset, count=address.count, device_id=self.unit)
        )
        if address.bits:
            return bool(response.bits[0])
        return decode_registers(address, list(response.registers))

    async def _write(self, address: ModbusAddress, value: Any) -> None:
        if not address.writable:
            raise WriteRefused(f"{address.text}: {address.table} values are read-only")
        client = self._connected_client()
        if address.bits:
            if not isinstance(value, bool | int) or value not in (0, 1):
                raise WriteRefused(f"{address.text} takes true or false, not {value!r}")
            response = await client.write_coil(address.offset, bool(value), device_id=self.unit)
        else:
            words = encode_registers(address, value)
            if len(words) == 1:
                response = await client.write_register(
                    address.offset, words[0], device_id=self.unit
                )
            else:
                response = await client.write_registers(address.offset, words, device_id=self.unit)
        self._checked(address, response, writing=True)

    def _checked(
        self, address: ModbusAddress, response: ModbusPDU, *, writing: bool = False
    ) -> ModbusPDU:
        if not response.isError():
            return response
        code = getattr(response, "exception_code", None)
        if code in (ILLEGAL_FUNCTION, ILLEGAL_ADDRESS, ILLEGAL_VALUE):
            if writing:
                raise WriteRefused(f"the device refused {address.text} (exception {code})")
            raise InvalidAddress(f"the device has no {address.text} (exception {code})")
        raise ConnectorError(f"the device failed {address.text} (Modbus exception {code})")

    async def _probe(self) -> None:
        if self._heartbeat_address is not None:
            await self._read_one(self._heartbeat_address)
        else:
            self._connected_client()

    def _translate(self, exc: Exception) -> ConnectorError:
        if isinstance(exc, ModbusIOException):
            return ConnectorTimeout(f"connector {self.name}: no answer: {exc}")
        if isinstance(exc, ConnectionException):
            return ConnectorUnavailable(f"connector {self.name}: {exc}")
        return super()._translate(exc)
