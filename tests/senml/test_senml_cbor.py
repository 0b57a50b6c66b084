"""`application/senml+cbor` (RFC 8428 section 6) resolves exactly like the JSON form."""

from __future__ import annotations

import json
from decimal import Decimal

import cbor2
import pytest

from shopfloor.senml import Record, SenMLError, parse_senml_cbor, parse_senml_json

NOW = 1_700_000_000.0

# RFC 8428 table 4.
LABELS = {
    "bver": -1,
    "bn": -2,
    "bt": -3,
    "bu": -4,
    "bv": -5,
    "bs": -6,
    "n": 0,
    "u": 1,
    "v": 2,
    "vs": 3,
    "vb": 4,
    "s": 5,
    "t": 6,
    "ut": 7,
    "vd": 8,
}

# The dump printed in RFC 8428 section 6 (the second example of section 5.1.2).
RFC_EXAMPLE = bytes.fromhex(
    "87 a7 21 78 1b 75 72 6e 3a 64 65 76 3a 6f 77 3a "
    "31 30 65 32 30 37 33 61 30 31 30 38 30 30 36 3a "
    "22 fb 41 d3 03 a1 5b 00 10 62 23 61 41 20 05 00 "
    "67 76 6f 6c 74 61 67 65 01 61 56 02 fb 40 5e 06 "
    "66 66 66 66 66 a3 00 67 63 75 72 72 65 6e 74 06 "
    "24 02 fb 3f f3 33 33 33 33 33 33 a3 00 67 63 75 "
    "72 72 65 6e 74 06 23 02 fb 3f f4 cc cc cc cc cc "
    "cd a3 00 67 63 75 72 72 65 6e 74 06 22 02 fb 3f "
    "f6 66 66 66 66 66 66 a3 00 67 63 75 72 72 65 6e "
    "74 06 21 02 f9 3e 00 a3 00 67 63 75 72 72 65 6e "
    "74 06 20 02 fb 3f f9 99 99 99 99 99 9a a3 00 67 "
    "63 75 72 72 65 6e 74 06 00 02 fb 3f fb 33 33 33 "
    "33 33 33"
)


def cbor_pack(entries: list[dict[str, object]]) -> bytes:
    return cbor2.dumps([{LABELS[label]: value for label, value in e.items()} for e in entries])


def parse(entries: list[dict[str, object]], *, max_records: int = 10_000) -> list[Record]:
    return parse_senml_cbor(cbor_pack(entries), now=NOW, max_records=max_records)


def rejection(payload: bytes, *, max_records: int = 10_000) -> SenMLError:
    with pytest.raises(SenMLError) as caught:
        parse_senml_cbor(payload, now=NOW, max_records=max_records)
    return caught.value


def test_the_rfc_dump_resolves_to_voltage_and_six_currents() -> None:
    records = parse_senml_cbor(RFC_EXAMPLE, now=NOW)

    base_time = 1276020076.001
    assert records[0] == Record(
        name="urn:dev:ow:10e2073a0108006:voltage", unit="V", time=base_time, value=120.1
    )
    assert [(r.name, r.unit) for r in records[1:]] == [
        ("urn:dev:ow:10e2073a0108006:current", "A")
    ] * 6
    assert [r.time for r in records[1:]] == pytest.approx([base_time - s for s in range(5, -1, -1)])
    assert [r.value for r in records[1:]] == pytest.approx([1.2, 1.3, 1.4, 1.5, 1.6, 1.7])


def test_integer_labels_give_the_same_records_as_json() -> None:
    entries: list[dict[str, object]] = [
        {"bn": "press:", "bt": 1.5e9, "bu": "bar", "bv": 1, "bs": 10, "bver": 5, "n": "a", "v": 2},
        {"n": "b", "t": -1, "s": 3, "ut": 60},
        {"n": "c", "vs": "ok"},
        {"n": "d", "vb": True},
    ]
    assert parse(entries) == parse_senml_json(json.dumps(entries).encode(), now=NOW)


def test_data_values_are_byte_strings_stored_as_base64url() -> None:
    (record,) = parse([{"n": "frame", "vd": b"\xfb\xff\x00hi"}])

    assert record.data_value == "-_8AaGk"


def test_text_labels_and_integer_labels_can_be_mixed() -> None:
    payload = cbor2.dumps([{-2: "dev:", "n": "x", 2: 1.5, "vendor": 1, 99: "ignored"}])

    assert parse_senml_cbor(payload, now=NOW) == [Record(name="dev:x", time=NOW, value=1.5)]


