"""Raw TCP: request/response over a framed byte stream.

    tcp://host:9000?framing=line            line, delimiter:HEX, length-prefixed[:N], fixed:N
                  &encoding=utf-8          how text is sent and replies are decoded; `hex`:
                                           addresses are hex, replies are bytes
                  &probe=PING              the heartbeat's request (by default: the socket
                                           must still be open)
                  &error=ERR               a reply starting with this is a refusal
                  &max_frame=65536

Addresses are requests: `read("MEAS? temp")` sends that frame and returns the next frame
received, decoded. The device is taken to answer every frame it gets with one frame,
in order; frames it sends unasked would be taken as answers, so such devices are not
for this connector. `write(address, value)` sends `"address value"` and waits for the
reply; `call(method, *args)` sends the method and its arguments joined by spaces and
returns the reply. Subscriptions poll.
"""

from __future__ import annotations

import asyncio
import codecs
from collections.abc import Callable, Sequence
from typing import Any, Self

from ._connector import Connector
from ._errors import (
    CallFailed,
    ConnectorError,
    ConnectorUnavailable,
    InvalidAddress,
    InvalidConnectorUrl,
    WriteRefused,
)
from ._framing import DEFAULT_MAX_FRAME, FrameDecoder, Framing, FramingError
from ._types import ConnectorOptions, Reading
from ._url import ConnectorUrl

__all__ = ["TcpConnector"]

HEX = "hex"


class _FrameProtocol(asyncio.Protocol):
    """Frames received, in a queue; the end of the connection, reported once."""

    def __init__(
        self, framing: Framing, on_lost: Callable[[_FrameProtocol, ConnectorError], None]
    ) -> None:
        self._decoder = FrameDecoder(framing)
        self._on_lost: Callable[[_FrameProtocol, ConnectorError], None] | None = on_lost
        self.frames: asyncio.Queue[bytes | ConnectorError] = asyncio.Queue()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        try:
            frames = self._decoder.feed(data)
        except FramingError as exc:
            self._end(ConnectorUnavailable(f"the device sent a bad frame: {exc}"))
            if self.transport is not None:
                self.transport.abort()
            return
        for frame in frames:
            self.frames.put_nowait(frame)

    def eof_received(self) -> bool:
        self._end(ConnectorUnavailable("the device closed the connection"))
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._end(ConnectorUnavailable(f"the connection was lost: {exc or 'closed'}"))

    def _end(self, error: ConnectorError) -> None:
        if self._on_lost is not None:
            self.frames.put_nowait(error)
            on_lost, self._on_lost = self._on_lost, None
            on_lost(self, error)


