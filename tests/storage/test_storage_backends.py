"""What differs between backends: URLs, registration, failures, indexes, InfluxDB encoding."""

from __future__ import annotations

import asyncio
import base64
import socket
import sqlite3
import uuid
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from shopfloor.storage import (
    InfluxStore,
    MemoryStore,
    PostgresStore,
    Query,
    SqliteStore,
    StorageError,
    StorageUnavailable,
    StoredMessage,
    TimeseriesStore,
    create_store,
)
from shopfloor.storage._line_protocol import (
    colliding_records,
    decode_tag,
    encode_lines,
    encode_tag,
    point_key,
)
from shopfloor.storage._sql import build_statements
from shopfloor.storage._sqlite import _DIALECT

from .conftest import INFLUX_HTTP, INFLUX_SERVER, POSTGRES_ADMIN_URL


def record(**fields: Any) -> StoredMessage:
    values: dict[str, Any] = {
        "channel": "chan",
        "subtopic": "",
        "publisher": "thing-1",
        "protocol": "http",
        "message_id": uuid.uuid4().hex,
        "seq": 0,
        "name": "temp",
        "time": 1_700_000_000.0,
        "value": 1.0,
    }
    values.update(fields)
    return StoredMessage(**values)


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def test_urls_pick_backends(tmp_path: Path) -> None:
    default = create_store("sqlite://", data_dir=tmp_path)
    assert isinstance(default, SqliteStore)
    assert default.path == tmp_path / "timeseries.db"
    explicit = create_store("sqlite:///srv/data/points.db", data_dir=tmp_path)
    assert isinstance(explicit, SqliteStore) and explicit.path == Path("/srv/data/points.db")
    for url in ("postgresql://u@db:5432/ts", "postgres://u@db/ts", "postgresql+asyncpg://u@db/ts"):
        assert isinstance(create_store(url, data_dir=tmp_path), PostgresStore)
    influx = create_store("influxdb://influx.local:9999/plant?tls=true", data_dir=tmp_path)
    assert isinstance(influx, InfluxStore)
    assert (influx.base_url, influx.database) == ("https://influx.local:9999", "plant")
    assert isinstance(create_store("memory://", data_dir=tmp_path), MemoryStore)
    bare = create_store("influxdb://influx.local", data_dir=tmp_path)
    assert isinstance(bare, InfluxStore)
    assert (bare.base_url, bare.database) == ("http://influx.local:8086", "shopfloor")


@pytest.mark.parametrize("url", ["mongodb://x/y", "timeseries.db", "sqlite://host/file.db"])
def test_urls_no_backend_understands_are_refused(url: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"sqlite|scheme"):
        create_store(url, data_dir=tmp_path)


def test_a_scheme_is_registered_once() -> None:
    with pytest.raises(TypeError, match="sqlite"):

        class OtherSqlite(SqliteStore, scheme="sqlite"):
            pass

    with pytest.raises(TypeError, match="postgres"):

        class OtherPostgres(PostgresStore, scheme="timescale", aliases=("postgres",)):
            pass

    assert "timescale" not in TimeseriesStore.backends


async def test_sqlite_creates_its_directory_and_reopens_its_file(tmp_path: Path) -> None:
    url = "sqlite://"
    data_dir = tmp_path / "var" / "data"
    message = record()
    async with create_store(url, data_dir=data_dir) as store:
        await store.write([message])
    async with create_store(url, data_dir=data_dir) as store:
        page = await store.query(Query(channel="chan"))
    assert list(page.messages) == [message]
    with sqlite3.connect(data_dir / "timeseries.db") as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone() == ("wal",)


async def test_sqlite_latest_points_of_a_name_come_from_the_index(tmp_path: Path) -> None:
    async with SqliteStore(tmp_path / "t.db") as store:
        await store.write([record(name=f"n{i % 5}", time=1e9 + i) for i in range(2000)])
    statements = build_statements(Query(channel="chan", name="n3", limit=1000), _DIALECT)
    with sqlite3.connect(tmp_path / "t.db") as raw:
        raw.execute("ANALYZE")
        plan = " | ".join(
            row[3]
            for row in raw.execute(f"EXPLAIN QUERY PLAN {statements.page}", statements.page_params)
        )
    assert "messages_channel_name_time" in plan
    assert "TEMP B-TREE" not in plan  # no sort: rows are read in index order


