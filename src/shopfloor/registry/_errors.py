"""Registry errors.

    RegistryError
    ├── NotFound        the object does not exist, or belongs to another organisation
    └── Conflict        a unique name or e-mail is already taken

Each error carries a stable snake_case `code` that the API returns unchanged.
"""

from __future__ import annotations


class RegistryError(Exception):
    code = "registry_error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code

    @property
    def message(self) -> str:
        return str(self)


class NotFound(RegistryError):
    code = "not_found"


class Conflict(RegistryError):
    code = "conflict"