def test_half_floats_big_integers_and_decimal_fractions_are_numbers() -> None:
    records = parse(
        [
            {"n": "half", "v": 1.5},
            {"n": "big", "v": 2**70},
            {"n": "decimal", "v": Decimal("273.15")},
        ]
    )

    assert [r.value for r in records] == [1.5, float(2**70), 273.15]


def test_a_self_described_indefinite_array_is_accepted() -> None:
    entry = cbor2.dumps({0: "x", 2: 7})
    payload = b"\xd9\xd9\xf7" + b"\x9f" + entry + entry + b"\xff"

    assert [r.value for r in parse_senml_cbor(payload, now=NOW)] == [7, 7]


def test_a_lone_map_is_read_as_a_one_entry_pack() -> None:
    payload = cbor2.dumps({0: "x", 3: "hello"})

    assert parse_senml_cbor(payload, now=NOW) == [Record(name="x", time=NOW, string_value="hello")]


def test_ten_thousand_records_normalise() -> None:
    entries: list[dict[str, object]] = [{"n": f"s{i}", "v": i} for i in range(10_000)]

    records = parse(entries)

    assert len(records) == 10_000
    assert records[-1] == Record(name="s9999", time=NOW, value=9999)


@pytest.mark.parametrize(
    ("entry", "fragment"),
    [
        ({"n": "x", "vd": "aGk"}, "'vd' must be a byte string, not a string"),
        ({"n": "x", "vs": b"bytes"}, "'vs' must be a string, not a byte string"),
        ({"n": "x", "v": float("nan")}, "'v' must be a finite number"),
        ({"n": "x", "v": float("inf")}, "'v' must be a finite number"),
        ({"n": "x", "v": Decimal("NaN")}, "'v' must be a finite number"),
        ({"n": "x", "t": cbor2.CBORTag(1, 1.5e9), "v": 1}, "'t' must be a number"),
        ({"n": "x", "vb": None, "v": cbor2.undefined}, "'v' must be a number"),
        ({"n": b"x", "v": 1}, "'n' must be a string, not a byte string"),
        ({"n": "x", "ut": -5, "v": 1}, "'ut' must not be negative"),
    ],
)
def test_wrongly_typed_fields_are_rejected(entry: dict[str, object], fragment: str) -> None:
    error = rejection(cbor_pack([{"n": "ok", "v": 0}, entry]))

    assert error.code == "invalid_senml"
    assert "entry 1" in str(error)
    assert fragment in str(error)


@pytest.mark.parametrize(
    ("payload", "fragment"),
    [
        (cbor2.dumps([{2: 1, "v": 2, 0: "x"}]), "label 'v' appears twice"),
        (cbor2.dumps([{b"n": "x", 2: 1}]), "must be an integer or a string, not a byte string"),
        (cbor2.dumps([{True: "x", 2: 1}]), "not a boolean"),
    ],
)
def test_malformed_labels_are_rejected(payload: bytes, fragment: str) -> None:
    error = rejection(payload)

    assert error.code == "invalid_senml"
    assert fragment in str(error)


def test_must_understand_text_labels_are_refused() -> None:
    assert rejection(cbor2.dumps([{0: "x", 2: 1, "new_": 1}])).code == "unsupported_senml_label"


def test_a_newer_version_is_refused() -> None:
    assert rejection(cbor_pack([{"bver": 11, "n": "x", "v": 1}])).code == (
        "unsupported_senml_version"
    )


@pytest.mark.parametrize(
    "payload",
    [
        b"\xff",
        b"\x81",
        b"\x81\xa1\x00",
        b"\x81\x61\xff",  # text string that is not UTF-8
        b"\x81\xa2\x00\x61x\x00\x61y",  # duplicate map key
        cbor2.dumps([{0: "x", 2: 1}]) + b"\x00",  # trailing data
        b"\x81" * 40 + b"\x80",
    ],
)
def test_malformed_cbor_is_refused(payload: bytes) -> None:
    assert rejection(payload).code == "invalid_cbor"


def test_an_empty_payload_is_refused() -> None:
    assert rejection(b"").code == "empty_payload"


def test_too_many_records_are_refused_from_the_array_header() -> None:
    # The header claims 2**32 entries and no entry follows: only the header was read.
    assert rejection(b"\x9a\x00\x01\x00\x00").code == "too_many_records"


def test_too_many_records_in_an_indefinite_array_are_refused() -> None:
    entry = cbor2.dumps({0: "x", 2: 1})

    error = rejection(b"\x9f" + entry * 3 + b"\xff", max_records=2)

    assert error.code == "too_many_records"
