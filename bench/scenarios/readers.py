"""Readers: the latest 1,000 points of one name among millions of stored rows.

Rows are bulk-loaded with SQL straight into the store's own table (the store is opened
first so that it creates its schema), over many names and publishers in the bench
channel: the store's secondary indexes are dropped during the load and rebuilt with
their own definitions from the database catalogue. Then the same question is timed
three ways, several times each: the bare database answering the page (the anchor),
`store.query(...)` (count + page, rows turned into messages), and the readers API over
HTTP (authorisation, query, JSON).
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
import uuid
from collections.abc import Awaitable, Callable
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

# asyncpg ships no type information.
import asyncpg  # type: ignore[import-untyped]
import httpx

from bench._scenario import Anchor, BenchContext, Figure, Goal, Scenario, ScenarioResult
from bench._servers import Plant, create_plant, shopfloor_server
from bench._stats import median, percentile
from shopfloor.storage import Query, create_store

__all__ = ["ReadersScenario"]

GOAL_MS = 50.0
LIMIT = 1000
NAMES_PER_PUBLISHER = 10
CHUNK = 1_000_000
# Values repeat with a prime period so that neighbouring names do not share values.
_SQLITE_LOAD = """
WITH RECURSIVE n(i) AS (SELECT ? UNION ALL SELECT i + 1 FROM n WHERE i < ?)
INSERT INTO messages (channel, subtopic, publisher, protocol, message_id, seq, name, unit,
                      time_us, value)
SELECT ?, '', printf('%08d-0000-4000-8000-000000000000', (i % ?) / ?), 'http',
       printf('bulk-%010d', i), 0,
       printf('machine-%03d:sensor-%d', (i % ?) / ?, (i % ?) % ?), 'Cel',
       ? + (i / ?) * 1000000, (i % 997) * 0.25
FROM n
"""
_POSTGRES_LOAD = """
INSERT INTO messages (channel, subtopic, publisher, protocol, message_id, seq, name, unit,
                      time_us, value)
SELECT $1, '', lpad(((i % $2) / $3)::text, 8, '0') || '-0000-4000-8000-000000000000', 'http',
       'bulk-' || lpad(i::text, 10, '0'), 0,
       'machine-' || lpad(((i % $2) / $3)::text, 3, '0') || ':sensor-' || ((i % $2) % $3)::text,
       'Cel', $4 + (i / $2) * 1000000, ((i % 997) * 0.25)::float8
