"""`Frozen`: what ``@dataclass(frozen=True)`` gives a small value class,
without importing ``dataclasses``.

``dataclasses`` imports ``inspect`` (with ``ast``, ``dis`` and ``tokenize``),
about 5 ms of every app's creation and of ``corekit --help``, for the two
value classes those paths build: `corekit.settings.Setting` and
`corekit.cli.options.CommandOption` (issue 13's start-up targets).
"""
from __future__ import annotations

from typing import Any, TypeVar

F = TypeVar("F", bound="Frozen")


class Frozen:
    """Immutable, compared and hashed by ``FIELDS``, with a dataclass's repr;
    copied and pickled through ``__init__``.  A subclass sets ``__slots__ =
    FIELDS = (...)`` and its ``__init__`` stores them with `_store`."""

    __slots__ = ()
    FIELDS: tuple[str, ...] = ()

    def _store(self, *values: Any) -> None:
        for field, value in zip(self.FIELDS, values, strict=True):
            object.__setattr__(self, field, value)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable: cannot set {name!r} "
                             f"(make another with .replace)")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable: cannot delete {name!r}")

    def _values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, field) for field in self.FIELDS)

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return self._values() == other._values()  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash(self._values())

    def __repr__(self) -> str:
        fields = ", ".join(f"{field}={getattr(self, field)!r}" for field in self.FIELDS)
        return f"{type(self).__name__}({fields})"

    def __reduce__(self) -> tuple[type[Frozen], tuple[Any, ...]]:
        return self.__class__, self._values()

    def replace(self: F, **changes: Any) -> F:
        """A copy with *changes*, made (and so checked) by ``__init__``, as
        ``dataclasses.replace`` does."""
        unknown = sorted(set(changes) - set(self.FIELDS))
        if unknown:
            raise TypeError(f"{type(self).__name__} has no field {unknown[0]!r} "
                            f"(fields: {', '.join(self.FIELDS)})")
        return self.__class__(**{**dict(zip(self.FIELDS, self._values())), **changes})