class TcpConnector(Connector[bytes], protocol="tcp"):
    """Request/response over a framed TCP stream (see the module docstring)."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        framing: Framing | None = None,
        encoding: str = "utf-8",
        probe: str | None = None,
        error_prefix: str | None = None,
        options: ConnectorOptions | None = None,
        name: str | None = None,
    ) -> None:
        super().__init__(name=name or f"tcp://{host}:{port}", options=options)
        self.host, self.port = host, port
        self.framing = framing or Framing.parse("line")
        self.encoding = encoding
        self._probe_request = None if probe is None else self._parse(probe)
        self._error_prefix = None if error_prefix is None else self._encode(error_prefix)
        self._protocol: _FrameProtocol | None = None
        self._turn = asyncio.Lock()  # one request on the wire at a time

    @classmethod
    def from_url(cls, url: str) -> Self:
        parsed = ConnectorUrl(url, schemes=("tcp",))
        host, port = parsed.endpoint(0)
        if not port or parsed.parts.path not in ("", "/"):
            raise InvalidConnectorUrl(f"a TCP connector URL is tcp://host:port: {url!r}")
        max_frame = parsed.integer("max_frame", DEFAULT_MAX_FRAME, minimum=1)
        try:
            framing = Framing.parse(parsed.text("framing", "line"), max_frame=max_frame)
        except FramingError as exc:
            raise InvalidConnectorUrl(str(exc)) from exc
        encoding = parsed.text("encoding", "utf-8")
        if encoding != HEX:
            try:
                codecs.lookup(encoding)
            except LookupError:
                raise InvalidConnectorUrl(f"unknown encoding {encoding!r}") from None
        probe = parsed.text("probe", "") or None
        error_prefix = parsed.text("error", "") or None
        options = parsed.options()
        parsed.finish()
        try:
            return cls(
                host, port, framing=framing, encoding=encoding, probe=probe,
                error_prefix=error_prefix, options=options, name=parsed.label,
            )  # fmt: skip
        except InvalidAddress as exc:
            raise InvalidConnectorUrl(f"tcp connector option probe: {exc}") from exc

    def _encode(self, text: str) -> bytes:
        if self.encoding == HEX:
            try:
                return bytes.fromhex(text)
            except ValueError:
                raise InvalidAddress(f"{text!r} is not hex") from None
        return text.encode(self.encoding)

    def _decode(self, frame: bytes) -> str | bytes:
        return frame if self.encoding == HEX else frame.decode(self.encoding, "replace")

    def _parse(self, address: str) -> bytes:
        payload = self._encode(address)
        try:
            self.framing.encode(payload)
        except FramingError as exc:
            raise InvalidAddress(f"request {address!r}: {exc}") from None
        return payload

    async def _open(self) -> None:
        loop = asyncio.get_running_loop()
        protocol = _FrameProtocol(self.framing, self._gone)
        await loop.create_connection(lambda: protocol, self.host, self.port)
        self._protocol = protocol
        if self._probe_request is not None:
            await self._probe()  # an open socket is not yet a device that answers

    def _gone(self, protocol: _FrameProtocol, error: ConnectorError) -> None:
        if protocol is self._protocol:
            self._link_broken(error)

    async def _close(self) -> None:
        protocol, self._protocol = self._protocol, None
        if protocol is not None and protocol.transport is not None:
            protocol.transport.close()

    async def _exchange(self, payload: bytes) -> bytes:
        protocol = self._protocol
        if protocol is None or protocol.transport is None:
            raise ConnectorUnavailable(f"connector {self.name} is not connected")
        async with self._turn:
            protocol.transport.write(self.framing.encode(payload))
            try:
                reply = await protocol.frames.get()
            except asyncio.CancelledError:
                # A reply that comes later would answer the next request: start afresh.
                self._gone(protocol, ConnectorUnavailable("a request went unanswered"))
                raise
        if isinstance(reply, ConnectorError):
            raise reply
        return reply

    def _refused(self, reply: bytes) -> bool:
        return self._error_prefix is not None and reply.startswith(self._error_prefix)

    async def _read(self, addresses: Sequence[bytes]) -> list[Reading]:
        readings = []
        for payload in addresses:
            reply = await self._exchange(payload)
            readings.append(Reading(self._text(payload), self._decode(reply)))
        return readings

    def _text(self, payload: bytes) -> str:
        return payload.hex() if self.encoding == HEX else payload.decode(self.encoding)

    def _join(self, parts: Sequence[Any]) -> bytes:
        pieces = [part if isinstance(part, bytes) else self._encode_value(part) for part in parts]
        payload = (b"" if self.encoding == HEX else " ".encode(self.encoding)).join(
            piece for piece in pieces if piece
        )
        try:
            self.framing.encode(payload)
        except FramingError as exc:
            raise InvalidAddress(str(exc)) from None
        return payload

    def _encode_value(self, value: Any) -> bytes:
        if self.encoding == HEX:
            return self._encode(value) if isinstance(value, str) else bytes(value)
        return str(value).encode(self.encoding)

    async def _write(self, address: bytes, value: Any) -> None:
        reply = await self._exchange(self._join([address, value]))
        if self._refused(reply):
            raise WriteRefused(
                f"the device refused {self._text(address)!r}: {self._decode(reply)!r}"
            )

    async def _call(self, method: str, args: tuple[Any, ...]) -> Any:
        reply = await self._exchange(self._join([self._parse(method), *args]))
        if self._refused(reply):
            raise CallFailed(f"the device refused {method!r}: {self._decode(reply)!r}")
        return self._decode(reply)

    async def _probe(self) -> None:
        if self._probe_request is not None:
            await self._exchange(self._probe_request)
            return
        protocol = self._protocol
        if protocol is None or protocol.transport is None or protocol.transport.is_closing():
            raise ConnectorUnavailable(f"connector {self.name}: the socket is closed")
