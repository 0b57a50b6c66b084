"""Refusals of the console (a subtree of `shopfloor.core`'s error tree).

    ConsoleError            the console's own refusals; everything else a page calls
    │                       (registry, auth) raises its own capability's errors
    ├── SignInRequired      unauthenticated: no session, or it expired or was ended
    ├── CsrfRefused         forbidden: a form or htmx request without this session's
    │                       CSRF token
    └── InvalidForm         invalid: a form's fields, each problem in `details`
                            (`field`, `problem`), as the API's `validation_error`

The API's one handler answers them as every other error, `{"error": {"code",
"message"}}`, which the console's htmx handler shows beside the form that was sent.
"""

from __future__ import annotations

from typing import Any

from shopfloor.core import ErrorKind, ShopfloorError

__all__ = ["ConsoleError", "CsrfRefused", "InvalidForm", "SignInRequired"]


class ConsoleError(ShopfloorError):
    code = "console_error"
    kind = ErrorKind.INVALID


class SignInRequired(ConsoleError):
    code = "sign_in_required"
    kind = ErrorKind.UNAUTHENTICATED


class CsrfRefused(ConsoleError):
    code = "csrf_token_invalid"
    kind = ErrorKind.FORBIDDEN


class InvalidForm(ConsoleError):
    code = "validation_error"
    kind = ErrorKind.INVALID

    def __init__(self, message: str, *, details: list[dict[str, Any]]) -> None:
        super().__init__(message)
        self.details = details
