"""OPC UA through asyncua's client.

    opc.tcp://user:password@host:4840/path?timeout=5&heartbeat=5

Addresses are node ids (`ns=2;s=Temperature`, `ns=2;i=1001`, `i=2258`,
`nsu=urn:plant;s=Speed`) or browse paths from the Objects folder, each step a
qualified name `index:name` (`/2:Machine/2:Temperature`). Paths are resolved once per
connection. Methods are called by their node id or path; their parent object is the
path's previous step, or found through the method's inverse references.

Reads of several addresses are one Read request; subscriptions are OPC UA
subscriptions with one monitored item per address, sampled and published every
`interval`. The heartbeat reads the server's state, which must be Running. Readings
carry the source timestamp and the status code's quality. Only the None security
policy is used: signing and encryption are not configurable yet.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Self
from urllib.parse import urlunsplit

from asyncua import ua
from asyncua.client.client import Client
from asyncua.common.node import Node
from asyncua.common.subscription import DataChangeEvent, StatusChangeEvent
from asyncua.common.ua_utils import data_type_to_variant_type
from asyncua.ua.attribute_ids import AttributeIds
from asyncua.ua.status_codes import StatusCodes
from asyncua.ua.uaerrors import UaError, UaStatusCodeError

from ._connector import Connector, Emit
from ._errors import (
    CallFailed,
    ConnectorError,
    ConnectorUnavailable,
    InvalidAddress,
    WriteRefused,
)
from ._types import ConnectorOptions, Quality, Reading
from ._url import ConnectorUrl

__all__ = ["OpcUaConnector"]

DEFAULT_PORT = 4840
#: asyncua's own watchdog also probes the server; ours is the heartbeat, so its probe
#: is rare. It still reports a closed transport at once, which is what we want of it.
WATCHDOG_INTERVAL = 60.0
_S = StatusCodes
_UNKNOWN_NODE = {_S.BadNodeIdUnknown, _S.BadNodeIdInvalid, _S.BadAttributeIdInvalid}
_REFUSED_WRITE = {
    _S.BadNotWritable, _S.BadUserAccessDenied, _S.BadTypeMismatch, _S.BadOutOfRange,
    _S.BadWriteNotSupported, _S.BadNotSupported,
}  # fmt: skip
_UNKNOWN_METHOD = {_S.BadMethodInvalid, _S.BadNodeIdUnknown, _S.BadNodeIdInvalid}
_FLOATS = {ua.VariantType.Float, ua.VariantType.Double}
_INTEGERS = {
    ua.VariantType.SByte, ua.VariantType.Byte, ua.VariantType.Int16, ua.VariantType.UInt16,
    ua.VariantType.Int32, ua.VariantType.UInt32, ua.VariantType.Int64, ua.VariantType.UInt64,
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class UaAddress:
    text: str
    node_id: ua.NodeId | None = None
    path: tuple[str, ...] = ()


def quality_of(status: ua.StatusCode | None) -> Quality:
    if status is None or status.is_good():
        return Quality.GOOD
    return Quality.UNCERTAIN if status.is_uncertain() else Quality.BAD


def reading_of(text: str, value: ua.DataValue) -> Reading:
    timestamp = value.SourceTimestamp or value.ServerTimestamp or datetime.now(UTC)
    if timestamp.tzinfo is None:
        timestamp = timestamp.replace(tzinfo=UTC)
    data = value.Value.Value if value.Value is not None else None
    return Reading(text, data, timestamp, quality_of(value.StatusCode))


def coerce(value: Any, variant_type: ua.VariantType) -> ua.Variant:
    """`value` as the variant the node's data type needs (7 is 7.0 for a Double);
    `ValueError` when it is not a value of that type."""
    numeric = isinstance(value, int | float) and not isinstance(value, bool)
    if variant_type in _FLOATS or variant_type in _INTEGERS:
        if not numeric:
            raise ValueError(f"a {variant_type.name} takes a number, not {value!r}")
        if variant_type in _FLOATS:
            value = float(value)
        elif isinstance(value, float):
            if not value.is_integer():
                raise ValueError(f"a {variant_type.name} takes a whole number, not {value}")
            value = int(value)
    if variant_type is ua.VariantType.Variant:
        return ua.Variant(value)
    return ua.Variant(value, variant_type)


class OpcUaConnector(Connector[UaAddress], protocol="opcua", aliases=("opc.tcp",)):
    """An OPC UA server (see the module docstring)."""

    def __init__(
        self,
        endpoint: str,
        *,
        options: ConnectorOptions | None = None,
        name: str | None = None,
    ) -> None:
        super().__init__(name=name or endpoint, options=options)
        self.endpoint = endpoint
        self._client: Client | None = None
        self._resolved: dict[str, ua.NodeId] = {}
        self._variant_types: dict[ua.NodeId, ua.VariantType] = {}

    @classmethod
    def from_url(cls, url: str) -> Self:
        parsed = ConnectorUrl(url, schemes=("opc.tcp",))
        parsed.endpoint(DEFAULT_PORT)
        options = parsed.options()
        parsed.finish()
        parts = parsed.parts
        endpoint = urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
        return cls(endpoint, options=options, name=parsed.label)

    def _parse(self, address: str) -> UaAddress:
        text = address.strip()
        if text.startswith("/"):
            steps = tuple(step for step in text.split("/") if step)
            if not steps:
                raise InvalidAddress("an OPC UA browse path names at least one node")
            return UaAddress(text, path=steps)
        try:
            return UaAddress(text, node_id=ua.NodeId.from_string(text))
        except (ValueError, UaError) as exc:
            raise InvalidAddress(f"{address!r} is not an OPC UA node id: {exc}") from None

    def _connected(self) -> Client:
        if self._client is None:
            raise ConnectorUnavailable(f"connector {self.name}: not connected")
        return self._client

    async def _open(self) -> None:
        client = Client(
            self.endpoint, timeout=self.options.timeout, watchdog_intervall=WATCHDOG_INTERVAL
        )

        async def lost(exc: Exception) -> None:
            if client is self._client:
                self._link_broken(ConnectorUnavailable(f"connector {self.name}: {exc!r}"))

        client.connection_lost_callback = lost
        self._client = client
        self._resolved.clear()
        self._variant_types.clear()
        await client.connect()

    async def _close(self) -> None:
        client, self._client = self._client, None
        if client is None:
            return
        try:
            async with asyncio.timeout(self.options.timeout):
                await client.disconnect()
        except Exception:
            client.disconnect_socket()  # the server is gone or slow: just drop the socket

    async def _node_id(self, address: UaAddress) -> ua.NodeId:
        if address.node_id is not None:
            return address.node_id
        found = self._resolved.get(address.text)
        if found is None:
            client = self._connected()
            try:
                node = await client.nodes.objects.get_child(list(address.path))
            except UaStatusCodeError as exc:
                raise InvalidAddress(f"no node at {address.text!r}: {exc}") from exc
            found = self._resolved[address.text] = node.nodeid
        return found

    async def _read(self, addresses: Sequence[UaAddress]) -> list[Reading]:
        client = self._connected()
        node_ids = [await self._node_id(address) for address in addresses]
        values = await client.uaclient.read_attributes(node_ids, AttributeIds.Value)
        readings = []
        for address, value in zip(addresses, values, strict=True):
            if value.StatusCode is not None and value.StatusCode.value in _UNKNOWN_NODE:
                raise InvalidAddress(f"the server has no node {address.text!r}")
            readings.append(reading_of(address.text, value))
        return readings

    async def _variant_type(self, node: Node) -> ua.VariantType:
        found = self._variant_types.get(node.nodeid)
        if found is None:
            data_type = await node.read_data_type()
            found = await data_type_to_variant_type(self._connected().get_node(data_type))
            self._variant_types[node.nodeid] = found
        return found

    async def _write(self, address: UaAddress, value: Any) -> None:
        client = self._connected()
        node = client.get_node(await self._node_id(address))
        try:
            variant = coerce(value, await self._variant_type(node))
            await node.write_value(ua.DataValue(variant))
        except UaStatusCodeError as exc:
            if exc.code in _UNKNOWN_NODE:
                raise InvalidAddress(f"the server has no node {address.text!r}") from exc
            if exc.code in _REFUSED_WRITE:
                raise WriteRefused(f"the server refused {address.text}: {exc}") from exc
            raise
        except (UaError, ValueError, TypeError, OverflowError) as exc:  # cannot be encoded
            raise WriteRefused(f"{value!r} cannot be written to {address.text}: {exc}") from exc

    async def _call(self, method: str, args: tuple[Any, ...]) -> Any:
        client = self._connected()
        address = self._parse(method)
        method_id = await self._node_id(address)
        if address.path:
            parent_path = UaAddress("/" + "/".join(address.path[:-1]), path=address.path[:-1])
            parent: Node | None = (
                client.get_node(await self._node_id(parent_path))
                if parent_path.path
                else client.nodes.objects
            )
        else:
            parent = await client.get_node(method_id).get_parent()
        if parent is None:
            raise InvalidAddress(f"the method {method!r} has no parent object to call it on")
        request = ua.CallMethodRequest()
        request.ObjectId = parent.nodeid
        request.MethodId = method_id
        request.InputArguments = await self._arguments(client.get_node(method_id), args)
        (result,) = await client.uaclient.call([request])
        status = result.StatusCode
        if status.value in _UNKNOWN_METHOD:
            raise InvalidAddress(f"the server has no method {method!r}")
        if not status.is_good():
            raise CallFailed(f"{method} answered {status.name}")
        outputs = [variant.Value for variant in result.OutputArguments or []]
        if not outputs:
            return None
        return outputs[0] if len(outputs) == 1 else outputs

    async def _arguments(self, method: Node, args: tuple[Any, ...]) -> list[ua.Variant]:
        """The arguments as the method declares them (guessed where it declares none)."""
        try:
            declared = await (await method.get_child("0:InputArguments")).read_value()
        except UaStatusCodeError:
            declared = []
        variants = []
        for index, value in enumerate(args):
            if index < len(declared):
                data_type = self._connected().get_node(declared[index].DataType)
                try:
                    variants.append(coerce(value, await data_type_to_variant_type(data_type)))
                except ValueError as exc:
                    raise CallFailed(f"argument {index + 1}: {exc}") from None
            else:
                variants.append(ua.Variant(value))
        return variants

    async def _probe(self) -> None:
        state = await self._connected().nodes.server_state.read_value()
        if state != ua.ServerState.Running:
            raise ConnectorUnavailable(f"connector {self.name}: the server is {state}")

    async def _feed(self, addresses: Sequence[UaAddress], interval: float, emit: Emit) -> None:
        client = self._connected()
        texts: dict[ua.NodeId, list[str]] = {}
        nodes = []
        async with asyncio.timeout(self.options.timeout):
            for address in addresses:
                node_id = await self._node_id(address)
                if node_id not in texts:
                    nodes.append(client.get_node(node_id))
                texts.setdefault(node_id, []).append(address.text)
            subscription = await client.create_subscription(interval * 1000, None)
        try:
            async with asyncio.timeout(self.options.timeout):
                handles = await subscription.subscribe_data_change(
                    nodes, sampling_interval=ua.Double(interval * 1000)
                )
            for node, handle in zip(nodes, handles, strict=True):
                if isinstance(handle, ua.StatusCode):
                    raise InvalidAddress(f"cannot monitor {node.nodeid}: {handle.name}")
            async for event in subscription:
                if isinstance(event, DataChangeEvent):
                    value = event.data.monitored_item.Value
                    for text in texts.get(event.node.nodeid, ()):
                        emit(reading_of(text, value))
                elif isinstance(event, StatusChangeEvent):
                    status = event.notification.Status
                    if status is not None and status.is_bad():
                        raise ConnectorUnavailable(f"the subscription ended: {status.name}")
            raise ConnectorUnavailable("the subscription ended")
        finally:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(self.options.timeout):
                    await subscription.delete()

    def _translate(self, exc: Exception) -> ConnectorError:
        if isinstance(exc, UaStatusCodeError):
            if exc.code in _UNKNOWN_NODE:
                return InvalidAddress(f"connector {self.name}: {exc}")
            if exc.code in (_S.BadServerNotConnected, _S.BadSessionClosed, _S.BadShutdown,
                            _S.BadCommunicationError, _S.BadConnectionClosed,
                            _S.BadSessionIdInvalid, _S.BadSecureChannelClosed):  # fmt: skip
                return ConnectorUnavailable(f"connector {self.name}: {exc}")
            return ConnectorError(f"connector {self.name}: {exc}")
        return super()._translate(exc)
