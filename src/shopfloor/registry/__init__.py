"""Registry: organisations, users, things, channels and connections (SQLAlchemy 2, async)."""

from ._database import MIGRATIONS
from ._errors import Conflict, NotFound, RegistryError
from ._events import ChangeKind, ChangeListener, RegistryChange
from ._registry import KeyCipher, Registry, RegistryTransaction
from ._types import (
    SORT_KEYS,
    USER_SORT_KEYS,
    Channel,
    Connection,
    Entity,
    Org,
    Page,
    Permission,
    Role,
    SortKey,
    Thing,
    User,
    UserSortKey,
)

__all__ = [
    "MIGRATIONS",
    "SORT_KEYS",
    "USER_SORT_KEYS",
    "ChangeKind",
    "ChangeListener",
    "Channel",
    "Conflict",
    "Connection",
    "Entity",
    "KeyCipher",
    "NotFound",
    "Org",
    "Page",
    "Permission",
    "Registry",
    "RegistryChange",
    "RegistryError",
    "RegistryTransaction",
    "Role",
    "SortKey",
    "Thing",
    "User",
    "UserSortKey",
]
