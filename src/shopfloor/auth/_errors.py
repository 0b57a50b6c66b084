"""Authentication and authorisation errors.

    AuthError
    ├── Unauthenticated   no usable credential: missing, malformed, expired, forged (401)
    └── Forbidden         a valid credential that may not do this (403)

`code` is stable and returned by the API as is.
"""

from __future__ import annotations


class AuthError(Exception):
    code = "auth_error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code

    @property
    def message(self) -> str:
        return str(self)


class Unauthenticated(AuthError):
    code = "unauthenticated"


class Forbidden(AuthError):
    code = "forbidden"
