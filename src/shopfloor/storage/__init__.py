"""Time-series storage: stores SenML records of channel messages and answers readers.

`create_store(url, data_dir=...)` picks the backend by URL scheme: `sqlite://`
(embedded default), `postgresql://`, `influxdb://`, and `memory://` for tests.
"""

from shopfloor.storage._errors import (
    InvalidQuery,
    InvalidRecord,
    StorageError,
    StorageUnavailable,
)
from shopfloor.storage._influx import InfluxStore
from shopfloor.storage._memory import MemoryStore
from shopfloor.storage._message import EARLIEST_TIME, LATEST_TIME, StoredMessage, stored_messages
from shopfloor.storage._postgres import PostgresStore
from shopfloor.storage._query import (
    MAX_AGGREGATE_ROWS,
    MAX_LIMIT,
    MAX_OFFSET,
    MAX_SERIES_POINTS,
    QUERY_PARAMETERS,
    Aggregation,
    Comparator,
    Direction,
    Order,
    Page,
    Point,
    Query,
    Series,
    parse_interval,
)
from shopfloor.storage._sqlite import SqliteStore
from shopfloor.storage._store import TimeseriesStore, create_store

__all__ = [
    "EARLIEST_TIME",
    "LATEST_TIME",
    "MAX_AGGREGATE_ROWS",
    "MAX_LIMIT",
    "MAX_OFFSET",
    "MAX_SERIES_POINTS",
    "QUERY_PARAMETERS",
    "Aggregation",
    "Comparator",
    "Direction",
    "InfluxStore",
    "InvalidQuery",
    "InvalidRecord",
    "MemoryStore",
    "Order",
    "Page",
    "Point",
    "PostgresStore",
    "Query",
    "Series",
    "SqliteStore",
    "StorageError",
    "StorageUnavailable",
    "StoredMessage",
    "TimeseriesStore",
    "create_store",
    "parse_interval",
    "stored_messages",
]
