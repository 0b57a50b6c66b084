"""Registry errors.

    RegistryError
    ├── NotFound        the object does not exist, or belongs to another organisation
    └── Conflict        a unique name or e-mail is already taken

Each error carries a stable snake_case `code` that the API returns unchanged.
"""

from __future__ import annotations

from shopfloor.core import ErrorKind, ShopfloorError


class RegistryError(ShopfloorError):
    code = "registry_error"
    kind = ErrorKind.INVALID


class NotFound(RegistryError):
    code = "not_found"
    kind = ErrorKind.NOT_FOUND


class Conflict(RegistryError):
    code = "conflict"
    kind = ErrorKind.CONFLICT
