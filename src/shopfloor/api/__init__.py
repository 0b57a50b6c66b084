"""HTTP API layer: routes call services; services never import this package.

A capability's `routes.py` uses the dependencies below (`PrincipalDep`, `PagingDep`,
`PlatformDep`) and the page shape `PageOut`, and raises its own errors. The console
checks its forms with the API's own bodies (`EntityCreate`, `EntityUpdate`, `UserCreate`,
`UserUpdate`, `PasswordChange`) and reads stored messages as the readers API does
(`reader_query`, `reader_channel`, `csv_response`).
"""

from ._bodies import read_bounded
from ._deps import Paging, PagingDep, PlatformDep, PrincipalDep, Services, ServicesDep
from ._errors import ApiError, error_response, install_error_handlers
from ._middleware import BodyLimitMiddleware, HttpMetrics, MetricsMiddleware
from ._reading import csv_response, reader_channel, reader_query
from ._schemas import EntityCreate, EntityUpdate, PageOut, PasswordChange, UserCreate, UserUpdate
from ._sse import event_stream
from .identity import router as identity_router
from .readers import router as readers_router
from .registry import router as registry_router
from .system import mount_docs
from .system import router as system_router

__all__ = [
    "ApiError",
    "BodyLimitMiddleware",
    "EntityCreate",
    "EntityUpdate",
    "HttpMetrics",
    "MetricsMiddleware",
    "PageOut",
    "Paging",
    "PagingDep",
    "PasswordChange",
    "PlatformDep",
    "PrincipalDep",
    "Services",
    "ServicesDep",
    "UserCreate",
    "UserUpdate",
    "csv_response",
    "error_response",
    "event_stream",
    "identity_router",
    "install_error_handlers",
    "mount_docs",
    "read_bounded",
    "reader_channel",
    "reader_query",
    "readers_router",
    "registry_router",
    "system_router",
]
