"""The bridge's MQTT v5 connection: the `mqtt5` codec on an asyncio stream.

aiomqtt (paho underneath) spent half of the bridge's time decoding PUBLISH packets:
paho rebuilds its property tables for every packet and looks names up by scanning
them. `mqtt5` decodes a PUBLISH with its user properties in about a microsecond (in
Rust). What is written here is only what the bridge uses of a connection: CONNECT,
one SUBSCRIBE, PUBLISH both ways at QoS 1, PUBACK, PINGREQ, DISCONNECT; a packet of
any other kind ends the connection. Incoming PUBLISHes come out in batches, as many
as have arrived, so that the bridge hands them to the bus and acknowledges them
together (one write of PUBACKs for the whole batch).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging

import mqtt5

from ._errors import MosquittoError

__all__ = ["BrokerConnection", "ConnectionLost"]

logger = logging.getLogger(__name__)

_READ_SIZE = 256 * 1024
_MAX_PACKET_ID = 0xFFFF


class ConnectionLost(MosquittoError):
    """The connection to the broker failed, was refused, or is closed."""


class BrokerConnection:
    """One logged-in MQTT v5 connection; `open` it, then `close` it."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        keep_alive: int,
        outbound_window: int,
    ) -> None:
        self._reader = reader
        self._writer = writer
        self._keep_alive = keep_alive
        self._window = asyncio.Semaphore(outbound_window)
        self._inbox: list[mqtt5.PublishPacket] = []
        self._arrived = asyncio.Event()
        self._waiting: dict[int, asyncio.Future[mqtt5.Packet]] = {}
        self._ids = itertools.cycle(range(1, _MAX_PACKET_ID + 1))
        self._lost: ConnectionLost | None = None
        self._tasks: list[asyncio.Task[None]] = []

    @classmethod
    async def open(
        cls,
        host: str,
        port: int,
        *,
        client_id: str,
        username: str,
        password: str,
        session_expiry: int,
        receive_max: int,
        outbound_window: int,
        connect_within: float,
        keep_alive: int = 60,
    ) -> BrokerConnection:
        """Connect and log in with a persistent session; raise `ConnectionLost`."""
        connect = mqtt5.ConnectPacket(
            client_id,
            username=username,
            password=password.encode(),
            clean_start=False,
            keep_alive=keep_alive,
            session_expiry_interval=session_expiry,
            # The broker sends at most this many unacknowledged messages.
            receive_max=receive_max,
        )
        try:
            async with asyncio.timeout(connect_within):
                reader, writer = await asyncio.open_connection(host, port)
                try:
                    writer.write(connect.write())
                    connack, rest = await _read_first(reader)
                except BaseException:
                    writer.close()
                    raise
        except (OSError, TimeoutError, ValueError) as exc:
            raise ConnectionLost(f"cannot connect to {host}:{port}: {exc!r}") from exc
        if not isinstance(connack, mqtt5.ConnAckPacket):
            writer.close()
            raise ConnectionLost(f"the broker answered CONNECT with {type(connack).__name__}")
        if connack.reason_code != mqtt5.ConnAckReasonCode.SUCCESS:
            writer.close()
            raise ConnectionLost(f"the broker refused the connection: {connack.reason_code.name}")
        window = min(outbound_window, connack.receive_max)
        keep = connack.server_keep_alive if connack.server_keep_alive is not None else keep_alive
        connection = cls(reader, writer, keep_alive=keep, outbound_window=window)
        connection._start(rest)
        return connection

    def _start(self, rest: bytes) -> None:
        self._tasks.append(asyncio.create_task(self._read_loop(rest), name="mosquitto-read"))
        if self._keep_alive > 0:
            self._tasks.append(asyncio.create_task(self._pinger(), name="mosquitto-ping"))

    @property
    def alive(self) -> bool:
        return self._lost is None

    async def close(self) -> None:
        """Log out (the session stays with the broker) and close the socket."""
        if self._lost is None:
            with contextlib.suppress(OSError, RuntimeError):
                self._writer.write(mqtt5.DisconnectPacket().write())
        self._fail(ConnectionLost("the connection was closed"))
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        with contextlib.suppress(OSError, TimeoutError):
            async with asyncio.timeout(1.0):
                await self._writer.wait_closed()

    # -- inbound ---------------------------------------------------------------------

    async def messages(self) -> list[mqtt5.PublishPacket]:
        """Every PUBLISH received since the last call (at least one); raise `ConnectionLost`."""
        while True:
            if self._lost is not None:
                raise self._lost  # what arrived unacknowledged is delivered again
            if self._inbox:
                break
            self._arrived.clear()
            await self._arrived.wait()
        batch, self._inbox = self._inbox, []
        return batch

    def ack(self, packet_ids: list[int]) -> None:
        """Send the PUBACKs of these messages in one write (nothing once the connection is gone)."""
        if packet_ids and self._lost is None:
            self._write(b"".join(mqtt5.PubAckPacket(pid).write() for pid in packet_ids))

    # -- outbound --------------------------------------------------------------------

    async def subscribe(self, pattern: str, *, qos: int) -> int:
        """Subscribe to one filter; the broker's reason code (the granted QoS, or a refusal)."""
        packet_id = self._next_id()
        topic = mqtt5.TopicFilter(pattern, max_qos=mqtt5.QoS(qos))
        suback = await self._request(packet_id, mqtt5.SubscribePacket(packet_id, [topic]))
        assert isinstance(suback, mqtt5.SubAckPacket)
        return int(suback.reason_codes[0])

    async def publish(
        self,
        topic: str,
        payload: bytes,
        *,
        content_type: str | None = None,
        user_properties: list[tuple[str, str]] | None = None,
        ack_within: float,
    ) -> None:
        """Publish at QoS 1 and return once the broker acknowledged it; raise `ConnectionLost`
        (also when the broker refused it or did not answer in time)."""
        async with self._window:
            packet_id = self._next_id()
            packet = mqtt5.PublishPacket(
                topic, payload, qos=mqtt5.QoS.AT_LEAST_ONCE, packet_id=packet_id,
                content_type=content_type, user_properties=user_properties,
            )  # fmt: skip
            try:
                async with asyncio.timeout(ack_within):
                    puback = await self._request(packet_id, packet)
            except TimeoutError as exc:
                raise ConnectionLost(f"no PUBACK for a message on {topic} in time") from exc
        assert isinstance(puback, mqtt5.PubAckPacket)
        if int(puback.reason_code) >= 0x80:
            raise ConnectionLost(
                f"the broker refused a message on {topic}: {puback.reason_code.name}"
            )

    def _next_id(self) -> int:
        # At most 65,535 requests await an answer at once (the outbound window is smaller).
        while (packet_id := next(self._ids)) in self._waiting:
            pass
        return packet_id

    async def _request(
        self, packet_id: int, packet: mqtt5.PublishPacket | mqtt5.SubscribePacket
    ) -> mqtt5.Packet:
        if self._lost is not None:
            raise self._lost
        answer: asyncio.Future[mqtt5.Packet] = asyncio.get_running_loop().create_future()
        self._waiting[packet_id] = answer
        try:
            self._write(packet.write())
            return await answer
        finally:
            self._waiting.pop(packet_id, None)

    def _write(self, data: bytes) -> None:
        if self._lost is not None:
            raise self._lost
        try:
            self._writer.write(data)
        except (OSError, RuntimeError) as exc:
            error = ConnectionLost(f"writing to the broker failed: {exc!r}")
            self._fail(error)
            raise error from exc

    # -- the connection's own tasks ----------------------------------------------------

    async def _read_loop(self, rest: bytes) -> None:
        buffer = bytearray(rest)
        try:
            while True:
                if buffer:
                    with memoryview(buffer) as view:
                        taken = self._dispatch(view)
                    del buffer[:taken]
                async with asyncio.timeout(self._keep_alive * 1.5 if self._keep_alive else None):
                    chunk = await self._reader.read(_READ_SIZE)
                if not chunk:
                    raise ConnectionLost("the broker closed the connection")
                buffer += chunk
        except ConnectionLost as exc:
            self._fail(exc)
        except TimeoutError:
            self._fail(ConnectionLost("the broker sent nothing for 1.5 keep-alive intervals"))
        except (OSError, ValueError) as exc:
            self._fail(ConnectionLost(f"reading from the broker failed: {exc!r}"))

    def _dispatch(self, view: memoryview) -> int:
        """Take every whole packet at the start of `view`; the number of bytes taken."""
        offset, end, inbox = 0, len(view), self._inbox
        received = len(inbox)
        while (size := _packet_size(view, offset, end)) is not None:
            # Only the packet's own bytes: `mqtt5` copies a writable buffer it is given,
            # and the whole rest of a 256 KiB read for every packet cost 10 µs each.
            packet, _ = mqtt5.read(view[offset : offset + size])
            offset += size
            if isinstance(packet, mqtt5.PublishPacket):
                inbox.append(packet)
            elif isinstance(packet, mqtt5.PubAckPacket | mqtt5.SubAckPacket):
                waiter = self._waiting.get(packet.packet_id)
                if waiter is not None and not waiter.done():
                    waiter.set_result(packet)
            elif isinstance(packet, mqtt5.PingRespPacket):
                pass
            elif isinstance(packet, mqtt5.DisconnectPacket):
                raise ConnectionLost(f"the broker disconnected: {packet.reason_code.name}")
            else:
                # QoS 2 and AUTH are never asked for: a broker sending them is not ours.
                raise ConnectionLost(f"unexpected {type(packet).__name__} from the broker")
        if len(inbox) > received:
            self._arrived.set()
        return offset

    async def _pinger(self) -> None:
        while self._lost is None:
            await asyncio.sleep(self._keep_alive / 2)
            with contextlib.suppress(ConnectionLost):
                self._write(mqtt5.PingReqPacket().write())

    def _fail(self, error: ConnectionLost) -> None:
        if self._lost is not None:
            return
        self._lost = error
        self._writer.close()
        self._arrived.set()
        for waiter in self._waiting.values():
            if not waiter.done():
                waiter.set_exception(error)


def _packet_size(view: memoryview, offset: int, end: int) -> int | None:
    """The size of the whole packet at `offset`; None until all of it has arrived."""
    length, shift, at = 0, 0, offset + 1
    while True:
        if at >= end:
            return None
        byte = view[at]
        length |= (byte & 0x7F) << shift
        at += 1
        if byte < 0x80:
            break
        shift += 7
        if shift > 21:
            raise ValueError("malformed remaining length")
    size = at - offset + length
    return size if offset + size <= end else None


async def _read_first(reader: asyncio.StreamReader) -> tuple[mqtt5.Packet, bytes]:
    """The first packet on a new connection, and whatever came after it."""
    buffer = bytearray()
    while True:
        chunk = await reader.read(_READ_SIZE)
        if not chunk:
            raise OSError("the broker closed the connection")
        buffer += chunk
        try:
            packet, size = mqtt5.read(memoryview(buffer))
        except IndexError:
            continue
        return packet, bytes(buffer[size:])
