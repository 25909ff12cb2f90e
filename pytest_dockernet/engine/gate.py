"""Keeping network removal apart from creation on one engine.

Docker 20.10 now and then loses every DNS record of a network that is being set up
(its containers' names answer empty, for good) when another network is removed at the
same moment. Creating networks and containers therefore holds a shared lock, and
removing a network an exclusive one: a lock file per engine, taken with ``flock``, so
that threads, xdist workers and concurrent pytest runs on this machine all keep to it.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
import threading
from collections.abc import Iterator
from types import ModuleType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import docker

    from .port import Engine

fcntl: ModuleType | None
try:
    import fcntl
except ImportError:  # Windows: no flock; the race stays possible there
    fcntl = None


class EngineGate:
    def __init__(self, engine: str):
        digest = hashlib.sha1(engine.encode()).hexdigest()[:12]
        self.path = os.path.join(tempfile.gettempdir(), f"pytest-dockernet-{digest}.lock")

    @contextlib.contextmanager
    def _held(self, mode: int, path: str = "") -> Iterator[None]:
        if fcntl is None:
            yield
            return
        # One open file per holder: flock belongs to the open file, so threads of one
        # process sharing a descriptor would share (and not wait for) the lock.
        fd = os.open(path or self.path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, mode)
            yield
        finally:
            os.close(fd)  # releases the lock

    def building(self) -> contextlib.AbstractContextManager[None]:
        """Held while a network or container is created, started or connected."""
        return self._held(fcntl.LOCK_SH if fcntl else 0)

    def removing(self) -> contextlib.AbstractContextManager[None]:
        """Held while a network is removed."""
        return self._held(fcntl.LOCK_EX if fcntl else 0)

    def joining(self) -> contextlib.AbstractContextManager[None]:
        """Held while a container of the warm pool joins or leaves networks: the engine does
        such changes one after the other in half the time it takes for several at once, from
        threads or from xdist workers alike."""
        return self._held(fcntl.LOCK_EX if fcntl else 0, self.path + ".join")


_gates: dict[str, EngineGate] = {}
_lock = threading.Lock()


def _key(engine: Engine | docker.DockerClient | docker.APIClient) -> str:
    # docker-py's own URL (a DockerEngine's client's, which names every local socket
    # http+docker://...): an Engine, its client and that client's APIClient share one gate.
    client = getattr(engine, "client", engine)
    return str(getattr(getattr(client, "api", client), "base_url", "")) or "http+docker://localhost"


def gate_for(engine: Engine | docker.DockerClient | docker.APIClient) -> EngineGate:
    """The gate of ``engine`` (or of a docker-py client's engine)."""
    key = _key(engine)
    with _lock:
        if key not in _gates:
            _gates[key] = EngineGate(key)
        return _gates[key]