async def test_sqlite_checkpoints_beside_the_writer_and_keeps_the_wal_bounded(
    tmp_path: Path,
) -> None:
    path = tmp_path / "t.db"
    wal = path.with_name("t.db-wal")
    largest_wal = 0
    store = SqliteStore(path, checkpoint_interval=0.02, max_wal_pages=64)
    async with store:
        for batch in range(400):
            # Random message ids touch many index pages: about 40 WAL pages a batch.
            await store.write([record(time=1_700_000_000.0 + batch + i / 100) for i in range(40)])
            largest_wal = max(largest_wal, wal.stat().st_size)
            await asyncio.sleep(0.001)
        assert (await store.query(Query(channel="chan"))).total == 16_000
    # Without the checkpoints the WAL would hold every page every batch wrote (over
    # 60 MB); with them it starts over and stays a few checkpoint intervals deep.
    assert largest_wal < 20_000_000, largest_wal
    with sqlite3.connect(path) as raw:
        assert raw.execute("SELECT count(*) FROM messages").fetchone()[0] == 16_000


async def test_sqlite_locked_by_another_writer_is_unavailable_then_recovers(
    tmp_path: Path,
) -> None:
    path = tmp_path / "t.db"
    message = record()
    async with SqliteStore(path, busy_timeout=0.1) as store:
        other = sqlite3.connect(path, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")
            with pytest.raises(StorageUnavailable):
                await store.write([message])
            assert not store.ready
        finally:
            other.execute("ROLLBACK")
            other.close()
        await store.write([message])
        assert store.ready
        assert (await store.query(Query(channel="chan"))).total == 1


async def test_sqlite_in_an_impossible_place_is_unavailable(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    store = SqliteStore(blocker / "sub" / "t.db")
    with pytest.raises(StorageUnavailable):
        await store.open()
    assert not store.ready


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://postgres@127.0.0.1:{port}/test",
        "influxdb://127.0.0.1:{port}/test",
    ],
)
async def test_unreachable_servers_are_unavailable(url: str, tmp_path: Path) -> None:
    store = create_store(url.format(port=closed_port()), data_dir=tmp_path)
    with pytest.raises(StorageUnavailable):
        await store.open()
    assert not store.ready


async def test_postgres_stores_starting_together_create_the_schema_once(
    postgres_database: str, tmp_path: Path
) -> None:
    stores = [create_store(postgres_database, data_dir=tmp_path) for _ in range(4)]
    try:
        await asyncio.gather(*(store.open() for store in stores))
        assert all(store.ready for store in stores)
    finally:
        await asyncio.gather(*(store.close() for store in stores))


async def test_postgres_recovers_after_its_connections_are_killed(
    postgres_database: str, tmp_path: Path
) -> None:
    database = postgres_database.rsplit("/", 1)[1]
    channel, message_id = uuid.uuid4().hex, uuid.uuid4().hex
    batch = [record(channel=channel, message_id=message_id, seq=i) for i in range(3)]
    async with create_store(postgres_database, data_dir=tmp_path) as store:
        await store.query(Query(channel="warm-up"))
        admin = await asyncpg.connect(POSTGRES_ADMIN_URL)
        try:
            await admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1",
                database,
            )
        finally:
            await admin.close()
        # The writer's retry loop in miniature: unavailable, then the same batch again.
        for _ in range(3):
            try:
                await store.write(batch)
                break
            except StorageUnavailable:
                assert not store.ready
        page = await store.query(Query(channel=channel))
    assert page.total == 3


async def test_influx_recreates_a_dropped_database(tmp_path: Path) -> None:
    name = f"sf_storage_{uuid.uuid4().hex[:12]}"
    try:
        async with create_store(f"{INFLUX_SERVER}/{name}", data_dir=tmp_path) as store:
            async with httpx.AsyncClient() as admin:
                await admin.post(f"{INFLUX_HTTP}/query", data={"q": f'DROP DATABASE "{name}"'})
            await store.write([record()])
            assert (await store.query(Query(channel="chan"))).total == 1
    finally:
        async with httpx.AsyncClient() as admin:
            await admin.post(f"{INFLUX_HTTP}/query", data={"q": f'DROP DATABASE "{name}"'})


