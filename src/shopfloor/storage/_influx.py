"""The InfluxDB store: the 1.x HTTP API (`/write`, `/query`), which InfluxDB 2 and 3 also
serve for compatibility. Line protocol and point identity live in `_line_protocol`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final, Self
from urllib.parse import parse_qs, unquote, urlsplit

import httpx

from shopfloor.storage._errors import StorageError, StorageUnavailable
from shopfloor.storage._line_protocol import (
    MEASUREMENT,
    TAGS,
    colliding_records,
    decode_tag,
    encode_lines,
    encode_tag,
    influxql_number,
    influxql_string,
)
from shopfloor.storage._message import StoredMessage, from_micros
from shopfloor.storage._query import Page, Query, aggregate_page
from shopfloor.storage._store import TimeseriesStore, check_aggregate_rows

__all__ = ["InfluxStore"]

logger = logging.getLogger(__name__)

DEFAULT_DATABASE: Final = "shopfloor"
# Points per /write request: small enough for InfluxDB's default 25 MB body limit with
# long string values, large enough that a 10,000-record batch is two requests.
WRITE_CHUNK: Final = 5000
_FIELDS: Final = (
    "value",
    "string_value",
    "bool_value",
    "data_value",
    "sum",
    "unit",
    "message_id",
    "seq",
)
_COMPARATORS: Final = {"eq": "=", "lt": "<", "le": "<=", "gt": ">", "ge": ">="}
_FUNCTIONS: Final = {
    "min": 'min("value")',
    "max": 'max("value")',
    "avg": 'mean("value")',
    "sum": 'sum("value")',
    "count": 'count("seq")',
}
# GROUP BY time() needs both ends of the range; without them InfluxDB ends it at now(),
# hiding records stamped in the future. These bounds lie inside InfluxDB's time range.
_EARLIEST_NS: Final = -(1 << 62)
_LATEST_NS: Final = 1 << 62


class InfluxStore(TimeseriesStore, scheme="influxdb"):
    """Records in InfluxDB: `influxdb://host:8086/database`, measurement `messages`.

    Tags: channel, subtopic, publisher, name, protocol and `slot` (16 values, breaks
    timestamp ties between messages); fields: value, string_value, bool_value,
    data_value, sum, unit, message_id, seq.

    URL query parameters: `username`/`password` (or `user:password@` in the URL) are
    sent with HTTP basic auth; `tls=true` talks HTTPS. The database is created
    when missing (servers that cannot, like InfluxDB 2's compatibility API, must have
    it mapped already).
    """

    def __init__(
        self,
        base_url: str,
        database: str = DEFAULT_DATABASE,
        *,
        username: str | None = None,
        password: str | None = None,
        timeout: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__()
        self.base_url = base_url
        self.database = database
        # Basic auth rather than u/p query parameters keeps secrets out of request lines
        # that proxies log; InfluxDB 1.x and the 2.x/3.x compatibility API accept both.
        self._auth = None if username is None else httpx.BasicAuth(username, password or "")
        self._timeout = timeout
        self._transport = transport
        self._client: httpx.AsyncClient | None = None

    @classmethod
    def from_url(cls, url: str, *, data_dir: Path) -> Self:
        parts = urlsplit(url)
        options = {key: values[-1] for key, values in parse_qs(parts.query).items()}
        username = options.get("username") or (unquote(parts.username or "") or None)
        password = options.get("password") or unquote(parts.password or "")
        scheme = "https" if options.get("tls", "").lower() in ("1", "true", "yes") else "http"
        host = parts.hostname or "127.0.0.1"
        if ":" in host:
            host = f"[{host}]"
        database = parts.path.strip("/") or DEFAULT_DATABASE
        return cls(
            f"{scheme}://{host}:{parts.port or 8086}",
            database,
            username=username,
            password=password if username is not None else None,
        )

    async def _open(self) -> None:
        self._client = httpx.AsyncClient(
            base_url=self.base_url,
            auth=self._auth,
            timeout=self._timeout,
            transport=self._transport,
        )
        try:
            await self._create_database()
        except BaseException:
            await self._close()
            raise

    async def _create_database(self) -> None:
        try:
            await self._statements([f"CREATE DATABASE {_ident(self.database)}"], database=False)
        except StorageUnavailable:
            raise
        except StorageError as exc:
            # InfluxDB 2/3 compatibility endpoints refuse CREATE DATABASE; writes will
            # tell if the database really is missing.
            logger.info("could not create InfluxDB database %s: %s", self.database, exc)

    async def _close(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()

    async def _write(self, batch: Sequence[StoredMessage]) -> None:
        for first, second in colliding_records(batch):
            logger.warning(
                "InfluxDB keeps one of records %s/%d and %s/%d: same series and timestamp",
                first.message_id,
                first.seq,
                second.message_id,
                second.seq,
            )
        params = {"db": self.database, "precision": "ns"}
        for body in encode_lines(batch, chunk=WRITE_CHUNK):
            response = await self._request("POST", "/write", params=params, content=body)
            if response.status_code == 404:
                # The database was dropped under us: recreate it once and write again.
                await self._create_database()
                response = await self._request("POST", "/write", params=params, content=body)
            _check(response, "write")

    async def _query(self, query: Query) -> Page:
        if query.aggregation is not None:
            return await self._aggregate(query)
        where = _where(query)
        direction = "ASC" if query.dir == "asc" else "DESC"
        columns = ", ".join(_ident(column) for column in (*_FIELDS, *TAGS))
        # Every value in `where` is a literal escaped by influxql_string/influxql_number.
        counted, selected = await self._statements(
            [
                f'SELECT count("seq") FROM {MEASUREMENT} WHERE {where}',  # noqa: S608
                f"SELECT {columns} FROM {MEASUREMENT} WHERE {where} "  # noqa: S608
                f"ORDER BY time {direction} LIMIT {query.limit} OFFSET {query.offset}",
            ]
        )
        total = sum(int(row[1]) for series in counted for row in series["values"])
        messages = [
            _message(dict(zip(series["columns"], row, strict=True)))
            for series in selected
            for row in series["values"]
        ]
        return Page(total=total, offset=query.offset, limit=query.limit, messages=messages)

    async def _aggregate(self, query: Query) -> Page:
        where = _where(query)
        if query.from_us is None:
            where += f" AND time >= {_EARLIEST_NS}"
        if query.to_us is None:
            where += f" AND time < {_LATEST_NS}"
        function = _FUNCTIONS[query.aggregation or "count"]
        source = f"FROM {MEASUREMENT} WHERE {where}"
        if query.interval_us is not None:
            group = f'GROUP BY time({query.interval_us}u), "name" fill(none)'
            (results,) = await self._statements([f"SELECT {function} {source} {group}"])
            rows = [
                (row[0] // 1000, decode_tag(series["tags"]["name"]), row[1])
                for series in results
                for row in series["values"]
            ]
        else:
            # One bucket per name, starting at `from` or else at the earliest record.
            first = 'first("seq")' if query.aggregation == "count" else 'first("value")'
            results, firsts = await self._statements(
                [
                    f'SELECT {function} {source} GROUP BY "name"',
                    f'SELECT {first} {source} GROUP BY "name"',
                ]
            )
            earliest = {series["tags"]["name"]: series["values"][0][0] for series in firsts}
            rows = []
            for series in results:
                name = series["tags"]["name"]
                start = query.from_us if query.from_us is not None else earliest[name] // 1000
                rows.extend((start, decode_tag(name), row[1]) for row in series["values"])
        check_aggregate_rows(len(rows), self.max_aggregate_rows)
        return aggregate_page(query, rows)

    async def _statements(
        self, statements: Sequence[str], *, database: bool = True
    ) -> list[list[dict[str, Any]]]:
        """Run InfluxQL statements in one request; the series of each, in order."""
        params = {"q": ";\n".join(statements), "epoch": "ns"}
        if database:
            params["db"] = self.database
        response = await self._request("POST", "/query", data=params)
        _check(response, "query")
        body = response.json()
        if "error" in body:
            raise StorageError(f"InfluxDB query failed: {body['error']}")
        results = body.get("results", [])
        series: list[list[dict[str, Any]]] = []
        for result in results:
            if "error" in result:
                raise StorageError(f"InfluxDB query failed: {result['error']}")
            series.append(result.get("series", []))
        if len(series) != len(statements):
            raise StorageError(f"InfluxDB answered {len(series)} of {len(statements)} statements")
        return series

    async def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        if self._client is None:
            raise StorageUnavailable("the InfluxDB store is closed")
        try:
            return await self._client.request(method, path, **kwargs)
        except httpx.TimeoutException as exc:
            raise StorageUnavailable(f"InfluxDB did not answer in time: {exc!r}") from exc
        except httpx.TransportError as exc:
            raise StorageUnavailable(f"InfluxDB unreachable: {exc!r}") from exc


def _check(response: httpx.Response, action: str) -> None:
    if response.is_success:
        return
    detail = response.text[:500]
    if response.status_code >= 500 or response.status_code == 429:
        raise StorageUnavailable(f"InfluxDB {action} failed ({response.status_code}): {detail}")
    raise StorageError(f"InfluxDB {action} failed ({response.status_code}): {detail}")


def _ident(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _where(query: Query) -> str:
    clauses = [f'"channel" = {influxql_string(encode_tag(query.channel))}']
    for tag in ("subtopic", "publisher", "name"):
        wanted: str | None = getattr(query, tag)
        if wanted is not None:
            clauses.append(f"{_ident(tag)} = {influxql_string(encode_tag(wanted))}")
    if query.v is not None:
        clauses.append(f'"value" {_COMPARATORS[query.comparator]} {influxql_number(query.v)}')
    if query.vs is not None:
        clauses.append(f'"string_value" = {influxql_string(query.vs)}')
    if query.vb is not None:
        clauses.append(f'"bool_value" = {"true" if query.vb else "false"}')
    # Stored timestamps are microseconds * 1000 plus 0..999 ns, so these bounds keep the
    # microsecond semantics of the SQL stores: from inclusive, to exclusive.
    if query.from_us is not None:
        clauses.append(f"time >= {query.from_us * 1000}")
    if query.to_us is not None:
        clauses.append(f"time < {query.to_us * 1000}")
    return " AND ".join(clauses)


def _message(row: dict[str, Any]) -> StoredMessage:
    value, total = row["value"], row["sum"]
    return StoredMessage(
        channel=decode_tag(row["channel"] or ""),
        subtopic=decode_tag(row["subtopic"] or ""),
        publisher=decode_tag(row["publisher"] or ""),
        protocol=decode_tag(row["protocol"] or ""),
        message_id=row["message_id"],
        seq=int(row["seq"]),
        name=decode_tag(row["name"] or ""),
        unit=row["unit"],
        time=from_micros(row["time"] // 1000),
        value=None if value is None else float(value),
        string_value=row["string_value"],
        bool_value=row["bool_value"],
        data_value=row["data_value"],
        sum=None if total is None else float(total),
    )
