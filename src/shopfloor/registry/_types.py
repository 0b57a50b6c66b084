"""Registry value objects, detached from the database."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, Literal, TypeVar, get_args

T = TypeVar("T")


class Role(enum.StrEnum):
    """Organisation roles; the permission table is in docs/roles.md."""

    ADMIN = "admin"
    ENGINEER = "engineer"
    OPERATOR = "operator"
    VIEWER = "viewer"


#: Orders of a page of things or channels (the second key is always the id).
SortKey = Literal["name", "-name", "created_at", "-created_at"]
SORT_KEYS: tuple[SortKey, ...] = get_args(SortKey)
#: Orders of a page of users (the second key is always the id).
UserSortKey = Literal["email", "-email", "role", "-role", "created_at", "-created_at"]
USER_SORT_KEYS: tuple[UserSortKey, ...] = get_args(UserSortKey)


class Permission(enum.StrEnum):
    PUBLISH = "publish"
    SUBSCRIBE = "subscribe"


@dataclass(frozen=True, slots=True, kw_only=True)
class Org:
    id: str
    name: str
    created_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class User:
    id: str
    email: str
    org_id: str | None
    role: Role | None
    platform_admin: bool
    password_hash: str = field(repr=False)
    created_at: datetime
    #: Counts password changes and resets; a token issued under an older value is refused.
    token_generation: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class Entity:
    """A thing or a channel: both have a name, metadata and tags inside one organisation."""

    id: str
    org_id: str
    name: str
    metadata: dict[str, Any]
    tags: tuple[str, ...]
    created_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class Thing(Entity):
    #: Encrypted thing key; only `ThingKeys.decrypt` turns it back into the key.
    key_ciphertext: str = field(repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class Channel(Entity):
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class Connection:
    channel_id: str
    thing_id: str
    permissions: frozenset[Permission]
    created_at: datetime

    def allows(self, permission: Permission) -> bool:
        return permission in self.permissions


@dataclass(frozen=True, slots=True, kw_only=True)
class Page(Generic[T]):
    total: int
    offset: int
    limit: int
    items: Sequence[T]
