"""JobSet: the insertion-ordered set that holds a scheduler's jobs and a job's requirements.

0.21 used a plain ``set``, so ids and start order followed hashes; keeping insertion
order makes listings, ids and the start order of ready jobs follow creation order.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, MutableSet
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class JobSet(MutableSet[T], Generic[T]):
    """A mutable set that iterates in insertion order (a dict underneath)."""

    __slots__ = ("_items",)

    def __init__(self, items: Iterable[T] = ()) -> None:
        self._items: dict[T, None] = dict.fromkeys(items)

    def __contains__(self, item: object) -> bool:
        return item in self._items

    def __iter__(self) -> Iterator[T]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"JobSet({list(self._items)!r})"

    def add(self, value: T) -> None:
        """Add ``value`` at the end, unless it is already there."""
        self._items[value] = None

    def discard(self, value: T) -> None:
        """Remove ``value`` if present."""
        self._items.pop(value, None)

    def remove(self, value: T) -> None:
        """Remove ``value``; ``KeyError`` if it is absent."""
        del self._items[value]

    def update(self, values: Iterable[T]) -> None:
        """Add every item of ``values``, in order."""
        self._items.update(dict.fromkeys(values))

    def clear(self) -> None:
        """Remove everything."""
        self._items.clear()

    def copy(self) -> JobSet[T]:
        """A shallow copy, same order."""
        return JobSet(self._items)

    @classmethod
    def _from_iterable(cls, it: Iterable[Any]) -> JobSet[Any]:
        return cls(it)
