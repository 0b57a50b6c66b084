"""Query validation, parameter parsing and the shapes handed to the readers API."""

from __future__ import annotations

from typing import Any

import pytest

from shopfloor.messaging._envelope import Envelope
from shopfloor.senml._record import Record
from shopfloor.storage import (
    InvalidQuery,
    Page,
    Query,
    StoredMessage,
    parse_interval,
    stored_messages,
)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("500ms", 0.5),
        ("10s", 10.0),
        ("1m", 60.0),
        ("1h", 3600.0),
        ("1d", 86400.0),
        ("2w", 1_209_600.0),
        ("250us", 0.00025),
        (" 15s ", 15.0),
    ],
)
def test_intervals_parse_into_seconds(text: str, seconds: float) -> None:
    assert parse_interval(text) == seconds


@pytest.mark.parametrize("text", ["", "10", "s", "0s", "-1s", "1.5s", "10y", "1 h", "01s"])
def test_malformed_intervals_are_refused(text: str) -> None:
    with pytest.raises(InvalidQuery) as caught:
        parse_interval(text)
    assert caught.value.code == "invalid_interval"


def test_query_defaults() -> None:
    query = Query(channel="c")
    assert (query.offset, query.limit, query.comparator, query.order, query.dir) == (
        0,
        10,
        "eq",
        "time",
        "desc",
    )
    assert query.aggregation is None and query.interval is None


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"channel": ""}, "invalid_channel"),
        ({"limit": 0}, "invalid_limit"),
        ({"limit": 1001}, "invalid_limit"),
        ({"limit": True}, "invalid_limit"),
        ({"offset": -1}, "invalid_offset"),
        ({"comparator": "ne", "v": 1.0}, "invalid_comparator"),
        ({"comparator": "gt"}, "comparator_without_value"),
        ({"order": "name"}, "invalid_order"),
        ({"dir": "sideways"}, "invalid_dir"),
        ({"aggregation": "median"}, "invalid_aggregation"),
        ({"interval": 10.0}, "interval_without_aggregation"),
        ({"aggregation": "avg", "interval": 0.0}, "invalid_interval"),
        ({"aggregation": "avg", "interval": float("inf")}, "invalid_interval"),
        ({"from_": 10.0, "to": 5.0}, "invalid_time_range"),
        ({"from_": float("nan")}, "invalid_from"),
        ({"to": 1e308}, "invalid_to"),
        ({"offset": 2**63}, "invalid_offset"),
        ({"aggregation": "avg", "interval": 1e12}, "invalid_interval"),
        ({"v": float("inf")}, "invalid_v"),
        ({"v": 1.0, "vb": True}, "conflicting_value_filters"),
        ({"vs": "a", "vb": False}, "conflicting_value_filters"),
    ],
)
def test_invalid_queries_have_stable_codes(fields: dict[str, Any], code: str) -> None:
    params: dict[str, Any] = {"channel": "c", **fields}
    with pytest.raises(InvalidQuery) as caught:
        Query(**params)
    assert caught.value.code == code
    assert caught.value.message


def test_time_bounds_and_interval_in_microseconds() -> None:
    query = Query(
        channel="c", from_=1.5, to=2.000001, aggregation="count", interval=parse_interval("1m")
    )
    assert (query.from_us, query.to_us, query.interval_us) == (1_500_000, 2_000_001, 60_000_000)


def test_from_params_reads_the_readers_api_strings() -> None:
    query = Query.from_params(
        "chan",
        {
            "offset": "20",
            "limit": "100",
            "subtopic": "line1/press",
            "publisher": "thing-1",
            "name": "temp",
            "v": "21.5",
            "comparator": "ge",
            "from": "1700000000.5",
            "to": "1700000600",
            "dir": "asc",
            "order": "time",
            "aggregation": "avg",
            "interval": "10s",
            "format": "csv",
        },
    )
    assert query == Query(
        channel="chan",
        offset=20,
        limit=100,
        subtopic="line1/press",
        publisher="thing-1",
        name="temp",
        v=21.5,
        comparator="ge",
        from_=1_700_000_000.5,
        to=1_700_000_600.0,
        dir="asc",
        aggregation="avg",
        interval=10.0,
    )
    assert Query.from_params("chan", {"vb": "TRUE"}).vb is True
    assert Query.from_params("chan", {"vs": "on"}).vs == "on"


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"limit": "ten"}, "invalid_limit"),
        ({"offset": "1.5"}, "invalid_offset"),
        ({"v": "hot"}, "invalid_v"),
        ({"v": "nan"}, "invalid_v"),
        ({"vb": "yes"}, "invalid_vb"),
        ({"from": "yesterday"}, "invalid_from"),
        ({"aggregation": "count", "interval": "fortnight"}, "invalid_interval"),
        ({"interval": "10s"}, "interval_without_aggregation"),
    ],
)
def test_from_params_refuses_malformed_strings(params: dict[str, str], code: str) -> None:
    with pytest.raises(InvalidQuery) as caught:
        Query.from_params("chan", params)
    assert caught.value.code == code


def test_stored_messages_number_the_records_of_an_envelope() -> None:
    envelope = Envelope(
        channel="chan",
        subtopic="line1",
        publisher="thing-1",
        protocol="mqtt",
        payload=b"[]",
        content_type="application/senml+json",
    )
    records = [
        Record(name="temp", unit="Cel", time=10.5, value=21.0, sum=3.0, update_time=60.0),
        Record(name="state", time=11.0, string_value="on"),
        Record(name="door", time=12.0, bool_value=True),
        Record(name="blob", time=13.0, data_value="AA=="),
    ]
    rows = stored_messages(envelope, records)
    assert [(row.message_id, row.seq) for row in rows] == [(envelope.id, i) for i in range(4)]
    assert rows[0] == StoredMessage(
        channel="chan",
        subtopic="line1",
        publisher="thing-1",
        protocol="mqtt",
        message_id=envelope.id,
        seq=0,
        name="temp",
        unit="Cel",
        time=10.5,
        value=21.0,
        sum=3.0,
    )
    assert (rows[1].string_value, rows[2].bool_value, rows[3].data_value) == ("on", True, "AA==")


def test_reader_json_carries_only_the_value_kind_present() -> None:
    message = StoredMessage(
        channel="c",
        subtopic="",
        publisher="p",
        protocol="http",
        message_id="m",
        seq=0,
        name="door",
        time=5.0,
        bool_value=False,
    )
    page = Page(total=7, offset=5, limit=1, messages=[message])
    assert page.to_reader_json() == {
        "total": 7,
        "offset": 5,
        "limit": 1,
        "messages": [
            {
                "channel": "c",
                "subtopic": "",
                "publisher": "p",
                "protocol": "http",
                "name": "door",
                "unit": None,
                "time": 5.0,
                "bool_value": False,
                "sum": None,
            }
        ],
    }
