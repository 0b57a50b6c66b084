"""Connector URLs: the scheme, host and port, and options read one by one (typos refused)."""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import unquote

from shopfloor.core import UrlOptions

from ._errors import InvalidConnectorUrl
from ._types import ConnectorOptions

__all__ = ["ConnectorUrl"]


class ConnectorUrl(UrlOptions):
    """A connector URL (`shopfloor.core.UrlOptions`), refused with `InvalidConnectorUrl`."""

    def __init__(self, url: str, *, schemes: Iterable[str]) -> None:
        super().__init__(url, schemes=schemes, what="connector URL", error=InvalidConnectorUrl)

    @property
    def label(self) -> str:
        """The URL without credentials or options: how logs and errors name the connector."""
        return self.redacted.partition("?")[0]

    def endpoint(self, default_port: int) -> tuple[str, int]:
        """The host and port; the URL must name a host."""
        try:
            host, port = self.parts.hostname, self.parts.port
        except ValueError as exc:
            raise InvalidConnectorUrl(f"connector URL {self.redacted!r}: {exc}") from exc
        if not host:
            raise InvalidConnectorUrl(f"connector URL {self.redacted!r} names no host")
        return host, port or default_port

    def credentials(self) -> tuple[str | None, str | None]:
        username, password = self.parts.username, self.parts.password
        return (
            unquote(username) if username else None,
            unquote(password) if password is not None else None,
        )

    def options(self) -> ConnectorOptions:
        """The options every connector takes (`timeout`, `heartbeat`, `reconnect_*`)."""
        try:
            return ConnectorOptions.from_url(self)
        except ValueError as exc:
            if isinstance(exc, InvalidConnectorUrl):
                raise
            raise InvalidConnectorUrl(f"connector URL {self.redacted!r}: {exc}") from exc
