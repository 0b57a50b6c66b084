"""Resolution rules (RFC 8428 section 4) and rejections of `application/senml+json`."""

from __future__ import annotations

import json

import pytest

from shopfloor.senml import Record, SenMLError, parse_senml_json

NOW = 1_700_000_000.0


def parse(pack: object, *, max_records: int = 10_000) -> list[Record]:
    """`pack` as JSON; bytes are sent as they are, for what `json.dumps` cannot write."""
    payload = pack if isinstance(pack, bytes) else json.dumps(pack).encode()
    return parse_senml_json(payload, now=NOW, max_records=max_records)


def rejection(pack: object) -> SenMLError:
    with pytest.raises(SenMLError) as caught:
        parse(pack)
    return caught.value


def test_base_value_is_added_to_each_later_value() -> None:
    records = parse(
        [
            {"bn": "meter:", "bv": 1000, "n": "a", "v": 5},
            {"n": "b", "v": -3.5},
            {"n": "c", "vs": "text is not offset"},
            {"bv": 0, "n": "d", "v": 2},
        ]
    )

    assert [r.value for r in records] == [1005, 996.5, None, 2]
    assert records[2].string_value == "text is not offset"


def test_base_sum_is_added_only_where_a_sum_is_present() -> None:
    records = parse(
        [
            {"bn": "energy:", "bs": 100, "n": "total", "s": 20.5},
            {"n": "power", "v": 3},
            {"n": "total", "s": 21, "v": 4},
        ]
    )

    assert [(r.sum, r.value) for r in records] == [(120.5, None), (None, 3), (121, 4)]


def test_a_record_may_carry_only_a_sum() -> None:
    (record,) = parse([{"n": "flow", "u": "m3", "s": 42}])

    assert record == Record(name="flow", unit="m3", time=NOW, sum=42)


@pytest.mark.parametrize(
    ("base_time", "time", "expected"),
    [
        (None, None, NOW),
        (None, -60, NOW - 60),
        (None, 30, NOW + 30),
        (None, 1.5e9, 1.5e9),
        (1.5e9, -60, 1.5e9 - 60),
        (-100, 40, NOW - 60),
        (2**28, 0, float(2**28)),
        (2**28 - 1, 0, NOW + 2**28 - 1),
    ],
)
def test_times_below_2_pow_28_are_relative_to_now(
    base_time: float | None, time: float | None, expected: float
) -> None:
    entry: dict[str, object] = {"n": "x", "v": 1}
    if base_time is not None:
        entry["bt"] = base_time
    if time is not None:
        entry["t"] = time

    (record,) = parse([entry])

    assert record.time == pytest.approx(expected)


def test_every_value_kind_and_the_update_time_come_through() -> None:
    records = parse(
        [
            {"n": "number", "v": -0.25, "ut": 30},
            {"n": "text", "vs": ""},
            {"n": "flag", "vb": True},
            {"n": "blob", "vd": "AAEC_-8"},
        ]
    )

    assert records == [
        Record(name="number", time=NOW, value=-0.25, update_time=30),
        Record(name="text", time=NOW, string_value=""),
        Record(name="flag", time=NOW, bool_value=True),
        Record(name="blob", time=NOW, data_value="AAEC_-8"),
    ]


def test_padded_data_values_are_stored_without_padding() -> None:
    (record,) = parse([{"n": "blob", "vd": "aGk="}])

    assert record.data_value == "aGk"


def test_unit_overrides_base_unit_and_base_fields_can_be_redefined() -> None:
    records = parse(
        [
            {"bn": "a:", "bu": "Cel", "n": "t1", "v": 1},
            {"n": "t2", "u": "K", "v": 2},
            {"bn": "b:", "bu": "V", "n": "t3", "v": 3},
        ]
    )

    assert [(r.name, r.unit) for r in records] == [("a:t1", "Cel"), ("a:t2", "K"), ("b:t3", "V")]


def test_a_lone_object_is_read_as_a_one_entry_pack() -> None:
    records = parse({"n": "boiler:temp", "u": "Cel", "v": 71.5})

    assert records == [Record(name="boiler:temp", unit="Cel", time=NOW, value=71.5)]


def test_unknown_labels_are_ignored() -> None:
    (record,) = parse([{"n": "x", "v": 1, "vendor": {"any": ["thing"]}, "bfoo": 3}])

    assert record == Record(name="x", time=NOW, value=1)


def test_records_keep_the_order_of_the_pack() -> None:
    records = parse([{"n": "b", "t": 2e9, "v": 1}, {"n": "a", "t": 1e9, "v": 2}])

    assert [r.name for r in records] == ["b", "a"]


def test_a_byte_order_mark_is_tolerated() -> None:
    payload = b"\xef\xbb\xbf" + json.dumps([{"n": "x", "v": 1}]).encode()

    assert parse_senml_json(payload, now=NOW)[0].value == 1


def test_ten_thousand_records_normalise() -> None:
    pack: list[dict[str, object]] = [
        {"n": f"p{i % 50}", "t": i, "v": i / 10} for i in range(10_000)
    ]
    pack[0].update({"bn": "line1:press:", "bt": 1.6e9, "bu": "bar"})

    records = parse(pack)

    assert len(records) == 10_000
    assert records[-1] == Record(
        name="line1:press:p49", unit="bar", time=1.6e9 + 9_999, value=999.9
    )


