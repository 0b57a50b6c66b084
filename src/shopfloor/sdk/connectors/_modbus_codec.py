"""Modbus addresses and register values: pure parsing, encoding and decoding.

    coil:1              coil 1 (function codes 1, 5); `coil:00001` too
    discrete:10001      discrete input 1 (function code 2, read-only); `discrete:1` too
    input:30001         input register 1 (function code 4, read-only); `input:1` too
    holding:40001       holding register 1 (function codes 3, 6, 16); `holding:1` too
    holding:40001:float32          a type over consecutive registers: int16, uint16 (the
                                   default), int32, uint32, float32, int64, uint64, float64
    holding:40001:float32:little   the word order: big (the default: the first register
                                   holds the high word) or little

Numbers are the one-based references of device manuals; the table's leading digit
(4xxxx or 4xxxxx for holding registers) may be given or left out, so `holding:40001`
and `holding:1` are both the register at protocol offset 0. The 6-digit form reaches
offsets up to 65535 (`holding:465536`).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

from ._errors import InvalidAddress, WriteRefused

__all__ = ["DATA_TYPES", "TABLES", "ModbusAddress", "decode_registers", "encode_registers"]

#: table name → (reference digit, holds bits, writable)
TABLES = {
    "coil": (0, True, True),
    "discrete": (1, True, False),
    "input": (3, False, False),
    "holding": (4, False, True),
}
#: data type → (struct format, registers)
DATA_TYPES = {
    "int16": ("h", 1),
    "uint16": ("H", 1),
    "int32": ("i", 2),
    "uint32": ("I", 2),
    "float32": ("f", 2),
    "int64": ("q", 4),
    "uint64": ("Q", 4),
    "float64": ("d", 4),
}
WORD_ORDERS = ("big", "little")
MAX_OFFSET = 65535


@dataclass(frozen=True, slots=True)
class ModbusAddress:
    text: str
    table: str
    offset: int  # zero-based, as on the wire
    data_type: str = "uint16"
    word_order: str = "big"

    @property
    def bits(self) -> bool:
        return TABLES[self.table][1]

    @property
    def writable(self) -> bool:
        return TABLES[self.table][2]

    @property
    def count(self) -> int:
        """Registers (or bits) one value takes."""
        return 1 if self.bits else DATA_TYPES[self.data_type][1]

    @classmethod
    def parse(cls, text: str, *, word_order: str = "big") -> ModbusAddress:
        table, _, rest = text.strip().partition(":")
        number, _, rest = rest.partition(":")
        data_type, _, order = rest.partition(":")
        if table not in TABLES:
            raise InvalidAddress(
                f"Modbus address {text!r}: the table is one of {', '.join(TABLES)}"
            )
        if not number.isdigit():
            raise InvalidAddress(f"Modbus address {text!r}: {number!r} is not a reference")
        offset = _offset(TABLES[table][0], number)
        if offset is None:
            raise InvalidAddress(f"Modbus address {text!r}: no {table} has that number")
        bits = TABLES[table][1]
        if bits and (data_type or order):
            raise InvalidAddress(f"Modbus address {text!r}: a {table} is one bit, untyped")
        data_type = data_type or "uint16"
        if data_type not in DATA_TYPES:
            raise InvalidAddress(
                f"Modbus address {text!r}: the type is one of {', '.join(DATA_TYPES)}"
            )
        order = order or word_order
        if order not in WORD_ORDERS:
            raise InvalidAddress(f"Modbus address {text!r}: the word order is big or little")
        address = cls(text, table, offset, data_type, order)
        if offset + address.count - 1 > MAX_OFFSET:
            raise InvalidAddress(f"Modbus address {text!r} runs past the last register")
        return address


def _offset(digit: int, number: str) -> int | None:
    """The zero-based offset of a one-based reference, with or without its table digit."""
    value = int(number)
    if digit and len(number) in (5, 6) and number[0] == str(digit):
        value -= digit * 10 ** (len(number) - 1)
    offset = value - 1
    return offset if 0 <= offset <= MAX_OFFSET else None


def decode_registers(address: ModbusAddress, registers: list[int]) -> int | float:
    """The value `registers` (16-bit words, in the order read) hold for `address`."""
    words = registers[: address.count]
    if address.word_order == "little":
        words = words[::-1]
    raw = b"".join(word.to_bytes(2, "big") for word in words)
    value: int | float = struct.unpack(f">{DATA_TYPES[address.data_type][0]}", raw)[0]
    return value


def encode_registers(address: ModbusAddress, value: Any) -> list[int]:
    """The registers that hold `value` at `address`; `WriteRefused` when it does not fit."""
    code = DATA_TYPES[address.data_type][0]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise WriteRefused(f"{address.text} takes a number, not {type(value).__name__}")
    if code not in "fd":
        if isinstance(value, float) and not value.is_integer():
            raise WriteRefused(f"{address.text} is {address.data_type}, {value} is not whole")
        value = int(value)
    try:
        raw = struct.pack(f">{code}", value)
    except (struct.error, OverflowError) as exc:
        raise WriteRefused(f"{value} does not fit {address.data_type} at {address.text}") from exc
    words = [int.from_bytes(raw[i : i + 2], "big") for i in range(0, len(raw), 2)]
    return words[::-1] if address.word_order == "little" else words
