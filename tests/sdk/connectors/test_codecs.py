"""The pure parts: TCP framing, Modbus addresses and registers, JSON pointers, URLs."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shopfloor.sdk.connectors import (
    Framing,
    HttpConnector,
    InvalidAddress,
    InvalidConnectorUrl,
    ModbusConnector,
    MqttConnector,
    NotSupported,
    OpcUaConnector,
    TcpConnector,
    WriteRefused,
    connect,
    connector_protocols,
)
from shopfloor.sdk.connectors._framing import FrameDecoder, FramingError
from shopfloor.sdk.connectors._modbus_codec import (
    ModbusAddress,
    decode_registers,
    encode_registers,
)
from shopfloor.sdk.connectors._payload import parse_pointer, resolve_pointer

FRAMINGS = ["line", "delimiter:03", "delimiter:0d0a", "length-prefixed", "length-prefixed:1"]


@pytest.mark.parametrize("spec", FRAMINGS)
@given(payloads=st.lists(st.binary(max_size=200), max_size=5), cut=st.integers(0, 50))
def test_frames_survive_any_split(spec: str, payloads: list[bytes], cut: int) -> None:
    framing = Framing.parse(spec)
    payloads = [p.replace(framing.delimiter, b"") if framing.delimiter else p for p in payloads]
    if spec == "line":
        payloads = [p.rstrip(b"\r") for p in payloads]
    stream = b"".join(framing.encode(p) for p in payloads)
    decoder = FrameDecoder(framing)
    frames = decoder.feed(stream[:cut]) + decoder.feed(stream[cut:])
    assert frames == payloads


def test_line_framing_drops_carriage_returns_and_fixed_frames_have_one_size() -> None:
    assert FrameDecoder(Framing.parse("line")).feed(b"21.5\r\nOK\n") == [b"21.5", b"OK"]
    fixed = Framing.parse("fixed:4")
    assert FrameDecoder(fixed).feed(b"abcdefgh") == [b"abcd", b"efgh"]
    with pytest.raises(FramingError):
        fixed.encode(b"abc")


def test_a_frame_over_the_limit_is_refused() -> None:
    framing = Framing.parse("length-prefixed:2", max_frame=8)
    with pytest.raises(FramingError):
        FrameDecoder(framing).feed(b"\x00\x09")
    with pytest.raises(FramingError):
        FrameDecoder(Framing.parse("line", max_frame=4)).feed(b"12345")


@pytest.mark.parametrize(
    "spec", ["", "lines", "delimiter:", "delimiter:zz", "length-prefixed:3", "fixed:0", "fixed:x"]
)
def test_bad_framings(spec: str) -> None:
    with pytest.raises(FramingError):
        Framing.parse(spec)


@pytest.mark.parametrize(
    ("text", "table", "offset"),
    [
        ("holding:40001", "holding", 0),
        ("holding:1", "holding", 0),
        ("holding:400001", "holding", 0),
        ("holding:465536", "holding", 65535),
        ("holding:10001", "holding", 10000),
        ("input:30010", "input", 9),
        ("coil:1", "coil", 0),
        ("coil:00017", "coil", 16),
        ("discrete:10001", "discrete", 0),
        ("discrete:2", "discrete", 1),
    ],
)
def test_modbus_references(text: str, table: str, offset: int) -> None:
    address = ModbusAddress.parse(text)
    assert (address.table, address.offset) == (table, offset)


@pytest.mark.parametrize(
    "text",
    ["register:1", "holding:x", "holding:0", "holding:40001:float16", "coil:1:bool",
     "holding:40001:int32:middle", "holding:465536:int32", "holding"],
)  # fmt: skip
def test_bad_modbus_addresses(text: str) -> None:
    with pytest.raises(InvalidAddress) as refused:
        ModbusAddress.parse(text)
    assert refused.value.code == "invalid_address"


@pytest.mark.parametrize(
    ("text", "value", "registers"),
    [
        ("holding:1", 1200, [1200]),
        ("holding:1:int16", -2, [0xFFFE]),
        ("holding:1:float32", 20.5, [0x41A4, 0x0000]),
        ("holding:1:float32:little", 20.5, [0x0000, 0x41A4]),
        ("holding:1:uint32", 0x12345678, [0x1234, 0x5678]),
        ("holding:1:int64:little", -1, [0xFFFF] * 4),
    ],
)
def test_modbus_registers(text: str, value: float, registers: list[int]) -> None:
    address = ModbusAddress.parse(text)
    assert encode_registers(address, value) == registers
    assert decode_registers(address, registers) == value


def test_the_connectors_word_order_is_the_default_of_its_addresses() -> None:
    assert ModbusAddress.parse("holding:1:float32", word_order="little").word_order == "little"
    assert ModbusAddress.parse("holding:1:float32:big", word_order="little").word_order == "big"


@given(st.floats(width=32, allow_nan=False))
def test_float32_round_trips(value: float) -> None:
    address = ModbusAddress.parse("holding:1:float32:little")
    assert decode_registers(address, encode_registers(address, value)) == value


@pytest.mark.parametrize(
    ("text", "value"),
    [("holding:1", 70000), ("holding:1", -1), ("holding:1", 1.5), ("holding:1", "7"),
     ("holding:1:float32", 1e39), ("holding:1", True)],
)  # fmt: skip
def test_values_a_register_cannot_hold(text: str, value: object) -> None:
    with pytest.raises(WriteRefused):
        encode_registers(ModbusAddress.parse(text), value)


def test_json_pointers() -> None:
    document = {"a": [{"b/c": 1, "~d": 2}], "": 3}
    assert resolve_pointer(document, parse_pointer("")) == document
    assert resolve_pointer(document, parse_pointer("/a/0/b~1c")) == 1
    assert resolve_pointer(document, parse_pointer("/a/0/~0d")) == 2
    assert resolve_pointer(document, parse_pointer("/")) == 3
    for missing in ("/x", "/a/1", "/a/01", "/a/0/b~1c/z"):
        with pytest.raises(LookupError):
            resolve_pointer(document, parse_pointer(missing))
    with pytest.raises(ValueError):
        parse_pointer("a")


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("opc.tcp://press:4840/ua?timeout=3", OpcUaConnector),
        ("modbus+tcp://plc:502?unit=3&word_order=little", ModbusConnector),
        ("mqtt://user:secret@broker:1883?qos=0", MqttConnector),
        ("http://press:8080/api?health=/health", HttpConnector),
        ("https://press", HttpConnector),
        ("tcp://scale:9000?framing=length-prefixed:2", TcpConnector),
    ],
)
def test_connect_picks_the_connector_of_the_scheme(url: str, kind: type) -> None:
    connector = connect(url)
    assert type(connector) is kind
    assert "secret" not in connector.name and "?" not in connector.name


def test_options_reach_the_connector() -> None:
    modbus = connect("modbus+tcp://plc?unit=3&word_order=little&heartbeat=2&timeout=1")
    assert isinstance(modbus, ModbusConnector)
    assert (modbus.port, modbus.unit, modbus.word_order) == (502, 3, "little")
    assert (modbus.options.heartbeat, modbus.options.timeout) == (2.0, 1.0)
    mqtt = connect("mqtt://user:p%40ss@broker?retain=yes&qos=2")
    assert isinstance(mqtt, MqttConnector)
    assert (mqtt.retain, mqtt.qos, mqtt._password) == (True, 2, "p@ss")
    assert {"opcua", "opc.tcp", "modbus", "mqtt", "http", "https", "tcp"} <= set(
        connector_protocols()
    )


@pytest.mark.parametrize(
    "url",
    [
        "ftp://host",
        "press:4840",
        "modbus+tcp://plc?unit=300",
        "modbus+tcp://plc?unti=1",
        "modbus+tcp://plc?heartbeat_address=holding:x",
        "modbus+tcp://plc/path",
        "mqtt://broker?qos=3",
        "mqtt://broker?retain=maybe",
        "tcp://host",
        "tcp://host:9000?framing=xml",
        "tcp://host:9000?encoding=klingon",
        "http://press?health=health",
        "http://press?timeout=0",
        "http://press?reconnect_delay=2&reconnect_max=1",
        "opc.tcp://:4840",
        "http://press:99999",
    ],
)
def test_bad_urls_have_a_stable_code(url: str) -> None:
    with pytest.raises(InvalidConnectorUrl) as refused:
        connect(url)
    assert refused.value.code == "invalid_connector_url"
    assert isinstance(refused.value, ValueError)


def test_addresses_are_checked_before_anything_is_sent() -> None:
    with pytest.raises(InvalidAddress):
        connect("opc.tcp://press:4840").subscribe(["ns=2;x=1"])
    with pytest.raises(InvalidAddress):
        connect("http://press").subscribe(["FETCH /status"])
    with pytest.raises(InvalidAddress):
        connect("mqtt://broker").subscribe(["a/#/b"])
    with pytest.raises(InvalidAddress):
        connect("tcp://scale:9000?framing=fixed:4").subscribe(["LONGER"])
    with pytest.raises(InvalidAddress):
        connect("tcp://scale:9000").subscribe([])


async def test_a_protocol_without_methods_says_so_at_once() -> None:
    for url in ("modbus+tcp://127.0.0.1:1", "mqtt://127.0.0.1:1"):
        async with connect(url) as connector:  # nothing listens there
            with pytest.raises(NotSupported):
                await connector.call("start", 900)