@pytest.mark.parametrize(
    ("pack", "fragment"),
    [
        ("not a pack", "must be an array"),
        ([{"n": "x", "v": 1}, 3], "entry 1 must be an object"),
        ([{"v": 1}], "entry 0 has no name"),
        ([{"n": "x", "u": "V"}], "entry 0 has no value"),
        ([{"n": "x", "t": 5}], "entry 0 has no value"),
        ([{"n": "x", "v": 1, "vs": "1"}], "more than one of"),
        ([{"n": "x", "vb": True, "vd": "AA"}], "more than one of"),
        ([{"n": "x", "v": "12"}], "'v' must be a number, not a string"),
        ([{"n": "x", "v": True}], "'v' must be a number, not a boolean"),
        (b'[{"n": "x", "v": 1e400}]', "'v' must be a finite number"),
        ([{"n": "x", "v": 10**400}], "'v' is out of range"),
        ([{"n": "x", "vs": 5}], "'vs' must be a string"),
        ([{"n": "x", "vb": 1}], "'vb' must be a boolean, not a number"),
        ([{"n": "x", "vb": "true"}], "'vb' must be a boolean"),
        ([{"n": "x", "vd": "a+b/"}], "'vd' must be base64url"),
        ([{"n": "x", "vd": "abcde"}], "'vd' must be base64url"),
        ([{"n": "x", "vd": [1, 2]}], "'vd' must be a base64url string"),
        ([{"n": 5, "v": 1}], "'n' must be a string"),
        ([{"bn": ["a"], "n": "x", "v": 1}], "'bn' must be a string"),
        ([{"n": "x", "u": 1, "v": 1}], "'u' must be a string"),
        ([{"n": "x", "t": "now", "v": 1}], "'t' must be a number"),
        ([{"n": "x", "ut": "soon", "v": 1}], "'ut' must be a number"),
        ([{"n": "x", "ut": -1, "v": 1}], "'ut' must not be negative"),
        ([{"bv": "1", "n": "x", "v": 1}], "'bv' must be a number"),
        ([{"bs": None, "n": "x", "s": []}], "'s' must be a number, not an array"),
        ([{"n": "-x", "v": 1}], "must start with a letter or digit"),
        ([{"n": "temp °C", "v": 1}], "must start with a letter or digit"),
        ([{"bn": "dev:", "n": "a b", "v": 1}], "'dev:a b'"),
        ([{"n": "x", "vs": "\ud800"}], "unpaired UTF-16 surrogate"),
        ([{"bver": 0, "n": "x", "v": 1}], "'bver' must be a positive integer"),
        ([{"bver": 2.5, "n": "x", "v": 1}], "'bver' must be a positive integer"),
        ([{"bver": 5, "n": "x", "v": 1}, {"bver": 6, "n": "y", "v": 1}], "differs from version 5"),
    ],
)
def test_invalid_packs_are_rejected_with_the_entry_and_field(pack: object, fragment: str) -> None:
    error = rejection(pack)

    assert error.code == "invalid_senml"
    assert fragment in str(error)


def test_a_newer_senml_version_is_refused() -> None:
    error = rejection([{"bver": 11, "n": "x", "v": 1}])

    assert error.code == "unsupported_senml_version"
    assert "11" in str(error)


def test_the_version_this_parser_knows_is_accepted() -> None:
    assert parse([{"bver": 10, "n": "x", "v": 1}])[0].value == 1


def test_must_understand_labels_are_refused() -> None:
    error = rejection([{"n": "x", "v": 1}, {"n": "y", "v": 2, "crit_": 1}])

    assert error.code == "unsupported_senml_label"
    assert "entry 1" in str(error)
    assert "'crit_'" in str(error)


def test_more_records_than_allowed_are_refused_before_resolution() -> None:
    # Entry 2 is invalid too: the size limit must win, proving it is checked first.
    pack = [{"n": "x", "v": 1}, {"n": "y", "v": 2}, {"n": 3}]

    with pytest.raises(SenMLError) as caught:
        parse(pack, max_records=2)

    assert caught.value.code == "too_many_records"


@pytest.mark.parametrize("pack", [[], [{"bn": "dev:"}]])
def test_a_pack_without_records_is_refused(pack: object) -> None:
    assert rejection(pack).code == "empty_payload"


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        (b"", "empty_payload"),
        (b"  \n", "empty_payload"),
        (b"[{", "invalid_json"),
        (b'[{"n":"x","v":1}] trailing', "invalid_json"),
        (b'[{"n":"x","v":NaN}]', "invalid_json"),
        (b'[{"n":"x","v":-Infinity}]', "invalid_json"),
        (b'[{"n":"x","vs":"\xff"}]', "invalid_json"),
        (b"[" * 100_000, "payload_too_deep"),
    ],
)
def test_undecodable_payloads_are_refused(payload: bytes, code: str) -> None:
    with pytest.raises(SenMLError) as caught:
        parse_senml_json(payload, now=NOW)

    assert caught.value.code == code


def test_errors_survive_pickling_with_their_code() -> None:
    import pickle

    error = rejection([{"n": "x"}])
    copy = pickle.loads(pickle.dumps(error))  # noqa: S301 - our own bytes, just made

    assert (copy.code, str(copy)) == (error.code, str(error))
