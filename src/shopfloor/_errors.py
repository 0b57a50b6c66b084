"""The base of the platform's service errors that carry a stable code for the API."""

from __future__ import annotations


class CodedError(Exception):
    """An error with a stable snake_case `code`; subclasses set a default code."""

    code = "error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code

    @property
    def message(self) -> str:
        return str(self)
