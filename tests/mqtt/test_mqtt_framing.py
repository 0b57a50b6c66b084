"""The packet framing in front of amqtt: pure functions, checked by example."""

from __future__ import annotations

import pytest

from shopfloor.adapters.mqtt._framing import ProtocolViolation, fixed_header, publish_violation

from .mqtt_wire import publish_packet


@pytest.mark.parametrize(
    ("data", "header"),
    [
        (b"\x30", None),
        (b"\x30\x00", (2, 0)),
        (b"\x30\x7f", (2, 127)),
        (b"\x30\x80", None),
        (b"\x30\x80\x01", (3, 128)),
        (b"\x30\xff\xff\xff\x7f", (5, 268_435_455)),
        (b"\x30\xff\xff\xff", None),
    ],
)
def test_fixed_headers_are_read_as_far_as_they_go(data: bytes, header: object) -> None:
    assert fixed_header(data) == header


def test_a_fifth_length_byte_is_a_violation() -> None:
    with pytest.raises(ProtocolViolation):
        fixed_header(b"\x30\xff\xff\xff\xff\x01")


@pytest.mark.parametrize(
    ("packet", "problem"),
    [
        (publish_packet("channels/c/messages", b"x", qos=1), None),
        (publish_packet("channels/c/messages/a", b""), None),
        (publish_packet("channels/c/messages/+", b"x", qos=1), "wildcard"),
        (publish_packet("channels/#", b"x"), "wildcard"),
        (b"\x36" + publish_packet("t", b"x")[1:], "QoS 3"),
        (b"\x30\x03\x00\x09a", "longer than the packet"),
        (b"\x32\x03\x00\x01a", "longer than the packet"),  # QoS 1 without a packet id
        (b"\x30\x01\x00", "without a topic"),
    ],
)
def test_publish_violations(packet: bytes, problem: str | None) -> None:
    header = fixed_header(packet)
    assert header is not None
    found = publish_violation(packet, header[0])
    assert found == problem if problem is None else problem in (found or "")
