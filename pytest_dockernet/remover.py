"""Removing closed topologies in the background, so that one test's teardown overlaps the
next test's set-up."""

from __future__ import annotations

import threading
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Generic, Protocol, TypeVar


class Removable(Protocol):
    """What the remover asks of a closed topology: its removal, run in the remover's thread."""

    def remove(self) -> None: ...


T = TypeVar("T", bound=Removable)


class Remover(Generic[T]):
    """Removes closed topologies in a background thread, so that one test's teardown
    overlaps the next test's set-up.

    At most ``backlog`` removals wait at any time (``submit`` blocks for the oldest
    beyond that), so a long run never piles up networks. :meth:`wait` finishes them all
    and returns the topologies whose removal failed, with the error.
    """

    def __init__(self, backlog: int = 2):
        if backlog < 1:
            raise ValueError(f"backlog={backlog!r} must be at least 1")
        self.backlog = backlog
        self._pool: ThreadPoolExecutor | None = None
        self._pending: deque[tuple[T, Future[None]]] = deque()
        self._failed: list[tuple[T, BaseException]] = []
        self._lock = threading.Lock()

    def submit(self, topology: T) -> None:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dockernet-teardown")
            self._pending.append((topology, self._pool.submit(topology.remove)))
        while len(self._pending) > self.backlog:
            self._settle_oldest()

    @property
    def pending(self) -> list[T]:
        return [t for t, future in list(self._pending) if not future.done()]

    def _settle_oldest(self) -> None:
        with self._lock:
            if not self._pending:
                return
            topology, future = self._pending.popleft()
        try:
            future.result()
        except Exception as exc:  # noqa: BLE001 - reported by wait()
            self._failed.append((topology, exc))

    def wait(self) -> list[tuple[T, BaseException]]:
        """Finish every pending removal; the ones that failed, once each."""
        while self._pending:
            self._settle_oldest()
        failed, self._failed = self._failed, []
        return failed
