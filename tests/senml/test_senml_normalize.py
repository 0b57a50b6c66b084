"""`normalize` picks the parser from the content type an adapter received."""

from __future__ import annotations

import json

import cbor2
import pytest

from shopfloor.senml import (
    EARLIEST_TIME,
    LATEST_TIME,
    SUPPORTED_CONTENT_TYPES,
    Record,
    SenMLError,
    normalize,
)

NOW = 1_700_000_000.0
SENML_JSON = json.dumps([{"n": "dev:temp", "v": 20.5}]).encode()
SENML_CBOR = cbor2.dumps([{0: "dev:temp", 2: 20.5}])
EXPECTED = [Record(name="dev:temp", time=NOW, value=20.5)]


@pytest.mark.parametrize(
    ("payload", "content_type"),
    [
        (SENML_JSON, "application/senml+json"),
        (SENML_JSON, "Application/SenML+JSON; charset=utf-8"),
        (SENML_CBOR, "application/senml+cbor"),
        (SENML_JSON, "application/json"),
        (json.dumps({"dev:temp": 20.5}).encode(), " application/json ;charset=UTF-8"),
    ],
)
def test_each_supported_type_reaches_its_parser(payload: bytes, content_type: str) -> None:
    assert normalize(payload, content_type, now=NOW) == EXPECTED


def test_plain_json_is_flattened() -> None:
    records = normalize(b'{"line": {"speed": 3}}', "application/json", now=NOW)

    assert records == [Record(name="line.speed", time=NOW, value=3)]


def test_the_supported_types_are_published() -> None:
    assert sorted(SUPPORTED_CONTENT_TYPES) == [
        "application/json",
        "application/senml+cbor",
        "application/senml+json",
    ]


@pytest.mark.parametrize(
    "content_type", ["application/cbor", "text/plain", "", "application/senml+xml", "json"]
)
def test_other_types_are_refused(content_type: str) -> None:
    with pytest.raises(SenMLError) as caught:
        normalize(SENML_JSON, content_type, now=NOW)

    assert caught.value.code == "unsupported_content_type"
    assert "application/senml+json" in str(caught.value)


def test_the_record_limit_is_passed_on() -> None:
    pack = json.dumps([{"n": "x", "v": i} for i in range(3)]).encode()

    with pytest.raises(SenMLError) as caught:
        normalize(pack, "application/senml+json", now=NOW, max_records=2)

    assert caught.value.code == "too_many_records"


def test_a_cbor_payload_labelled_as_json_is_refused_not_misread() -> None:
    with pytest.raises(SenMLError) as caught:
        normalize(SENML_CBOR, "application/senml+json", now=NOW)

    assert caught.value.code == "invalid_json"


@pytest.mark.parametrize(
    ("payload", "content_type"),
    [
        (b'[{"n": "x", "vs": "t", "t": 1e10}]', "application/senml+json"),
        (b'[{"bt": 1e300, "n": "x", "v": 1}]', "application/senml+json"),
        (b'[{"bt": 1e308, "n": "x", "v": 1, "t": 1e308}]', "application/senml+json"),
        (b'[{"n": "x", "v": 1, "t": -1e11}]', "application/senml+json"),  # relative
        (b'[{"n": "x", "v": 1, "t": 1e400}]', "application/senml+json"),  # inf
        (cbor2.dumps([{6: 1e10, 0: "x", 2: 1.0}]), "application/senml+cbor"),
        (b'{"t": 1e10, "temp": 20}', "application/json"),
    ],
)
def test_times_no_store_can_hold_are_refused(payload: bytes, content_type: str) -> None:
    with pytest.raises(SenMLError) as caught:
        normalize(payload, content_type, now=NOW)

    assert caught.value.code == "time_out_of_range"
    assert "1677-09-21" in caught.value.message and "2262-04-11" in caught.value.message


@pytest.mark.parametrize("time", [EARLIEST_TIME, LATEST_TIME])
def test_the_ends_of_the_storable_range_are_accepted(time: float) -> None:
    # Negative times are relative to now (RFC 8428 section 4.5.3).
    sent = time if time > 0 else time - NOW
    payload = json.dumps([{"n": "x", "v": 1, "t": sent}]).encode()

    assert normalize(payload, "application/senml+json", now=NOW)[0].time == time


def test_every_store_keeps_the_range_the_normalizer_accepts() -> None:
    from shopfloor import storage

    assert (storage.EARLIEST_TIME, storage.LATEST_TIME) == (EARLIEST_TIME, LATEST_TIME)
    # InfluxDB's nanoseconds are signed 64-bit, with the extremes reserved.
    assert EARLIEST_TIME * 1e9 >= -(2**63) + 2 and LATEST_TIME * 1e9 + 999 <= 2**63 - 2


@pytest.mark.parametrize(
    ("document", "content_type"),
    [
        ([{"n": "n" * 1025, "v": 1}], "application/senml+json"),
        ([{"bn": "b" * 1000, "n": "n" * 25, "v": 1}], "application/senml+json"),
        ({"k" * 1025: 1}, "application/json"),
        ({"a": {"é" * 600: 1}}, "application/json"),  # counted in UTF-8 bytes
    ],
)
def test_names_are_bounded_in_length(document: object, content_type: str) -> None:
    with pytest.raises(SenMLError) as caught:
        normalize(json.dumps(document).encode(), content_type, now=NOW)

    assert caught.value.code == "name_too_long"
    assert "1024" in caught.value.message


def test_a_name_of_the_longest_length_is_accepted() -> None:
    payload = json.dumps([{"bn": "b" * 1000, "n": "n" * 24, "v": 1}]).encode()

    assert len(normalize(payload, "application/senml+json", now=NOW)[0].name) == 1024
