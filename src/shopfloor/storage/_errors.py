"""Errors raised by the time-series stores (a subtree of `shopfloor.core`'s error tree).

    StorageError                 any failure of a store (kind `unavailable`: the API
    │                            answers 503 with Retry-After, never 500)
    ├── StorageUnavailable       the backend is down, unreachable, locked or timed out:
    │                            the writer backs off and retries the same batch, and
    │                            because writes are idempotent nothing acknowledged is lost
    ├── InvalidStoreUrl          no backend for the URL's scheme (also a ValueError)
    ├── InvalidRecord            records no backend can hold (time outside years
    │                            1678-2261); nothing of the batch was written, `records`
    │                            names them so the writer can set them aside
    └── InvalidQuery             a reader asked for something that cannot be answered;
                                 the API answers 400 with `code` as the stable error code

Foreign exceptions (sqlite3, asyncpg, httpx) are translated at the boundary of each
backend, most specific first, with the original kept as `__cause__`.
"""

from __future__ import annotations

from shopfloor.core import ErrorKind, ShopfloorError

__all__ = [
    "InvalidQuery",
    "InvalidRecord",
    "InvalidStoreUrl",
    "StorageError",
    "StorageUnavailable",
]


class StorageError(ShopfloorError):
    """A store failed to write or read."""

    code = "timeseries_error"
    kind = ErrorKind.UNAVAILABLE


class StorageUnavailable(StorageError):
    """The backend cannot be reached or did not answer in time; retry later."""

    code = "timeseries_unavailable"


class InvalidStoreUrl(StorageError, ValueError):
    """`SHOPFLOOR_TIMESERIES_URL` names no known backend."""

    code = "invalid_timeseries_url"
    kind = ErrorKind.INVALID


class InvalidRecord(StorageError):
    """Some records of a batch cannot be stored by any backend; the batch was refused."""

    code = "invalid_record"
    kind = ErrorKind.INVALID

    def __init__(self, message: str, records: list[tuple[str, int]]) -> None:
        super().__init__(message)
        self.records = records  # (message_id, seq) of each refused record


class InvalidQuery(StorageError):
    """A query is malformed or asks for an impossible combination of parameters."""

    kind = ErrorKind.INVALID

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message, code=code)
