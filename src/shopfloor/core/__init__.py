"""The platform's shape: services, errors, settings, backends, lifecycle and database.

Every capability is a folder with a `capability.py` registering its services (and a
settings section); `Platform` runs the services a process needs, in order. See
`docs/architecture.md` for the walkthrough of adding a capability.
"""

from ._backends import Backends, Pluggable
from ._backoff import Backoff, backoff_delay
from ._database import DatabaseError, MigrationChain, async_url, create_engine, migrate
from ._discovery import ENTRY_POINT_GROUP, discover
from ._errors import ErrorKind, ShopfloorError, http_status
from ._files import (
    DataDirInUse,
    file_lock,
    held_file_lock,
    lock_data_dir,
    private_dir,
    private_file,
    sync_dir,
    write_atomically,
)
from ._lazy import lazy_import
from ._lifecycle import Lifecycle, Loop, Opened, first_set, until_set
from ._platform import Health, HealthCheck, Platform, plan, selectable_services
from ._service import EDGE_STAGE, Service, ServiceError
from ._settings import (
    CoreSettings,
    Section,
    SettingInfo,
    SettingsError,
    env_names,
    mask_url_passwords,
    settings_model,
)
from ._sse import KEEPALIVE, ServerSentEvent, SseParser, sse_event
from ._tls import client_ssl_context
from ._urls import UrlOptions

__all__ = [
    "EDGE_STAGE",
    "ENTRY_POINT_GROUP",
    "KEEPALIVE",
    "Backends",
    "Backoff",
    "CoreSettings",
    "DataDirInUse",
    "DatabaseError",
    "ErrorKind",
    "Health",
    "HealthCheck",
    "Lifecycle",
    "Loop",
    "MigrationChain",
    "Opened",
    "Platform",
    "Pluggable",
    "Section",
    "ServerSentEvent",
    "Service",
    "ServiceError",
    "SettingInfo",
    "SettingsError",
    "ShopfloorError",
    "SseParser",
    "UrlOptions",
    "async_url",
    "backoff_delay",
    "client_ssl_context",
    "create_engine",
    "discover",
    "env_names",
    "file_lock",
    "first_set",
    "held_file_lock",
    "http_status",
    "lazy_import",
    "lock_data_dir",
    "mask_url_passwords",
    "migrate",
    "plan",
    "private_dir",
    "private_file",
    "selectable_services",
    "settings_model",
    "sse_event",
    "sync_dir",
    "until_set",
    "write_atomically",
]
