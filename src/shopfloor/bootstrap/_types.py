"""Bootstrap value objects, detached from the database."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime


class State(enum.IntEnum):
    """As Mainflux: an inactive thing is disconnected from its channels, an active one connected."""

    INACTIVE = 0
    ACTIVE = 1


@dataclass(frozen=True, slots=True, kw_only=True)
class BootstrapConfig:
    thing_id: str
    org_id: str
    external_id: str
    name: str
    channels: tuple[str, ...]
    content: str
    client_cert: str
    ca_cert: str
    state: State
    failed_attempts: int
    created_at: datetime
    updated_at: datetime
    #: Encrypted; only the store opens them.
    external_key_digest: str = field(repr=False)
    external_key_sealed: str = field(repr=False)
    client_key_sealed: str = field(repr=False)

    @property
    def has_client_key(self) -> bool:
        return bool(self.client_key_sealed)


@dataclass(frozen=True, slots=True, kw_only=True)
class UnknownDevice:
    """An external id that asked to bootstrap without a configuration."""

    external_id: str
    first_seen: datetime
    last_seen: datetime
    attempts: int
    last_address: str
