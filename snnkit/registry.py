"""One small registry type for everything snnkit looks up by name.

Surrogates, encoders, importances, planners, quantizers, schedules, compression methods
and data sets are each a :class:`Registry`: a name -> object table with one way to add an
entry and one error message for a name that is not there::

    SCHEDULES = Registry("schedule")

    @SCHEDULES.register("linear")
    def linear(start, end, steps): ...

    SCHEDULES.get("linear")   # the function
    SCHEDULES.names()         # ("linear", "geometric") in registration order
    SCHEDULES.get("cubic")    # ValueError: unknown schedule 'cubic'; expected one of: linear, geometric

Entries are plain module-level objects (functions, classes, frozen dataclasses), never live
models, so a registry never holds state that a deep copy or a pickle would miss.
"""
from __future__ import annotations

from typing import Callable, Generic, Iterator, TypeVar

__all__ = ["Registry"]

T = TypeVar("T")


class Registry(Generic[T]):
    """A name -> object table of one ``kind`` (used in error messages: "importance", ...)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}

    def register(self, name: str, obj: T | None = None) -> Callable[[T], T] | T:
        """Add ``obj`` under ``name``; without ``obj``, a decorator that adds what it decorates.

        Raises:
            ValueError: ``name`` is not a non-empty string, or is taken already.
        """
        if not isinstance(name, str) or not name:
            raise ValueError(f"{self.kind} name {name!r}: expected a non-empty string")
        if name in self._entries:
            raise ValueError(f"{self.kind} {name!r} is already registered; pick another name")

        def add(entry: T) -> T:
            self._entries[name] = entry
            return entry

        return add if obj is None else add(obj)

    def get(self, name: str) -> T:
        """The entry called ``name``.

        Raises:
            ValueError: ``unknown KIND 'NAME'; expected one of: ...`` listing every name.
        """
        try:
            return self._entries[name]
        except (KeyError, TypeError):
            raise ValueError(
                f"unknown {self.kind} {name!r}; expected one of: {', '.join(self._entries) or '(none)'}"
            ) from None

    def names(self) -> tuple[str, ...]:
        """Every registered name, in registration order."""
        return tuple(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}: {', '.join(self._entries)})"
