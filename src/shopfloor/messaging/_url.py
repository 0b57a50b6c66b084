"""Reading backend options from a bus URL's query string, with typos as errors."""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import SplitResult, parse_qsl, urlsplit

from ._errors import InvalidBusUrl

__all__ = ["BusUrl"]


class BusUrl:
    """A parsed bus URL whose options are taken one by one, then checked for leftovers.

    Unknown options raise `InvalidBusUrl` in `finish()`: a misspelt `ack_wiat=1` silently
    ignored would leave a production system with a default nobody chose.
    """

    def __init__(self, url: str, *, schemes: Iterable[str]) -> None:
        self.url = url
        try:
            self.parts: SplitResult = urlsplit(url)
            pairs = parse_qsl(self.parts.query, keep_blank_values=True, strict_parsing=False)
        except ValueError as exc:
            raise InvalidBusUrl(f"bus URL {self.redacted!r} cannot be parsed: {exc}") from exc
        allowed = tuple(schemes)
        if self.parts.scheme not in allowed:
            raise InvalidBusUrl(f"bus URL {self.redacted!r} must start with {' or '.join(allowed)}")
        self._options: dict[str, str] = {}
        for key, value in pairs:
            if key in self._options:
                raise InvalidBusUrl(f"bus URL option {key!r} is given twice")
            self._options[key] = value

    @property
    def redacted(self) -> str:
        """The URL without credentials, for error messages and logs."""
        head, sep, tail = self.url.partition("@")
        if not sep:
            return self.url
        scheme, _, _ = head.partition("://")
        return f"{scheme}://***@{tail}"

    def text(self, name: str, default: str) -> str:
        return self._options.pop(name, default)

    def choice(self, name: str, default: str, choices: Iterable[str]) -> str:
        allowed = tuple(choices)
        value = self._options.pop(name, default)
        if value not in allowed:
            raise InvalidBusUrl(f"bus URL option {name}={value!r} must be one of {allowed}")
        return value

    def integer(self, name: str, default: int, *, minimum: int) -> int:
        raw = self._options.pop(name, None)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError as exc:
            raise InvalidBusUrl(f"bus URL option {name}={raw!r} is not an integer") from exc
        if value < minimum:
            raise InvalidBusUrl(f"bus URL option {name}={value} must be >= {minimum}")
        return value

    def number(self, name: str, default: float, *, minimum: float) -> float:
        raw = self._options.pop(name, None)
        if raw is None:
            return default
        try:
            value = float(raw)
        except ValueError as exc:
            raise InvalidBusUrl(f"bus URL option {name}={raw!r} is not a number") from exc
        if not value >= minimum:  # also rejects NaN
            raise InvalidBusUrl(f"bus URL option {name}={value} must be >= {minimum}")
        return value

    def finish(self) -> None:
        """Raise `InvalidBusUrl` if an option was given that no backend setting read."""
        if self._options:
            unknown = ", ".join(sorted(self._options))
            raise InvalidBusUrl(f"bus URL {self.redacted!r} has unknown options: {unknown}")
