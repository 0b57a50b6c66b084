"""Authentication and authorisation errors.

    AuthError
    ├── Unauthenticated   no usable credential: missing, malformed, expired, forged (401)
    └── Forbidden         a valid credential that may not do this (403)

`code` is stable and returned by the API as is; part of the platform's one error tree
(`shopfloor.core`).
"""

from __future__ import annotations

from shopfloor.core import ErrorKind, ShopfloorError


class AuthError(ShopfloorError):
    code = "auth_error"
    kind = ErrorKind.UNAUTHENTICATED


class Unauthenticated(AuthError):
    code = "unauthenticated"


class Forbidden(AuthError):
    code = "forbidden"
    kind = ErrorKind.FORBIDDEN
