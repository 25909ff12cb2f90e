"""The logical names of one topology's networks, containers or services.

A name is reserved before its resource is made (under a lock, so two threads of a batch
cannot both take it) and filled with the handle once made; if making fails, the name is
free again. Readers see only filled entries.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, what: str, lock: threading.RLock, *, shared_with: Registry[Any] | None = None):
        self.what = what  # "network", "container", ...: for messages
        self._lock = lock
        self._items: dict[str, T | None] = {}
        # Another registry whose names this one must not take (services and containers
        # resolve on the same networks by their names).
        self._shared_with = shared_with

    def add(self, name: str, make: Callable[[], T]) -> T:
        """Reserve ``name``, make its resource, and keep the handle; ValueError if taken."""
        with self._lock:
            if self.taken(name):
                raise ValueError(f"{self.what} name {name!r} is already used in this topology: pick another name")
            self._items[name] = None
        try:
            handle = make()
        except BaseException:
            self.discard(name)
            raise
        with self._lock:
            self._items[name] = handle
        return handle

    def taken(self, name: str) -> bool:
        with self._lock:
            return name in self._items or (self._shared_with is not None and name in self._shared_with._items)

    def discard(self, name: str) -> None:
        with self._lock:
            self._items.pop(name, None)

    def get(self, name: str) -> T | None:
        """The handle of ``name``; None while it is being made, KeyError if unknown."""
        with self._lock:
            return self._items[name]

    def find(self, name: str) -> T | None:
        with self._lock:
            return self._items.get(name)

    def __iter__(self) -> Iterator[T]:
        with self._lock:
            items = list(self._items.values())
        return (item for item in items if item is not None)

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def __bool__(self) -> bool:
        return any(True for _ in self)
