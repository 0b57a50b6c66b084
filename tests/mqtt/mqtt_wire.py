"""Raw MQTT 3.1.1 packets, for the tests that need a client to misbehave on purpose."""

from __future__ import annotations

import asyncio

CONNACK_ACCEPTED = 0
DISCONNECT = b"\xe0\x00"


def _string(value: bytes) -> bytes:
    return len(value).to_bytes(2, "big") + value


def _remaining_length(length: int) -> bytes:
    encoded = bytearray()
    while True:
        length, digit = divmod(length, 128)
        encoded.append(digit | (0x80 if length else 0))
        if not length:
            return bytes(encoded)


def connect_packet(
    client_id: str,
    username: str,
    password: str,
    *,
    keepalive: int = 60,
    will: tuple[str, bytes] | None = None,
    clean_session: bool = True,
) -> bytes:
    flags = 0x80 | 0x40 | (0x02 if clean_session else 0)  # username, password, clean?
    payload = _string(client_id.encode())
    if will is not None:
        flags |= 0x04
        payload += _string(will[0].encode()) + _string(will[1])
    payload += _string(username.encode()) + _string(password.encode())
    body = _string(b"MQTT") + bytes([4, flags]) + keepalive.to_bytes(2, "big") + payload
    return b"\x10" + _remaining_length(len(body)) + body


def publish_packet(topic: str, payload: bytes, *, qos: int = 0, packet_id: int = 1) -> bytes:
    body = _string(topic.encode())
    if qos:
        body += packet_id.to_bytes(2, "big")
    body += payload
    return bytes([0x30 | qos << 1]) + _remaining_length(len(body)) + body


def puback_packet(packet_id: int) -> bytes:
    return b"\x40\x02" + packet_id.to_bytes(2, "big")


async def raw_connect(
    port: int,
    client_id: str,
    username: str,
    password: str,
    *,
    keepalive: int = 60,
    will: tuple[str, bytes] | None = None,
    clean_session: bool = True,
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, int]:
    """Open a TCP connection, send CONNECT, return the streams and the CONNACK return code."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    packet = connect_packet(
        client_id, username, password, keepalive=keepalive, will=will, clean_session=clean_session
    )
    writer.write(packet)
    await writer.drain()
    connack = await asyncio.wait_for(reader.readexactly(4), 10)
    assert connack[:2] == b"\x20\x02", connack
    return reader, writer, connack[3]
