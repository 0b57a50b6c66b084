"""Reading backend options from a URL's query string, with typos as errors.

    parsed = UrlOptions(url, schemes=("nats",), what="bus URL", error=InvalidBusUrl)
    ack_wait = parsed.number("ack_wait", 30.0, minimum=0.001)
    parsed.finish()          # an option nobody read is an error

Shared by every interface created from a URL (buses, machine connectors), each with
its own coded error.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import SplitResult, parse_qsl, urlsplit

from ._errors import ShopfloorError

__all__ = ["UrlOptions"]

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


class UrlOptions:
    """A parsed URL whose options are taken one by one, then checked for leftovers.

    Unknown options raise `error` in `finish()`: a misspelt `ack_wiat=1` silently
    ignored would leave a production system with a default nobody chose. Messages
    name the URL without its credentials.
    """

    def __init__(
        self, url: str, *, schemes: Iterable[str], what: str, error: type[ShopfloorError]
    ) -> None:
        self.url = url
        self.what = what
        self._error = error
        try:
            self.parts: SplitResult = urlsplit(url)
            pairs = parse_qsl(self.parts.query, keep_blank_values=True, strict_parsing=False)
        except ValueError as exc:
            raise error(f"{what} {self.redacted!r} cannot be parsed: {exc}") from exc
        allowed = tuple(schemes)
        if self.parts.scheme not in allowed:
            raise error(f"{what} {self.redacted!r} must start with {' or '.join(allowed)}")
        self._options: dict[str, str] = {}
        for key, value in pairs:
            if key in self._options:
                raise error(f"{what} option {key!r} is given twice")
            self._options[key] = value

    @property
    def redacted(self) -> str:
        """The URL without credentials, for error messages and logs."""
        head, sep, tail = self.url.partition("@")
        if not sep:
            return self.url
        scheme, _, _ = head.partition("://")
        return f"{scheme}://***@{tail}"

    def invalid(self, message: str) -> ShopfloorError:
        """The error to raise for a problem a caller found in this URL."""
        return self._error(message)

    def text(self, name: str, default: str) -> str:
        return self._options.pop(name, default)

    def choice(self, name: str, default: str, choices: Iterable[str]) -> str:
        allowed = tuple(choices)
        value = self._options.pop(name, default)
        if value not in allowed:
            raise self._error(f"{self.what} option {name}={value!r} must be one of {allowed}")
        return value

    def flag(self, name: str, default: bool) -> bool:
        raw = self._options.pop(name, None)
        if raw is None:
            return default
        if raw.lower() in _TRUE:
            return True
        if raw.lower() in _FALSE:
            return False
        raise self._error(f"{self.what} option {name}={raw!r} is not true or false")

    def integer(self, name: str, default: int, *, minimum: int, maximum: int | None = None) -> int:
        raw = self._options.pop(name, None)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError as exc:
            raise self._error(f"{self.what} option {name}={raw!r} is not an integer") from exc
        if value < minimum:
            raise self._error(f"{self.what} option {name}={value} must be >= {minimum}")
        if maximum is not None and value > maximum:
            raise self._error(f"{self.what} option {name}={value} must be <= {maximum}")
        return value

    def number(self, name: str, default: float, *, minimum: float) -> float:
        raw = self._options.pop(name, None)
        if raw is None:
            return default
        try:
            value = float(raw)
        except ValueError as exc:
            raise self._error(f"{self.what} option {name}={raw!r} is not a number") from exc
        if not value >= minimum:  # also rejects NaN
            raise self._error(f"{self.what} option {name}={value} must be >= {minimum}")
        return value

    def finish(self) -> None:
        """Raise the error if an option was given that no backend setting read."""
        if self._options:
            unknown = ", ".join(sorted(self._options))
            raise self._error(f"{self.what} {self.redacted!r} has unknown options: {unknown}")
