"""Where a run's time went: set-up, probes, teardown, image, with counts of what was made."""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager

# The order the summary shows them in.
PHASES = ("image", "lab bring-up", "swarm init", "set-up", "overlay networks", "capture", "probes", "teardown")
# What the warm pool gave (see warm_pool.py), shown in a line of its own.
POOL_AGAIN, POOL_NETWORKS_AGAIN = "pool: used again", "pool: networks used again"
POOL_WHOLE = "pool: used again whole"  # of POOL_AGAIN: a parked topology's, on its network already (no join)
POOL_COUNTS = (POOL_AGAIN, POOL_NETWORKS_AGAIN, POOL_WHOLE)


def counted(n: int, noun: str) -> str:
    """``n`` and ``noun`` (a plural ending in s), singular when ``n`` is 1: "1 network", "2 networks"."""
    return f"{n} {noun[:-1] if n == 1 and noun.endswith('s') else noun}"


class Timings:
    """Wall-clock seconds per phase and counters; thread-safe.

    A phase entered again inside itself in one thread (a container() that makes the
    default network) is counted once, by its outermost entry.
    """

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.counts: dict[str, int] = defaultdict(int)
        self.workers = 0  # xdist workers whose figures were added
        self._lock = threading.Lock()
        self._local = threading.local()

    @contextmanager
    def measure(self, phase: str) -> Iterator[None]:
        active = self._local.__dict__.setdefault("active", set())
        if phase in active:
            yield
            return
        active.add(phase)
        started = time.perf_counter()
        try:
            yield
        finally:
            active.discard(phase)
            with self._lock:
                self.seconds[phase] += time.perf_counter() - started

    def count(self, what: str, n: int = 1) -> None:
        with self._lock:
            self.counts[what] += n

    def add(self, seconds: dict[str, float], counts: dict[str, int]) -> None:
        """Add another process's figures (an xdist worker's): phases are summed over workers."""
        with self._lock:
            self.workers += 1
            for phase, value in seconds.items():
                self.seconds[phase] += value
            for what, n in counts.items():
                self.counts[what] += n

    def describe(self) -> str:
        phases = ", ".join(f"{p} {self.seconds[p]:.2f} s" for p in PHASES if p in self.seconds)
        counts = sorted((what, n) for what, n in self.counts.items() if what not in POOL_COUNTS)
        made = ", ".join(counted(n, what) for what, n in counts)
        over = f" (summed over {self.workers} workers)" if self.workers else ""
        return f"time{over}: {phases or 'none'}; made: {made or 'nothing'}"

    def describe_pool(self) -> str:
        """How many of the containers the warm pool gave ("" when none)."""
        again, networks = self.counts.get(POOL_AGAIN, 0), self.counts.get(POOL_NETWORKS_AGAIN, 0)
        if not (again or networks):
            return ""
        whole = self.counts.get(POOL_WHOLE, 0)
        joins = f" ({whole} of them with no network join: parked whole)" if whole else ""
        said = f"warm pool: {again} of the containers and {networks} of the networks were earlier tests'"
        return f"{said}, used again{joins}"
