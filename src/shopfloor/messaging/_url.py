"""Reading backend options from a bus URL's query string, with typos as errors."""

from __future__ import annotations

from collections.abc import Iterable

from shopfloor.core import UrlOptions

from ._errors import InvalidBusUrl

__all__ = ["BusUrl"]


class BusUrl(UrlOptions):
    """A bus URL's options (`shopfloor.core.UrlOptions`), refused with `InvalidBusUrl`."""

    def __init__(self, url: str, *, schemes: Iterable[str]) -> None:
        super().__init__(url, schemes=schemes, what="bus URL", error=InvalidBusUrl)
