"""Implementations registered by name through a class keyword, for every pluggable interface.

    class Bus(Pluggable, registry=Backends("bus", keyword="scheme", error=InvalidBusUrl)):
        ...
    class MemoryBus(Bus, scheme="memory"): ...      # registered under "memory"
    Bus.backends.get("memory")                      # -> MemoryBus
    Bus.backends.for_url("nats://host:4222")        # -> NatsBus

The root of an interface names its registry; a subclass that passes the keyword
(`scheme=`, `name=`) registers itself, a subclass without it is an intermediate
base. A name taken twice is a `TypeError` at import time, a name nobody registered
is the interface's own coded error, listing the names that are known.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, ClassVar, Generic, TypeVar

from ._errors import ShopfloorError

__all__ = ["Backends", "Pluggable"]

T = TypeVar("T")


class Backends(Generic[T]):
    """The implementations of one interface, by name (and aliases)."""

    def __init__(self, what: str, *, keyword: str, error: type[ShopfloorError]) -> None:
        self.what = what
        self.keyword = keyword
        self._error = error
        self._by_name: dict[str, type[T]] = {}

    def register(self, cls: type[T], name: str, aliases: Sequence[str] = ()) -> None:
        for each in (name, *aliases):
            taken = self._by_name.get(each)
            if taken is not None and taken is not cls:
                raise TypeError(
                    f"{self.what} {self.keyword} {each!r} is already registered by "
                    f"{taken.__module__}.{taken.__qualname__}"
                )
        for each in (name, *aliases):
            self._by_name[each] = cls

    def names(self) -> tuple[str, ...]:
        return tuple(sorted(self._by_name))

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def __iter__(self) -> Iterator[type[T]]:
        return iter(dict.fromkeys(self._by_name.values()))

    def get(self, name: str) -> type[T]:
        found = self._by_name.get(name)
        if found is None:
            known = ", ".join(self.names()) or "none"
            raise self._error(f"unknown {self.what} {self.keyword} {name!r}; known: {known}")
        return found

    def for_url(self, url: str) -> type[T]:
        """The implementation for a URL's scheme (`+driver` suffixes are ignored).

        Only the scheme goes into an error message: the rest of a URL may hold a password.
        """
        scheme, separator, _ = url.partition("://")
        scheme = scheme.lower().split("+", 1)[0]
        found = self._by_name.get(scheme) if separator else None
        if found is None:
            known = ", ".join(f"{name}://" for name in self.names())
            shown = f"{scheme}://" if separator else "a URL without a scheme"
            raise self._error(f"no {self.what} for {shown}; known: {known}")
        return found


class Pluggable:
    """Base of interfaces whose implementations register by class keyword."""

    backends: ClassVar[Backends[Any]]

    def __init_subclass__(
        cls,
        *,
        registry: Backends[Any] | None = None,
        aliases: Sequence[str] = (),
        **kwargs: Any,
    ) -> None:
        if registry is not None:
            cls.backends = registry
            super().__init_subclass__(**kwargs)
            return
        keyword = cls.backends.keyword
        name = kwargs.pop(keyword, None)
        super().__init_subclass__(**kwargs)
        if name is not None:
            setattr(cls, keyword, name)
            cls.backends.register(cls, name, aliases)
