"""The examples of RFC 8428 section 5 resolve to what the RFC says they mean."""

from __future__ import annotations

import json

import pytest

from shopfloor.senml import Record, parse_senml_json

NOW = 1_700_000_000.0
DEVICE = "urn:dev:ow:10e2073a01080063"


def parse(pack: object) -> list[Record]:
    return parse_senml_json(json.dumps(pack).encode(), now=NOW)


def test_single_data_point_is_taken_now() -> None:
    records = parse([{"n": DEVICE, "u": "Cel", "v": 23.1}])

    assert records == [Record(name=DEVICE, unit="Cel", time=NOW, value=23.1)]


def test_multiple_data_points_share_the_base_name() -> None:
    records = parse(
        [
            {"bn": f"{DEVICE}:", "n": "voltage", "u": "V", "v": 120.1},
            {"n": "current", "u": "A", "v": 1.2},
        ]
    )

    assert records == [
        Record(name=f"{DEVICE}:voltage", unit="V", time=NOW, value=120.1),
        Record(name=f"{DEVICE}:current", unit="A", time=NOW, value=1.2),
    ]


def test_relative_times_count_back_from_the_base_time() -> None:
    base_time = 1.276020076001e09
    pack = [
        {
            "bn": "urn:dev:ow:10e2073a0108006:",
            "bt": base_time,
            "bu": "A",
            "bver": 5,
            "n": "voltage",
            "u": "V",
            "v": 120.1,
        },
        {"n": "current", "t": -5, "v": 1.2},
        {"n": "current", "t": -4, "v": 1.3},
        {"n": "current", "t": -3, "v": 1.4},
        {"n": "current", "t": -2, "v": 1.5},
        {"n": "current", "t": -1, "v": 1.6},
        {"n": "current", "v": 1.7},
    ]

    records = parse(pack)

    assert records[0] == Record(
        name="urn:dev:ow:10e2073a0108006:voltage", unit="V", time=base_time, value=120.1
    )
    currents = records[1:]
    assert {r.name for r in currents} == {"urn:dev:ow:10e2073a0108006:current"}
    assert {r.unit for r in currents} == {"A"}, "the base unit applies where 'u' is absent"
    assert [r.time for r in currents] == pytest.approx([base_time - s for s in (5, 4, 3, 2, 1, 0)])
    assert [r.value for r in currents] == pytest.approx([1.2, 1.3, 1.4, 1.5, 1.6, 1.7])


def test_multiple_measurements_match_the_resolved_form_of_section_5_1_4() -> None:
    records = parse(
        [
            {"bn": DEVICE, "bt": 1.320067464e09, "bu": "%RH", "v": 20},
            {"u": "lon", "v": 24.30621},
            {"u": "lat", "v": 60.07965},
            {"t": 60, "v": 20.3},
            {"u": "lon", "t": 60, "v": 24.30622},
            {"u": "lat", "t": 60, "v": 60.07965},
            {"t": 120, "v": 20.7},
            {"u": "lon", "t": 120, "v": 24.30623},
            {"u": "lat", "t": 120, "v": 60.07966},
            {"u": "%EL", "t": 150, "v": 98},
            {"t": 180, "v": 21.2},
            {"u": "lon", "t": 180, "v": 24.30628},
            {"u": "lat", "t": 180, "v": 60.07967},
        ]
    )

    resolved = [
        ("%RH", 1.320067464e09, 20),
        ("lon", 1.320067464e09, 24.30621),
        ("lat", 1.320067464e09, 60.07965),
        ("%RH", 1.320067524e09, 20.3),
        ("lon", 1.320067524e09, 24.30622),
        ("lat", 1.320067524e09, 60.07965),
        ("%RH", 1.320067584e09, 20.7),
        ("lon", 1.320067584e09, 24.30623),
        ("lat", 1.320067584e09, 60.07966),
        ("%EL", 1.320067614e09, 98),
        ("%RH", 1.320067644e09, 21.2),
        ("lon", 1.320067644e09, 24.30628),
        ("lat", 1.320067644e09, 60.07967),
    ]
    assert records == [
        Record(name=DEVICE, unit=unit, time=time, value=value) for unit, time, value in resolved
    ]


def test_multiple_data_types() -> None:
    records = parse(
        [
            {"bn": f"{DEVICE}:", "n": "temp", "u": "Cel", "v": 23.1},
            {"n": "label", "vs": "Machine Room"},
            {"n": "open", "vb": False},
            {"n": "nfv-reader", "vd": "aGkgCg"},
        ]
    )

    assert records == [
        Record(name=f"{DEVICE}:temp", unit="Cel", time=NOW, value=23.1),
        Record(name=f"{DEVICE}:label", time=NOW, string_value="Machine Room"),
        Record(name=f"{DEVICE}:open", time=NOW, bool_value=False),
        Record(name=f"{DEVICE}:nfv-reader", time=NOW, data_value="aGkgCg"),
    ]


def test_collection_of_resources_keeps_the_base_time_across_a_new_base_name() -> None:
    records = parse(
        [
            {"bn": "2001:db8::2/", "bt": 1.320078429e09, "n": "temperature", "u": "Cel", "v": 25.2},
            {"n": "humidity", "u": "%RH", "v": 30},
            {"bn": "2001:db8::1/", "n": "temperature", "u": "Cel", "v": 12.3},
            {"n": "humidity", "u": "%RH", "v": 67},
        ]
    )

    assert [(r.name, r.time, r.value) for r in records] == [
        ("2001:db8::2/temperature", 1.320078429e09, 25.2),
        ("2001:db8::2/humidity", 1.320078429e09, 30),
        ("2001:db8::1/temperature", 1.320078429e09, 12.3),
        ("2001:db8::1/humidity", 1.320078429e09, 67),
    ]


def test_a_record_of_base_fields_only_sets_context_for_the_next_ones() -> None:
    records = parse(
        [
            {"bn": f"{DEVICE}:"},
            {"n": "temp", "u": "Cel", "v": 23.1},
            {"n": "heat", "u": "/", "v": 1},
            {"n": "fan", "u": "/", "v": 0},
        ]
    )

    assert [(r.name, r.unit, r.value) for r in records] == [
        (f"{DEVICE}:temp", "Cel", 23.1),
        (f"{DEVICE}:heat", "/", 1),
        (f"{DEVICE}:fan", "/", 0),
    ]


def test_actuation_in_the_near_future_adds_fractions_to_the_base_time() -> None:
    records = parse(
        [
            {"bt": 1.320078429e09, "bu": "/", "n": "2001:db8::3", "v": 0.5},
            {"n": "2001:db8::4", "v": 0.5},
            {"n": "2001:db8::3", "t": 0.1, "v": 0},
            {"n": "2001:db8::4", "t": 0.1, "v": 0},
        ]
    )

    assert [r.time for r in records] == pytest.approx(
        [1.320078429e09, 1.320078429e09, 1.3200784291e09, 1.3200784291e09]
    )
    assert {r.unit for r in records} == {"/"}