FROM generate_series($5::bigint, $6::bigint) AS i
"""
_ANCHOR_SQL = (
    "SELECT * FROM messages WHERE channel = {0} AND name = {1} ORDER BY time_us DESC LIMIT 1000"
)


@dataclass(frozen=True, slots=True)
class Dataset:
    """`rows` points over `names` names, one point per name per second, ending about now."""

    rows: int
    names: int
    first_time_us: int

    @classmethod
    def ending_now(cls, *, rows: int, names: int) -> Dataset:
        return cls(rows, names, int((time.time() - rows // names) * 1e6))

    @property
    def target(self) -> str:
        """The name queried: one in the middle of the key space."""
        index = self.names // 2 + 7
        return f"machine-{index // NAMES_PER_PUBLISHER:03d}:sensor-{index % NAMES_PER_PUBLISHER}"


@dataclass(frozen=True, slots=True)
class Timings:
    anchor_ms: list[float]
    store_ms: list[float]
    http_ms: list[float]
    load_seconds: float


class ReadersScenario(Scenario, name="readers"):
    title = "Readers: latest 1,000 points of one name"

    def run(self, ctx: BenchContext, result: ScenarioResult) -> None:
        # Enough rows per name for a full page in quick mode too.
        data = Dataset.ending_now(rows=ctx.pick(200_000, 10_000_000), names=ctx.pick(100, 1_000))
        rows = data.rows
        runs = ctx.pick(10, 30)
        data_dir = ctx.work_dir / "readers-data"
        # The plant (registry) lives in the data dir and serves both backends.
        with shopfloor_server(ctx.python, data_dir, services="api") as server:
            plant = create_plant(server.url)
        database = f"sf_bench_{uuid.uuid4().hex[:12]}"
        base = ctx.postgres_url.rsplit("/", 1)[0]
        postgres_url = f"{base}/{database}"
        sqlite = self._sqlite(ctx, data_dir, plant, data, runs)
        self._figures(result, "SQLite", "sqlite", sqlite, rows, runs)
        asyncio.run(_admin(ctx.postgres_url, f'CREATE DATABASE "{database}"'))
        try:
            postgres = self._postgres(ctx, data_dir, plant, postgres_url, data, runs)
            version = asyncio.run(_fetch_value(postgres_url, "SHOW server_version")).split()[0]
        finally:
            asyncio.run(
                _admin(ctx.postgres_url, f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
            )
        self._figures(result, f"PostgreSQL {version}", "postgresql", postgres, rows, runs)
        result.notes.append(
            f"{rows:,} rows in one channel: {data.names:,} names from "
            f"{data.names // NAMES_PER_PUBLISHER} publishers, one point per name per second, "
            f"so {rows // data.names:,} rows per name; query `name={data.target}&limit={LIMIT}`. "
            f"Each figure is the p95 of {runs} runs after one unmeasured run; the anchor "
            "runs alternate with the store's. HTTP: a keep-alive httpx client with a user "
            "token, timed until the whole JSON body is read."
        )

    def _sqlite(
        self, ctx: BenchContext, data_dir: Path, plant: Plant, data: Dataset, runs: int
    ) -> Timings:
        url = "sqlite://"
        asyncio.run(_open_and_close(url, data_dir))
        path = data_dir / "timeseries.db"
        started = time.monotonic()
        _load_sqlite(path, plant.channel, data)
        load_seconds = time.monotonic() - started
        with closing(sqlite3.connect(path)) as connection:

            async def bare() -> int:
                cursor = connection.execute(
                    _ANCHOR_SQL.format("?", "?"), (plant.channel, data.target)
                )
                return len(cursor.fetchall())

            anchor_ms, store_ms = asyncio.run(
                _time_store(url, data_dir, plant.channel, data, bare, runs)
            )
        with shopfloor_server(ctx.python, data_dir, services="api") as server:
            http_ms = _time_http(server.url, plant, data, runs)
        return Timings(anchor_ms, store_ms, http_ms, load_seconds)

    def _postgres(
        self, ctx: BenchContext, data_dir: Path, plant: Plant, url: str, data: Dataset, runs: int
    ) -> Timings:
        asyncio.run(_open_and_close(url, data_dir))
        started = time.monotonic()
        asyncio.run(_load_postgres(url, plant.channel, data))
        load_seconds = time.monotonic() - started

        async def measure() -> tuple[list[float], list[float]]:
            connection = await asyncpg.connect(url)
            try:

                async def bare() -> int:
                    sql = _ANCHOR_SQL.format("$1", "$2")
                    return len(await connection.fetch(sql, plant.channel, data.target))

                return await _time_store(url, data_dir, plant.channel, data, bare, runs)
            finally:
                await connection.close()

        anchor_ms, store_ms = asyncio.run(measure())
        with shopfloor_server(
            ctx.python, data_dir, services="api", timeseries_url=url, log_name="shopfloor-postgres"
        ) as server:
            http_ms = _time_http(server.url, plant, data, runs)
        return Timings(anchor_ms, store_ms, http_ms, load_seconds)

    @staticmethod
    def _figures(
        result: ScenarioResult, backend: str, key: str, timings: Timings, rows: int, runs: int
    ) -> None:
        anchor = Anchor(
            label=f"bare {backend.split()[0]} SELECT of the page, p95",
            value=percentile(timings.anchor_ms, 95),
        )
        goal = Goal(kind="below", threshold=GOAL_MS)
        for path, samples in (("store", timings.store_ms), ("http", timings.http_ms)):
            label = "`store.query`" if path == "store" else "readers API over HTTP"
            result.figures.append(
                Figure(
                    key=f"readers.{key}.{path}_p95",
                    label=f"latest {LIMIT:,} of {rows:,} rows, {backend}, {label}, p95",
                    value=percentile(samples, 95),
                    unit="ms",
                    anchor=anchor,
                    goal=goal,
                    detail=f"median {median(samples):.1f} ms (anchor median "
                    f"{median(timings.anchor_ms):.1f} ms)",
                )
            )
        result.notes.append(
            f"{backend}: bulk load of {rows:,} rows and index rebuild took "
            f"{timings.load_seconds:.0f} s."
        )
        for what, samples in (
            ("anchor", timings.anchor_ms),
            ("store", timings.store_ms),
            ("http", timings.http_ms),
        ):
            result.check(
                f"{backend}: {what} timed {runs} runs, all above 0 ms",
                len(samples) == runs and min(samples) > 0,
            )


async def _open_and_close(url: str, data_dir: Path) -> None:
    async with create_store(url, data_dir=data_dir):
        pass


async def _time_store(
    url: str,
    data_dir: Path,
    channel: str,
    data: Dataset,
    bare: Callable[[], Awaitable[int]],
    runs: int,
) -> tuple[list[float], list[float]]:
    """Alternate the bare page and `store.query`, one unmeasured round first."""
    anchor_ms: list[float] = []
    store_ms: list[float] = []
    query = Query(channel=channel, name=data.target, limit=LIMIT)
    async with create_store(url, data_dir=data_dir) as store:
        for attempt in range(runs + 1):
            started = time.perf_counter()
            count = await bare()
            bare_ms = (time.perf_counter() - started) * 1e3
            if count != LIMIT:
                raise RuntimeError(f"the bare query returned {count} rows, not {LIMIT}")
            started = time.perf_counter()
            page = await store.query(query)
            query_ms = (time.perf_counter() - started) * 1e3
            _check_page(data, page.total, [(m.name, m.time) for m in page.messages])
            if attempt:
                anchor_ms.append(bare_ms)
                store_ms.append(query_ms)
    return anchor_ms, store_ms


def _time_http(url: str, plant: Plant, data: Dataset, runs: int) -> list[float]:
    timings: list[float] = []
    params = {"name": data.target, "limit": str(LIMIT)}
    with httpx.Client(base_url=url, headers=plant.user, timeout=60) as http:
        for attempt in range(runs + 1):
            started = time.perf_counter()
            response = http.get(plant.read_path, params=params)
            elapsed = (time.perf_counter() - started) * 1e3
            if response.status_code != 200:
                raise RuntimeError(f"readers API: {response.status_code} {response.text[:300]}")
            body = response.json()
            _check_page(data, body["total"], [(m["name"], m["time"]) for m in body["messages"]])
            if attempt:
                timings.append(elapsed)
    return timings


def _check_page(data: Dataset, total: int, points: list[tuple[str, float]]) -> None:
    """The answer is the latest 1,000 points of the one name, newest first."""
    times = [t for _, t in points]
    if (
        len(points) != LIMIT
        or total != data.rows // data.names
        or any(name != data.target for name, _ in points)
        or times != sorted(times, reverse=True)
    ):
        raise RuntimeError(f"unexpected page: total {total}, {len(points)} points")


def _load_sqlite(path: Path, channel: str, data: Dataset) -> None:
    with closing(sqlite3.connect(path, isolation_level=None)) as connection:
        # A throw-away bulk load: no journal, no fsync, a big page cache for the index
        # builds. The store sets WAL mode again when it opens the file.
        for pragma in ("journal_mode=OFF", "synchronous=OFF", "cache_size=-1000000"):
            connection.execute(f"PRAGMA {pragma}")
        indexes = connection.execute(
            "SELECT name, sql FROM sqlite_master "
            "WHERE type = 'index' AND tbl_name = 'messages' AND sql IS NOT NULL"
        ).fetchall()
        for name, _ in indexes:
            connection.execute(f'DROP INDEX "{name}"')
        first, names, per = data.first_time_us, data.names, NAMES_PER_PUBLISHER
        for low in range(0, data.rows, CHUNK):
            high = min(data.rows, low + CHUNK) - 1
            connection.execute("BEGIN")
            connection.execute(
                _SQLITE_LOAD, (low, high, channel, names, per, names, per, names, per, first, names)
            )
            connection.execute("COMMIT")
        for _, sql in indexes:
            connection.execute(sql)
        connection.execute("PRAGMA journal_mode=WAL")


async def _load_postgres(url: str, channel: str, data: Dataset) -> None:
    connection = await asyncpg.connect(url)
    try:
        await connection.execute("SET synchronous_commit = off")
        await connection.execute("SET maintenance_work_mem = '1GB'")
        # Secondary indexes only: the primary key backs ON CONFLICT and stays.
        indexes = await connection.fetch(
            "SELECT i.indexname, i.indexdef FROM pg_indexes i WHERE i.tablename = 'messages' "
            "AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)"
        )
        for index in indexes:
            await connection.execute(f'DROP INDEX "{index["indexname"]}"')
        for low in range(0, data.rows, CHUNK):
            high = min(data.rows, low + CHUNK) - 1
            await connection.execute(
                _POSTGRES_LOAD,
                channel,
                data.names,
                NAMES_PER_PUBLISHER,
                data.first_time_us,
                low,
                high,
            )
        for index in indexes:
            await connection.execute(index["indexdef"])
        # What autovacuum does soon after a load in production: statistics for the
        # planner and a visibility map for index-only checks.
        await connection.execute("VACUUM ANALYZE messages")
    finally:
        await connection.close()


async def _admin(url: str, statement: str) -> None:
    connection = await asyncpg.connect(url)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


async def _fetch_value(url: str, statement: str) -> str:
    connection = await asyncpg.connect(url)
    try:
        return str(await connection.fetchval(statement))
    finally:
        await connection.close()
