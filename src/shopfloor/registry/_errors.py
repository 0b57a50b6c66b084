"""Registry errors.

    RegistryError
    ├── NotFound        the object does not exist, or belongs to another organisation
    └── Conflict        a unique name or e-mail is already taken

Each error carries a stable snake_case `code` that the API returns unchanged.
"""

from __future__ import annotations

from shopfloor._errors import CodedError


class RegistryError(CodedError):
    code = "registry_error"


class NotFound(RegistryError):
    code = "not_found"


class Conflict(RegistryError):
    code = "conflict"
