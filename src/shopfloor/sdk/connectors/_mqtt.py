"""MQTT through aiomqtt (paho underneath), MQTT 3.1.1.

    mqtt://user:password@host:1883?qos=1      QoS of subscriptions and writes (0, 1, 2)
                                  &retain=false  whether writes are retained
                                  &client_id=    the client identifier (random by default)

Addresses are topics; subscriptions take filters with `+` and `#`, and each reading
names the topic its message came on. Payloads are decoded as JSON, else as UTF-8
text, else kept as bytes; written values are sent as they are (bytes, text) or as
JSON. MQTT has no request for a value: `read(topic)` subscribes and returns the first
message, which is the retained one if the topic has one (`ConnectorTimeout` when
nothing comes within the timeout). MQTT has no methods (`NotSupported`).

The heartbeat is a round trip to the broker (an UNSUBSCRIBE of a topic no one uses:
aiomqtt has no ping of its own; paho's keepalive pings on top). After a reconnect the
session is new, so subscriptions are made again.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Callable, Sequence
from contextlib import AsyncExitStack
from typing import Any, Self

import aiomqtt

from ._connector import Connector, Emit
from ._errors import (
    ConnectorError,
    ConnectorTimeout,
    ConnectorUnavailable,
    InvalidAddress,
    InvalidConnectorUrl,
    NotSupported,
)
from ._payload import decode_payload, encode_payload
from ._types import ConnectorOptions, Reading
from ._url import ConnectorUrl

__all__ = ["MqttConnector"]

DEFAULT_PORT = 1883
Sink = Callable[[aiomqtt.Message], None]


class MqttConnector(Connector[aiomqtt.Wildcard], protocol="mqtt"):
    """Topics on an MQTT broker (see the module docstring)."""

    def __init__(
        self,
        host: str,
        port: int = DEFAULT_PORT,
        *,
        username: str | None = None,
        password: str | None = None,
        client_id: str | None = None,
        qos: int = 1,
        retain: bool = False,
        options: ConnectorOptions | None = None,
        name: str | None = None,
    ) -> None:
        super().__init__(name=name or f"mqtt://{host}:{port}", options=options)
        self.host, self.port, self.qos, self.retain = host, port, qos, retain
        self._username, self._password = username, password
        self.client_id = client_id or f"shopfloor-{uuid.uuid4().hex[:12]}"
        self._client: aiomqtt.Client | None = None
        self._session: AsyncExitStack | None = None
        self._sinks: dict[int, tuple[tuple[aiomqtt.Wildcard, ...], Sink]] = {}
        self._subscribed: dict[str, int] = {}  # filter → sinks using it

    @classmethod
    def from_url(cls, url: str) -> Self:
        parsed = ConnectorUrl(url, schemes=("mqtt",))
        host, port = parsed.endpoint(DEFAULT_PORT)
        if parsed.parts.path not in ("", "/"):
            raise InvalidConnectorUrl(f"an MQTT URL has no path: {parsed.redacted!r}")
        username, password = parsed.credentials()
        qos = parsed.integer("qos", 1, minimum=0, maximum=2)
        retain = parsed.flag("retain", False)
        client_id = parsed.text("client_id", "") or None
        options = parsed.options()
        parsed.finish()
        return cls(
            host, port, username=username, password=password, client_id=client_id, qos=qos,
            retain=retain, options=options, name=parsed.label,
        )  # fmt: skip

    def _parse(self, address: str) -> aiomqtt.Wildcard:
        try:
            return aiomqtt.Wildcard(address)
        except ValueError as exc:
            raise InvalidAddress(f"{address!r} is not an MQTT topic filter: {exc}") from None

    @staticmethod
    def _topic(address: aiomqtt.Wildcard) -> str:
        try:
            return aiomqtt.Topic(address.value).value
        except ValueError:
            raise NotSupported(f"{address.value!r} is a filter: name one topic") from None

    def _connected(self) -> aiomqtt.Client:
        if self._client is None:
            raise ConnectorUnavailable(f"connector {self.name}: not connected")
        return self._client

    async def _open(self) -> None:
        client = aiomqtt.Client(
            self.host, self.port, username=self._username, password=self._password,
            identifier=self.client_id, timeout=self.options.timeout,
            protocol=aiomqtt.ProtocolVersion.V311, clean_session=True,
        )  # fmt: skip
        self._session = AsyncExitStack()
        await self._session.enter_async_context(client)
        self._client = client
        self._subscribed.clear()

    async def _close(self) -> None:
        session, self._session, self._client = self._session, None, None
        if session is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(self.options.timeout):
                    await session.aclose()

    async def _serve(self) -> None:
        async for message in self._connected().messages:
            for filters, sink in list(self._sinks.values()):
                if any(message.topic.matches(each) for each in filters):
                    sink(message)

    async def _attach(self, filters: Sequence[aiomqtt.Wildcard], sink: Sink) -> int:
        """Route messages of `filters` to `sink`, subscribing to the filters anew."""
        key = id(sink)
        self._sinks[key] = (tuple(filters), sink)
        client = self._connected()
        for each in filters:
            await client.subscribe(each.value, self.qos, timeout=self.options.timeout)
            self._subscribed[each.value] = self._subscribed.get(each.value, 0) + 1
        return key

    async def _detach(self, key: int) -> None:
        filters, _ = self._sinks.pop(key, ((), None))
        client = self._client
        for each in filters:
            users = self._subscribed.get(each.value, 0) - 1
            if users > 0:
                self._subscribed[each.value] = users
                continue
            self._subscribed.pop(each.value, None)
            if client is not None:
                with contextlib.suppress(Exception):
                    await client.unsubscribe(each.value, timeout=self.options.timeout)

    def _reading(self, message: aiomqtt.Message) -> Reading:
        return Reading(
            message.topic.value,
            decode_payload(message.payload)
            if isinstance(message.payload, bytes)
            else message.payload,
        )

    async def _read(self, addresses: Sequence[aiomqtt.Wildcard]) -> list[Reading]:
        readings = []
        for address in addresses:
            topic = self._topic(address)
            first: asyncio.Future[aiomqtt.Message] = asyncio.get_running_loop().create_future()

            def sink(message: aiomqtt.Message, first: asyncio.Future[Any] = first) -> None:
                if not first.done():
                    first.set_result(message)

            key = await self._attach([address], sink)
            try:
                try:
                    message = await asyncio.wait_for(first, self.options.timeout)
                except TimeoutError:
                    raise ConnectorTimeout(f"nothing came on {topic!r} (none retained)") from None
            finally:
                await self._detach(key)
            readings.append(self._reading(message))
        return readings

    async def _write(self, address: aiomqtt.Wildcard, value: Any) -> None:
        await self._connected().publish(
            self._topic(address), encode_payload(value), qos=self.qos, retain=self.retain,
            timeout=self.options.timeout,
        )  # fmt: skip

    async def _probe(self) -> None:
        await self._connected().unsubscribe(
            f"shopfloor/heartbeat/{self.client_id}", timeout=self.options.timeout
        )

    async def _feed(
        self, addresses: Sequence[aiomqtt.Wildcard], interval: float, emit: Emit
    ) -> None:
        key = await self._attach(addresses, lambda message: emit(self._reading(message)))
        try:
            await asyncio.get_running_loop().create_future()
        finally:
            await self._detach(key)

    def _translate(self, exc: Exception) -> ConnectorError:
        if isinstance(exc, aiomqtt.MqttCodeError) and exc.rc in (4, 5, 134, 135):
            return ConnectorUnavailable(f"connector {self.name}: the broker refused: {exc}")
        if isinstance(exc, aiomqtt.MqttError):
            if "timed out" in str(exc).lower():
                return ConnectorTimeout(f"connector {self.name}: {exc}")
            return ConnectorUnavailable(f"connector {self.name}: {exc}")
        return super()._translate(exc)
