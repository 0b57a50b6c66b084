"""One contract, every backend: the same tests run against the in-memory store, SQLite,
PostgreSQL and InfluxDB."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from typing import Any

import pytest

from shopfloor.storage import (
    InvalidQuery,
    InvalidRecord,
    Query,
    StorageUnavailable,
    StoredMessage,
    TimeseriesStore,
)
from shopfloor.storage._line_protocol import point_key

BASE = 1_700_000_000.0  # a multiple of 10 s, so 10 s buckets start at BASE


def record(channel: str, **fields: Any) -> StoredMessage:
    values: dict[str, Any] = {
        "channel": channel,
        "subtopic": "",
        "publisher": "thing-1",
        "protocol": "http",
        "message_id": uuid.uuid4().hex,
        "seq": 0,
        "name": "temp",
        "time": BASE,
    }
    values.update(fields)
    return StoredMessage(**values)


def distinct_ids(count: int) -> list[str]:
    """Fresh message ids that InfluxDB cannot confuse at the same name and time.

    Two random ids share InfluxDB's point key with a chance of 1 in 16,000 (see
    `_line_protocol`); picking them apart keeps these tests deterministic.
    """
    ids: list[str] = []
    keys: set[tuple[str, int]] = set()
    while len(ids) < count:
        candidate = uuid.uuid4().hex
        key = point_key(record("c", message_id=candidate))
        if key not in keys:
            keys.add(key)
            ids.append(candidate)
    return ids


async def everything(store: TimeseriesStore, channel: str, **filters: Any) -> list[StoredMessage]:
    page = await store.query(Query(channel=channel, limit=1000, dir="asc", **filters))
    assert page.total == len(page.messages)
    return list(page.messages)


def key(message: StoredMessage) -> tuple[str, int]:
    return message.message_id, message.seq


async def test_every_value_kind_round_trips(store: TimeseriesStore, channel: str) -> None:
    written = [
        record(channel, name="temp", unit="Cel", value=21.5, time=BASE + 1, sum=120.25),
        record(channel, name="state", string_value="running", time=BASE + 2, protocol="mqtt"),
        record(channel, name="door", bool_value=False, time=BASE + 3, subtopic="line1/press"),
        record(channel, name="blob", data_value="aGVsbG8=", time=BASE + 4, publisher="thing-2"),
        record(channel, name="energy", unit="J", sum=1e12, time=BASE + 5),
        record(channel, name="neg", value=-0.000123, time=BASE + 6, seq=7),
        record(channel, name="on", bool_value=True, time=BASE + 7),
    ]
    await store.write(written)
    assert await everything(store, channel) == written


@pytest.mark.parametrize(
    "time", [BASE + 0.000001, 1_700_000_000.123456, 1_234_567_890.999999, 86_400.5]
)
async def test_time_round_trips_to_the_microsecond(
    store: TimeseriesStore, channel: str, time: float
) -> None:
    await store.write([record(channel, value=1.0, time=time)])
    (stored,) = await everything(store, channel)
    assert stored.time == time


async def test_non_finite_numbers_are_stored_as_absent(
    store: TimeseriesStore, channel: str
) -> None:
    await store.write(
        [
            record(channel, value=float("nan"), sum=float("inf"), unit="W"),
            record(channel, value=float("-inf"), time=BASE + 1),
        ]
    )
    stored = await everything(store, channel)
    assert [(m.value, m.sum, m.unit) for m in stored] == [(None, None, "W"), (None, None, None)]


@pytest.mark.parametrize("time", [float("nan"), float("inf"), -1e10, 9.3e9])
async def test_a_batch_with_an_unstorable_time_is_refused_whole(
    store: TimeseriesStore, channel: str, time: float
) -> None:
    bad = record(channel, value=2.0, time=time)
    with pytest.raises(InvalidRecord) as caught:
        await store.write([record(channel, value=1.0), bad])
    assert caught.value.records == [(bad.message_id, 0)]
    assert store.ready
    assert (await store.query(Query(channel=channel))).total == 0
    edges = [record(channel, value=1.0, time=t) for t in (-9_223_372_036.0, 9_223_372_036.0)]
    await store.write(edges)
    assert await everything(store, channel) == edges


async def test_rewriting_a_batch_adds_nothing(store: TimeseriesStore, channel: str) -> None:
    message_id = uuid.uuid4().hex
    batch = [record(channel, message_id=message_id, seq=i, value=float(i)) for i in range(5)]
    await store.write(batch)
    await store.write(batch)
    # A redelivery of part of the message together with new records.
    extra = record(channel, value=99.0, time=BASE + 1)
    await store.write([batch[3], extra, batch[0]])
    stored = await everything(store, channel)
    assert sorted(map(key, stored)) == sorted(map(key, [*batch, extra]))


async def test_different_messages_at_the_same_name_and_time_are_all_kept(
    store: TimeseriesStore, channel: str
) -> None:
    batch = [
        record(channel, message_id=message_id, value=float(i))
        for i, message_id in enumerate(distinct_ids(6))
    ]
    await store.write(batch[:3])
    await store.write(batch[3:])
    stored = await everything(store, channel)
    assert sorted(m.value or 0 for m in stored) == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]


async def test_records_of_one_message_at_the_same_name_and_time_are_all_kept(
    store: TimeseriesStore, channel: str
) -> None:
    message_id = uuid.uuid4().hex
    batch = [record(channel, message_id=message_id, seq=i, value=float(i)) for i in range(1200)]
    await store.write(batch)
    page = await store.query(Query(channel=channel, limit=1))
    assert page.total == 1200


@pytest.mark.parametrize(
    ("field", "wanted"),
    [("subtopic", "line1/press"), ("subtopic", ""), ("publisher", "thing-2"), ("name", "hum")],
)
async def test_filters_on_message_fields(
    store: TimeseriesStore, channel: str, field: str, wanted: str
) -> None:
    written = [
        record(channel, value=1.0, subtopic="line1/press"),
        record(channel, value=2.0, subtopic="line1", time=BASE + 1),
        record(channel, value=3.0, publisher="thing-2", time=BASE + 2),
        record(channel, value=4.0, name="hum", time=BASE + 3),
        record(uuid.uuid4().hex, value=5.0, subtopic="line1/press", name="hum"),
    ]
    await store.write(written)
    expected = [m for m in written if m.channel == channel and getattr(m, field) == wanted]
    assert await everything(store, channel, **{field: wanted}) == expected


@pytest.mark.parametrize(
    ("comparator", "expected"),
    [
        ("eq", [2.5]),
        ("lt", [-1.0, 0.0]),
        ("le", [-1.0, 0.0, 2.5]),
        ("gt", [7.0]),
        ("ge", [2.5, 7.0]),
    ],
)
async def test_value_filter_with_each_comparator(
    store: TimeseriesStore, channel: str, comparator: str, expected: list[float]
) -> None:
    values = [-1.0, 0.0, 2.5, 7.0]
    await store.write([record(channel, value=v, time=BASE + i) for i, v in enumerate(values)])
    await store.write([record(channel, string_value="2.5", time=BASE + 9)])
    stored = await everything(store, channel, v=2.5, comparator=comparator)
    assert [m.value for m in stored] == expected


async def test_string_and_bool_value_filters(store: TimeseriesStore, channel: str) -> None:
    tricky = 'it\'s a "quoted" \\ back\nslash'
    written = [
        record(channel, string_value="running", time=BASE),
        record(channel, string_value=tricky, time=BASE + 1),
        record(channel, bool_value=True, time=BASE + 2),
        record(channel, bool_value=False, time=BASE + 3),
        record(channel, value=1.0, time=BASE + 4),
    ]
    await store.write(written)
    assert await everything(store, channel, vs="running") == [written[0]]
    assert await everything(store, channel, vs=tricky) == [written[1]]
    assert await everything(store, channel, vb=True) == [written[2]]
    assert await everything(store, channel, vb=False) == [written[3]]


async def test_time_range_is_from_inclusive_to_exclusive(
    store: TimeseriesStore, channel: str
) -> None:
    times = [BASE + 0.000001 * i for i in range(5)]
    await store.write([record(channel, value=float(i), time=t) for i, t in enumerate(times)])
    stored = await everything(store, channel, from_=times[1], to=times[3])
    assert [m.time for m in stored] == times[1:3]
    assert [m.time for m in await everything(store, channel, from_=times[4])] == times[4:]
    assert [m.time for m in await everything(store, channel, to=times[1])] == times[:1]


async def test_pages_cover_every_record_once(store: TimeseriesStore, channel: str) -> None:
    written = [record(channel, value=float(i), time=BASE + i) for i in range(25)]
    await store.write(written)
    seen: list[StoredMessage] = []
    for offset in range(0, 30, 10):
        page = await store.query(Query(channel=channel, offset=offset, limit=10))
        assert (page.total, page.offset, page.limit) == (25, offset, 10)
        seen.extend(page.messages)
    assert seen == written[::-1]
    beyond = await store.query(Query(channel=channel, offset=40, limit=10))
    assert (beyond.total, list(beyond.messages)) == (25, [])


@pytest.mark.parametrize("direction", ["asc", "desc"])
async def test_direction_orders_by_time(
    store: TimeseriesStore, channel: str, direction: str
) -> None:
    times = [BASE + 3, BASE + 1, BASE + 2, BASE - 5]
    await store.write([record(channel, value=1.0, time=t) for t in times])
    page = await store.query(Query(channel=channel, dir=direction))  # type: ignore[arg-type]
    assert [m.time for m in page.messages] == sorted(times, reverse=direction == "desc")


async def test_a_series_is_the_newest_records_oldest_first(
    store: TimeseriesStore, channel: str
) -> None:
    written = [record(channel, value=float(i), time=BASE + i, unit="Cel") for i in range(20)]
    written += [
        record(channel, name="state", string_value="running", time=BASE + 20.25),
        record(channel, name="door", bool_value=True, time=BASE + 21),
        record(channel, name="temp", value=1.5, time=BASE + 22, publisher="thing-2"),
    ]
    await store.write(written)
    series = await store.series(Query(channel=channel, limit=1, offset=5), points=5)
    assert [(p[1], p[2], p[3]) for p in series.points] == [
        ("temp", 18.0, None), ("temp", 19.0, None), ("state", None, "running"),
        ("door", 1.0, None), ("temp", 1.5, None),
    ]  # fmt: skip
    assert [p[0] for p in series.points] == pytest.approx(
        [(BASE + t) * 1000 for t in (18, 19, 20.25, 21, 22)], abs=0.001
    )
    await store.write([record(channel, name="valve", bool_value=False, time=BASE + 30)])
    closed = await store.series(Query(channel=channel, name="valve"), points=5)
    assert [(p[1], p[2], p[3]) for p in closed.points] == [("valve", 0.0, None)]
    named = await store.series(
        Query(channel=channel, name="temp", publisher="thing-1", from_=BASE + 15), points=100
    )
    assert [p[2] for p in named.points] == [15.0, 16.0, 17.0, 18.0, 19.0]
    assert named.unit == "Cel"
    assert (await store.series(Query(channel=channel, name="nothing"), points=3)).points == []


async def test_a_series_longer_than_a_page(store: TimeseriesStore, channel: str) -> None:
    await store.write([record(channel, value=float(i), time=BASE + i) for i in range(2500)])
    series = await store.series(Query(channel=channel), points=2100)
    assert [p[2] for p in series.points] == [float(i) for i in range(400, 2500)]


async def test_a_series_of_an_aggregation_is_its_rows_oldest_first(
    store: TimeseriesStore, channel: str
) -> None:
    await _write_aggregation_data(store, channel)
    query = Query(channel=channel, name="temp", aggregation="max", interval=10.0)
    series = await store.series(query, points=10)
    assert [(p[0], p[1], p[2]) for p in series.points] == [
        (BASE * 1000, "temp", 3.0), ((BASE + 10) * 1000, "temp", 20.0),
    ]  # fmt: skip


@pytest.mark.parametrize("points", [0, 10_001])
async def test_a_series_has_bounded_points(
    store: TimeseriesStore, channel: str, points: int
) -> None:
    with pytest.raises(InvalidQuery) as refused:
        await store.series(Query(channel=channel), points=points)
    assert refused.value.code == "invalid_limit"


async def _write_aggregation_data(store: TimeseriesStore, channel: str) -> None:
    await store.write(
        [
            record(channel, string_value="warming", time=BASE + 0.5),
            record(channel, value=1.0, time=BASE + 1),
            record(channel, value=3.0, time=BASE + 5),
            record(channel, value=10.0, time=BASE + 12),
            record(channel, value=20.0, time=BASE + 15),
            record(channel, name="hum", value=50.0, time=BASE + 2),
        ]
    )


@pytest.mark.parametrize(
    ("aggregation", "expected"),
    [
        ("min", [10.0, 50.0, 1.0]),
        ("max", [20.0, 50.0, 3.0]),
        ("avg", [15.0, 50.0, 2.0]),
        ("sum", [30.0, 50.0, 4.0]),
        ("count", [2.0, 1.0, 3.0]),
    ],
)
async def test_aggregation_per_interval(
    store: TimeseriesStore, channel: str, aggregation: str, expected: list[float]
) -> None:
    await _write_aggregation_data(store, channel)
    query = Query(channel=channel, aggregation=aggregation, interval=10.0)  # type: ignore[arg-type]
    page = await store.query(query)
    rows = [(m.time, m.name, m.value) for m in page.messages]
    buckets = [(BASE + 10, "temp"), (BASE, "hum"), (BASE, "temp")]
    assert rows == [(*bucket, value) for bucket, value in zip(buckets, expected, strict=True)]
    assert page.total == 3
    assert all(m.channel == channel and m.message_id == "" for m in page.messages)


async def test_aggregation_rows_page_and_filter(store: TimeseriesStore, channel: str) -> None:
    await _write_aggregation_data(store, channel)
    query = Query(channel=channel, aggregation="max", interval=10.0, dir="asc", offset=1, limit=1)
    page = await store.query(query)
    assert page.total == 3
    assert [(m.time, m.name, m.value) for m in page.messages] == [(BASE, "temp", 3.0)]
    named = await store.query(
        Query(channel=channel, name="temp", aggregation="count", interval=100.0, from_=BASE + 1)
    )
    assert [(m.time, m.name, m.value) for m in named.messages] == [(BASE, "temp", 4.0)]


async def test_aggregation_without_interval_is_one_bucket(
    store: TimeseriesStore, channel: str
) -> None:
    await _write_aggregation_data(store, channel)
    counts = await store.query(Query(channel=channel, aggregation="count", dir="asc"))
    # Without `from`, a bucket starts at its earliest counted record.
    assert [(m.time, m.name, m.value) for m in counts.messages] == [
        (BASE + 0.5, "temp", 5.0),
        (BASE + 2, "hum", 1.0),
    ]
    minimum = await store.query(Query(channel=channel, aggregation="min", dir="asc"))
    assert [(m.time, m.name, m.value) for m in minimum.messages] == [
        (BASE + 1, "temp", 1.0),
        (BASE + 2, "hum", 50.0),
    ]
    ranged = await store.query(
        Query(channel=channel, aggregation="avg", from_=BASE - 100, to=BASE + 13)
    )
    assert [(m.time, m.name, m.value) for m in ranged.messages] == [
        (BASE - 100, "hum", 50.0),
        (BASE - 100, "temp", 14.0 / 3),
    ]


async def test_aggregation_refuses_too_many_buckets(store: TimeseriesStore, channel: str) -> None:
    await _write_aggregation_data(store, channel)
    store.max_aggregate_rows = 2
    with pytest.raises(InvalidQuery) as caught:
        await store.query(Query(channel=channel, aggregation="count", interval=1.0))
    assert caught.value.code == "too_many_buckets"


@pytest.mark.parametrize(
    "params",
    [
        {"limit": 0},
        {"limit": 1001},
        {"offset": -1},
        {"comparator": "ne", "v": 1.0},
        {"dir": "up"},
        {"order": "value"},
        {"aggregation": "median"},
        {"interval": 10.0},
        {"from_": BASE + 1, "to": BASE},
        {"v": 1.0, "vs": "x"},
    ],
)
async def test_invalid_queries_are_refused(
    store: TimeseriesStore, channel: str, params: dict[str, Any]
) -> None:
    with pytest.raises(InvalidQuery):
        await store.query(Query(channel=channel, **params))


async def test_names_and_values_with_special_characters(
    store: TimeseriesStore, channel: str
) -> None:
    names = [
        "room temp",
        "a,b",
        "k=v",
        'say "hi"',
        "it's",
        "back\\slash",
        "trailing\\",
        "100%",
        "%25 encoded",
        "tab\tand\nnewline",
        "ünïcödé 温度",
    ]
    written = [
        record(channel, name=name, string_value=name, unit=name, time=BASE + i, subtopic="a/b")
        for i, name in enumerate(names)
    ]
    await store.write(written)
    assert await everything(store, channel) == written
    for message in written:
        assert await everything(store, channel, name=message.name) == [message]


async def test_a_batch_of_ten_thousand_records_is_one_write(
    store: TimeseriesStore, channel: str
) -> None:
    message_ids = [uuid.uuid4().hex for _ in range(100)]
    batch = [
        record(
            channel,
            message_id=message_ids[i // 100],
            seq=i % 100,
            name=f"sensor-{i % 10}",
            value=float(i),
            time=BASE + i * 0.001,
        )
        for i in range(10_000)
    ]
    await store.write(batch)
    page = await store.query(Query(channel=channel, name="sensor-9", limit=3))
    assert page.total == 1000
    assert [m.value for m in page.messages] == [9999.0, 9989.0, 9979.0]


async def test_concurrent_writes_all_land(store: TimeseriesStore, channel: str) -> None:
    batches = [
        [record(channel, value=float(b * 100 + i), time=BASE + b + i / 100) for i in range(50)]
        for b in range(6)
    ]
    await asyncio.gather(*(store.write(batch) for batch in batches))
    page = await store.query(Query(channel=channel, limit=1))
    assert page.total == 300


async def test_a_closed_store_is_not_ready_and_refuses_work(
    store: TimeseriesStore, channel: str
) -> None:
    await store.write([record(channel, value=1.0)])
    assert store.ready
    await store.close()
    assert not store.ready
    with pytest.raises(StorageUnavailable):
        await store.write([record(channel, value=2.0)])
    with pytest.raises(StorageUnavailable):
        await store.query(Query(channel=channel))
    await store.open()
    assert [m.value for m in await everything(store, channel)] == [1.0]


async def test_reader_json_matches_the_readers_contract(
    store: TimeseriesStore, channel: str
) -> None:
    written = record(channel, name="temp", unit="Cel", value=21.5, sum=3.0, subtopic="l1")
    later = dataclasses.replace(written, seq=1, value=None, string_value="x", time=BASE + 1)
    await store.write([written, later])
    page = await store.query(Query(channel=channel, limit=1, dir="asc"))
    assert page.to_reader_json() == {
        "total": 2,
        "offset": 0,
        "limit": 1,
        "messages": [
            {
                "channel": channel,
                "subtopic": "l1",
                "publisher": "thing-1",
                "protocol": "http",
                "name": "temp",
                "unit": "Cel",
                "time": BASE,
                "value": 21.5,
                "sum": 3.0,
            }
        ],
    }