async def test_influx_sends_credentials_and_maps_server_errors(tmp_path: Path) -> None:
    """InfluxDB here runs without authentication and never fails on demand, so this test
    answers through httpx's MockTransport to see the requests and play the failures."""
    seen: list[httpx.Request] = []
    failing = False

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if failing:
            return httpx.Response(503, text="overloaded")
        if request.url.path == "/write":
            return httpx.Response(204)
        return httpx.Response(200, json={"results": [{"statement_id": 0}]})

    store = InfluxStore(
        "http://influx.test:8086",
        "plant",
        username="writer",
        password="s3cret",
        transport=httpx.MockTransport(answer),
    )
    async with store:
        await store.write([record()])
        expected = "Basic " + base64.b64encode(b"writer:s3cret").decode()
        assert {request.headers["authorization"] for request in seen} == {expected}
        assert all("s3cret" not in str(request.url) for request in seen)
        assert seen[-1].url.params["db"] == "plant"
        assert seen[-1].url.params["precision"] == "ns"
        failing = True
        with pytest.raises(StorageUnavailable, match="503"):
            await store.write([record()])
        assert not store.ready


async def test_influx_refused_writes_are_errors_not_outages(tmp_path: Path) -> None:
    """A 400 (e.g. a field type conflict) will not pass by retrying; MockTransport plays it."""

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/write":
            return httpx.Response(400, json={"error": "field type conflict"})
        return httpx.Response(200, json={"results": [{"statement_id": 0}]})

    async with InfluxStore("http://influx.test", transport=httpx.MockTransport(answer)) as store:
        with pytest.raises(StorageError, match="field type conflict") as caught:
            await store.write([record()])
        assert not isinstance(caught.value, StorageUnavailable)


@given(st.text())
def test_tag_encoding_round_trips_any_text(text: str) -> None:
    stored = encode_tag(text)
    assert decode_tag(stored) == text
    assert not set(stored) & {"\\", "\n", "\r", "\t"}


def test_line_protocol_escapes_tags_and_string_fields() -> None:
    message = record(
        name='a b,c=d"e\\f',
        subtopic="line1/press",
        string_value='say "hi" \\ bye',
        value=None,
        unit="%RH",
    )
    (body,) = encode_lines([message], chunk=10)
    line = body.decode()
    assert 'name=a\\ b\\,c\\=d"e%5Cf' in line
    assert 'string_value="say \\"hi\\" \\\\ bye"' in line
    assert "value=" not in line.replace("string_value", "")
    assert line.endswith(str(point_key(message)[1]))


def test_non_finite_numbers_are_left_out_of_points() -> None:
    (body,) = encode_lines([record(value=float("nan"), sum=float("inf"))], chunk=10)
    assert b"value=" not in body and b"sum=" not in body and b"seq=0i" in body


def test_batches_are_split_into_bodies_of_bounded_size() -> None:
    bodies = list(encode_lines([record(seq=i) for i in range(12)], chunk=5))
    assert [body.count(b"\n") + 1 for body in bodies] == [5, 5, 2]


def test_point_keys_keep_the_microsecond_and_depend_only_on_the_record_identity() -> None:
    message = record(time=1_700_000_000.123456)
    slot, timestamp = point_key(message)
    assert timestamp // 1000 == 1_700_000_000_123_456
    again = record(message_id=message.message_id, time=message.time, value=99.0, name="x")
    assert point_key(again) == (slot, timestamp)
    same_message = {point_key(record(message_id=message.message_id, seq=s)) for s in range(16000)}
    assert len(same_message) == 16000


def test_colliding_records_of_different_messages_are_reported() -> None:
    # Search ids until two share a point key: the 1-in-16,000 case the store warns about.
    by_key: dict[tuple[str, int], StoredMessage] = {}
    while True:
        candidate = record()
        other = by_key.setdefault(point_key(candidate), candidate)
        if other is not candidate:
            break
    redelivered = record(message_id=candidate.message_id)
    assert colliding_records([other, candidate]) == [(other, candidate)]
    assert colliding_records([candidate, redelivered]) == []
