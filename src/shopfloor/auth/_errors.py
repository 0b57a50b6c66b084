"""Authentication and authorisation errors.

    AuthError
    ├── Unauthenticated   no usable credential: missing, malformed, expired, forged (401)
    └── Forbidden         a valid credential that may not do this (403)

`code` is stable and returned by the API as is.
"""

from __future__ import annotations

from shopfloor._errors import CodedError


class AuthError(CodedError):
    code = "auth_error"


class Unauthenticated(AuthError):
    code = "unauthenticated"


class Forbidden(AuthError):
    code = "forbidden"
