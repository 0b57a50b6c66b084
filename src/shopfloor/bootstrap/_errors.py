"""Bootstrap errors.

    BootstrapError              bootstrap_error (invalid)
    ├── ConfigNotFound          no configuration for this thing in the organisation (404)
    ├── ConfigConflict          the external id or the thing already has one (409)
    ├── InvalidConfig           a field the configuration cannot hold (400)
    ├── DeviceDenied            a device's external id or key is wrong (403)
    ├── ChallengeInvalid        a secure bootstrap's challenge is unknown, used or expired (401)
    ├── RateLimited             too many bootstrap requests for an external id or address (429)
    └── (shopfloor.sdk)         the device side: refused, unreachable, tampered responses

`code` is stable and returned by the API as is; part of the platform's one error tree
(`shopfloor.core`).
"""

from __future__ import annotations

from shopfloor.core import ErrorKind, ShopfloorError


class BootstrapError(ShopfloorError):
    code = "bootstrap_error"
    kind = ErrorKind.INVALID


class ConfigNotFound(BootstrapError):
    code = "bootstrap_config_not_found"
    kind = ErrorKind.NOT_FOUND


class ConfigConflict(BootstrapError):
    code = "bootstrap_config_exists"
    kind = ErrorKind.CONFLICT


class InvalidConfig(BootstrapError):
    code = "bootstrap_invalid_config"
    kind = ErrorKind.INVALID


class DeviceDenied(BootstrapError):
    """Unknown external id and wrong key answer alike: nothing tells which it was."""

    code = "bootstrap_denied"
    kind = ErrorKind.FORBIDDEN


class ChallengeInvalid(BootstrapError):
    code = "bootstrap_challenge_invalid"
    kind = ErrorKind.UNAUTHENTICATED


class RateLimited(BootstrapError):
    code = "bootstrap_rate_limited"
    kind = ErrorKind.RATE_LIMITED
