"""Device bootstrap: configurations that turn an external id and key into a thing's
credentials, channels and certificates (Mainflux-compatible), and a secure exchange."""

from ._bootstrap import (
    BOOTSTRAPPED,
    CONFIG_CREATED,
    CONFIG_REMOVED,
    CONFIG_UPDATED,
    STATE_CHANGED,
    Bootstrap,
    PublicUrls,
)
from ._devices import Challenges, UnknownDevices
from ._errors import (
    BootstrapError,
    ChallengeInvalid,
    ConfigConflict,
    ConfigNotFound,
    DeviceDenied,
    InvalidConfig,
    RateLimited,
)
from ._limits import DeviceLimits, TokenBuckets
from ._sealed import SealedFields
from ._store import ConfigStore
from ._types import BootstrapConfig, State, UnknownDevice
from ._wire import (
    CHALLENGE_BYTES,
    NONCE_BYTES,
    PROTOCOL,
    ExchangeKeys,
    b64decode,
    b64encode,
    context,
    derive_keys,
    new_challenge,
    open_document,
    seal_document,
)

__all__ = [
    "BOOTSTRAPPED",
    "CHALLENGE_BYTES",
    "CONFIG_CREATED",
    "CONFIG_REMOVED",
    "CONFIG_UPDATED",
    "NONCE_BYTES",
    "PROTOCOL",
    "STATE_CHANGED",
    "Bootstrap",
    "BootstrapConfig",
    "BootstrapError",
    "ChallengeInvalid",
    "Challenges",
    "ConfigConflict",
    "ConfigNotFound",
    "ConfigStore",
    "DeviceDenied",
    "DeviceLimits",
    "ExchangeKeys",
    "InvalidConfig",
    "PublicUrls",
    "RateLimited",
    "SealedFields",
    "State",
    "TokenBuckets",
    "UnknownDevice",
    "UnknownDevices",
    "b64decode",
    "b64encode",
    "context",
    "derive_keys",
    "new_challenge",
    "open_document",
    "seal_document",
]
