"""The pure pieces of the Part 2 API: base64url identifiers, idShortPaths, the value-only
serialisation and `$metadata` on the metamodel's JSON."""

from __future__ import annotations

from typing import Any

import pytest

from shopfloor.aas import InvalidAasRequest
from shopfloor.aas.part2 import (
    decode_id,
    encode_id,
    format_path,
    metadata,
    parse,
    shaped,
    value_of,
    with_metadata,
    with_value,
)


@pytest.mark.parametrize(
    "identifier", ["https://example.org/Test_Submodel", "urn:x:1", "ä?/+=", "a", "ab", "abc"]
)
def test_identifiers_encode_without_padding_and_decode_leniently(identifier: str) -> None:
    encoded = encode_id(identifier)
    assert "=" not in encoded and "+" not in encoded and "/" not in encoded
    assert decode_id(encoded) == identifier
    padded = encoded + "=" * (-len(encoded) % 4)
    assert decode_id(padded) == identifier
    standard = padded.replace("-", "+").replace("_", "/")
    assert decode_id(standard) == identifier


@pytest.mark.parametrize("text", ["", "!!!", "a", "/w"])
def test_what_is_no_identifier_is_refused(text: str) -> None:
    with pytest.raises(InvalidAasRequest) as refused:
        decode_id(text)
    assert refused.value.code == "invalid_aas_identifier"


@pytest.mark.parametrize(
    ("text", "segments"),
    [
        ("Speed", ("Speed",)),
        ("Controls.start", ("Controls", "start")),
        ("Readings[2].value", ("Readings", 2, "value")),
        ("Matrix[0][11]", ("Matrix", 0, 11)),
        ("a-b_c.D9", ("a-b_c", "D9")),
    ],
)
def test_id_short_paths_parse_and_format_back(text: str, segments: tuple[Any, ...]) -> None:
    assert parse(text) == segments
    assert format_path(segments) == text


@pytest.mark.parametrize("text", ["", ".a", "a.", "a..b", "[0]", "a[x]", "a[0", "1a", "a b"])
def test_what_is_no_id_short_path_is_refused(text: str) -> None:
    with pytest.raises(InvalidAasRequest) as refused:
        parse(text)
    assert refused.value.code == "invalid_id_short_path"


def _property(value_type: str, value: str | None) -> dict[str, Any]:
    prop = {"modelType": "Property", "idShort": "p", "valueType": value_type}
    return prop if value is None else {**prop, "value": value}


@pytest.mark.parametrize(
    ("value_type", "lexical", "typed"),
    [
        ("xs:boolean", "true", True),
        ("xs:boolean", "false", False),
        ("xs:int", "-42", -42),
        ("xs:unsignedLong", "18446744073709551615", 18446744073709551615),
        ("xs:double", "1.5", 1.5),
        ("xs:decimal", "0.25", 0.25),
        ("xs:string", "42", "42"),
        ("xs:dateTime", "2024-01-02T03:04:05Z", "2024-01-02T03:04:05Z"),
    ],
)
def test_a_property_reads_as_json_of_its_type_and_writes_back(
    value_type: str, lexical: str, typed: Any
) -> None:
    element = _property(value_type, lexical)
    assert value_of(element) == typed
    assert type(value_of(element)) is type(typed)
    assert with_value(element, typed)["value"] == lexical


def test_json_has_no_infinity_so_it_stays_a_string() -> None:
    assert value_of(_property("xs:double", "INF")) == "INF"
    assert value_of(_property("xs:double", "NaN")) == "NaN"


def test_a_property_without_value_reads_null_and_null_clears_it() -> None:
    assert value_of(_property("xs:int", None)) is None
    assert "value" not in with_value(_property("xs:int", "1"), None)


def test_operations_and_capabilities_have_no_value_and_are_left_out_of_containers() -> None:
    operation = {"modelType": "Operation", "idShort": "run"}
    with pytest.raises(InvalidAasRequest) as refused:
        value_of(operation)
    assert refused.value.code == "aas_no_value_only"
    collection = {
        "modelType": "SubmodelElementCollection", "idShort": "c",
        "value": [operation, _property("xs:int", "3")],
    }  # fmt: skip
    assert value_of(collection) == {"p": 3}


def test_core_gives_the_children_but_not_theirs() -> None:
    inner = {"modelType": "SubmodelElementCollection", "idShort": "inner",
             "value": [_property("xs:int", "1")]}  # fmt: skip
    outer = {"modelType": "SubmodelElementCollection", "idShort": "outer",
             "value": [inner, {**_property("xs:int", "2"), "idShort": "q"}]}  # fmt: skip
    assert value_of(outer) == {"inner": {"p": 1}, "q": 2}
    assert value_of(outer, depth=1) == {"inner": {}, "q": 2}
    assert shaped(outer, depth=1)["value"][0] == {
        "modelType": "SubmodelElementCollection", "idShort": "inner",
    }  # fmt: skip


def test_a_blob_shows_its_bytes_only_when_asked() -> None:
    blob = {"modelType": "Blob", "idShort": "b", "contentType": "x/y", "value": "AQI="}
    assert value_of(blob, with_blob=False) == {"contentType": "x/y"}
    assert value_of(blob) == {"contentType": "x/y", "value": "AQI="}
    assert "value" not in shaped(blob)
    assert shaped(blob, with_blob=True) == blob


@pytest.mark.parametrize(
    "value",
    [{"nope": 1}, [], "x"],
)
def test_a_collection_value_must_name_its_elements(value: Any) -> None:
    collection = {"modelType": "SubmodelElementCollection", "idShort": "c",
                  "value": [_property("xs:int", "3")]}  # fmt: skip
    with pytest.raises(InvalidAasRequest) as refused:
        with_value(collection, value)
    assert refused.value.code == "invalid_aas_value"


def test_a_list_value_has_one_value_per_element() -> None:
    items = [{"modelType": "Property", "valueType": "xs:int", "value": str(n)} for n in range(3)]
    listing = {"modelType": "SubmodelElementList", "idShort": "l", "value": items}
    assert value_of(listing) == [0, 1, 2]
    assert value_of(with_value(listing, [5, 6, 7])) == [5, 6, 7]
    with pytest.raises(InvalidAasRequest):
        with_value(listing, [1])


def test_metadata_is_the_element_without_its_value_and_a_write_keeps_the_value() -> None:
    prop = {**_property("xs:int", "7"), "category": "PARAMETER"}
    assert metadata(prop) == {"modelType": "Property", "idShort": "p", "valueType": "xs:int",
                              "category": "PARAMETER"}  # fmt: skip
    changed = with_metadata(prop, {**metadata(prop), "category": "VARIABLE", "value": "9"})
    assert changed == {**prop, "category": "VARIABLE"}
    with pytest.raises(InvalidAasRequest) as renamed:
        with_metadata(prop, {**metadata(prop), "idShort": "other"})
    assert renamed.value.code == "invalid_aas_metadata"
    file = {"modelType": "File", "idShort": "f", "contentType": "a/b", "value": "/x"}
    assert metadata(file) == {"modelType": "File", "idShort": "f", "contentType": "a/b"}
