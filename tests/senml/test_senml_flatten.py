"""Plain JSON payloads are stored as one record per scalar leaf, never dropped."""

from __future__ import annotations

import json

import pytest

from shopfloor.senml import Record, SenMLError, flatten_json

NOW = 1_700_000_000.0


def flatten(document: object, **limits: int) -> list[Record]:
    """`document` as JSON; bytes are sent as they are, for what `json.dumps` cannot write."""
    payload = document if isinstance(document, bytes) else json.dumps(document).encode()
    return flatten_json(payload, now=NOW, **limits)


def rejection(document: object, **limits: int) -> SenMLError:
    with pytest.raises(SenMLError) as caught:
        flatten(document, **limits)
    return caught.value


def test_nested_objects_and_arrays_are_named_by_their_path() -> None:
    records = flatten(
        {
            "machine": "press-7",
            "running": True,
            "axes": [{"temp": 41.5, "load": 3}, {"temp": 39}],
            "spindle": {"rpm": 1200, "tool": {"id": "T12", "wear": 0.25}},
            "alarm": None,
        }
    )

    assert records == [
        Record(name="machine", time=NOW, string_value="press-7"),
        Record(name="running", time=NOW, bool_value=True),
        Record(name="axes.0.temp", time=NOW, value=41.5),
        Record(name="axes.0.load", time=NOW, value=3),
        Record(name="axes.1.temp", time=NOW, value=39),
        Record(name="spindle.rpm", time=NOW, value=1200),
        Record(name="spindle.tool.id", time=NOW, string_value="T12"),
        Record(name="spindle.tool.wear", time=NOW, value=0.25),
    ]


def test_a_top_level_array_of_scalars_is_indexed() -> None:
    records = flatten([3, "x", False, None])

    assert [(r.name, r.value, r.string_value, r.bool_value) for r in records] == [
        ("0", 3, None, None),
        ("1", None, "x", None),
        ("2", None, None, False),
    ]


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        (21.5, Record(name="value", time=NOW, value=21.5)),
        ("on", Record(name="value", time=NOW, string_value="on")),
        (False, Record(name="value", time=NOW, bool_value=False)),
    ],
)
def test_a_scalar_document_is_one_record_named_value(document: object, expected: Record) -> None:
    assert flatten(document) == [expected]


@pytest.mark.parametrize(
    ("document", "time"),
    [
        ({"t": 1.6e9, "temp": 20}, 1.6e9),
        ({"time": 1_600_000_000, "temp": 20}, 1.6e9),
        ({"t": -30, "temp": 20}, NOW - 30),
    ],
)
def test_a_numeric_top_level_time_is_the_records_time(document: object, time: float) -> None:
    records = flatten(document)

    assert records[0] == Record(name="temp", time=time, value=20)
    assert "t" not in {r.name for r in records}


def test_the_time_key_that_is_not_used_as_time_stays_a_value() -> None:
    records = flatten({"t": 1.6e9, "time": 1.5e9, "temp": 20})

    assert [(r.name, r.value, r.time) for r in records] == [
        ("time", 1.5e9, 1.6e9),
        ("temp", 20, 1.6e9),
    ]


@pytest.mark.parametrize(
    "document", [{"time": "2024-01-01T00:00:00Z", "x": 1}, {"t": True, "x": 1}]
)
def test_a_non_numeric_time_key_is_stored_as_a_value(document: dict[str, object]) -> None:
    records = flatten(document)

    assert {r.time for r in records} == {NOW}
    assert len(records) == 2


def test_a_nested_time_key_is_an_ordinary_value() -> None:
    assert flatten({"sensor": {"t": 1.6e9}}) == [Record(name="sensor.t", time=NOW, value=1.6e9)]


def test_senml_sent_as_plain_json_is_resolved_as_senml() -> None:
    records = flatten([{"bn": "dev:", "n": "temp", "u": "Cel", "v": 21}, {"n": "ok", "vb": True}])

    assert records == [
        Record(name="dev:temp", unit="Cel", time=NOW, value=21),
        Record(name="dev:ok", time=NOW, bool_value=True),
    ]


def test_json_that_only_borrows_senml_keys_is_flattened_instead_of_refused() -> None:
    records = flatten([{"t": 1.6e9, "v": 2}])

    assert [(r.name, r.value) for r in records] == [("0.t", 1.6e9), ("0.v", 2)]


def test_senml_looking_json_with_a_newer_version_is_refused() -> None:
    assert rejection([{"bver": 99, "n": "x", "v": 1}]).code == "unsupported_senml_version"


def test_an_object_of_senml_labels_is_not_mistaken_for_senml() -> None:
    records = flatten({"n": "count", "v": 4})

    assert [(r.name, r.string_value, r.value) for r in records] == [
        ("n", "count", None),
        ("v", None, 4),
    ]


@pytest.mark.parametrize("document", [{}, [], {"a": None}, {"a": {}, "b": [[], {}]}, None])
def test_a_document_without_values_is_refused(document: object) -> None:
    error = rejection(document)

    assert error.code == "empty_payload"


def test_a_document_that_only_carries_its_time_is_refused() -> None:
    error = rejection({"t": 1.6e9})

    assert error.code == "empty_payload"
    assert "'t'" in str(error)


def test_depth_beyond_the_limit_is_refused() -> None:
    deep: object = 1
    for _ in range(4):
        deep = {"level": deep}

    assert flatten(deep, max_depth=4) == [Record(name="level.level.level.level", time=NOW, value=1)]
    error = rejection(deep, max_depth=3)
    assert error.code == "payload_too_deep"
    assert "'level.level.level'" in str(error)


def test_more_leaves_than_allowed_are_refused() -> None:
    assert len(flatten({"a": [1, 2], "b": 3}, max_records=3)) == 3
    assert rejection({"a": [1, 2], "b": 3}, max_records=2).code == "too_many_records"


def test_ten_thousand_values_are_flattened() -> None:
    records = flatten({"samples": list(range(10_000))})

    assert len(records) == 10_000
    assert records[-1] == Record(name="samples.9999", time=NOW, value=9999)


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        (b'{"a": 1e400}', "invalid_json"),
        (b'{"a": NaN}', "invalid_json"),
        (b'{"a": "\\udc00"}', "invalid_json"),
        (b'{"\\ud800": 1}', "invalid_json"),
        (b"{'a': 1}", "invalid_json"),
        (b"", "empty_payload"),
    ],
)
def test_values_that_cannot_be_stored_are_refused(payload: bytes, code: str) -> None:
    assert rejection(payload).code == code
