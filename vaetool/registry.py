"""A plain name -> factory registry whose lookup error lists the valid names."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from vaetool.errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps names to objects (usually factories). ``kind`` names the thing in error messages,
    ``option`` the command-line option that chooses it (when there is one)."""

    def __init__(self, kind: str, option: str | None = None) -> None:
        self.kind = kind
        self.option = option
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator: ``@REGISTRY.register("name")`` adds the decorated object under ``name``."""

        def add(obj: T) -> T:
            if name in self._items:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._items[name] = obj
            return obj

        return add

    def unregister(self, name: str) -> T:
        """Remove ``name`` (a plugin unloading, a test cleaning up); the object it held."""
        if name not in self._items:
            raise KeyError(f"{self.kind} {name!r} is not registered")
        return self._items.pop(name)

    def get(self, name: str) -> T:
        """The object registered as ``name``; a :class:`ConfigError` listing valid names if none."""
        try:
            return self._items[name]
        except KeyError:
            valid = ", ".join(sorted(self._items))
            where = f" ({self.option})" if self.option else ""
            raise ConfigError(
                f"unknown {self.kind} {name!r}{where}; expected one of: {valid}"
            ) from None

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())
