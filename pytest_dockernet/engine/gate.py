"""Keeping network removal apart from creation on one engine.

Docker 20.10 now and then loses every DNS record of a network that is being set up
(its containers' names answer empty, for good) when another network is removed at the
same moment. Creating networks and containers therefore holds a shared lock, and
removing a network an exclusive one: a lock file per engine, taken with ``flock``, so
that threads, xdist workers and concurrent pytest runs on this machine all keep to it.
The file is named after the engine's own ID (info's ``ID``), so that two URLs of one
engine (a socket and a TCP port, a socket mounted at another path) share it.

Runs on other machines sharing the engine (CI jobs against one remote engine) do not see
the file: between them the race stays possible. It is rare (one removal must fall into
another run's network set-up: here none of 50 set-ups lost its records beside 80 removals
under another gate), and the engine offers no lock that a run's death would release.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
import threading
import weakref
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


def open_lock(path: str) -> int:
    """A descriptor of the lock file ``path`` to ``flock``, made when missing. Read-only:
    flock needs no write access, and the file may be another user's (0644 after their
    umask), e.g. root's CI run and a developer in the docker group on one engine; opening
    it for writing failed with PermissionError. An existing file is opened without O_CREAT,
    which fs.protected_regular refuses for another user's file in a sticky /tmp."""
    try:
        return os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return os.open(path, os.O_RDONLY | os.O_CREAT, 0o666)


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
        fd = open_lock(path or self.path)
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
# docker-py's APIClient -> its engine's ID, asked once per client: an Engine, its client
# and that client's APIClient share one gate.
_ids: weakref.WeakKeyDictionary[object, str] = weakref.WeakKeyDictionary()


def _api(engine: Engine | docker.DockerClient | docker.APIClient) -> object:
    client = getattr(engine, "client", engine)
    return getattr(client, "api", client)


def remember(engine: Engine | docker.DockerClient | docker.APIClient, engine_id: str) -> None:
    """Record the ID of ``engine`` from an info answer its caller read anyway (see
    .info.read_info): its gate then costs no call of its own."""
    if engine_id:
        _record(_api(engine), engine_id)


def _record(api: object, engine_id: str) -> str:
    key = f"id:{engine_id}"
    try:
        return _ids.setdefault(api, key)
    except TypeError:  # a stand-in that takes no weak reference
        return key


def _key(engine: Engine | docker.DockerClient | docker.APIClient) -> str:
    api = _api(engine)
    try:
        return _ids[api]
    except (KeyError, TypeError):
        pass
    try:
        engine_id = str((api.info() or {}).get("ID") or "")  # type: ignore[attr-defined]
    except Exception:  # noqa: BLE001 - any failure: the URL names the engine instead
        engine_id = ""
    # The URL only when the engine has no ID: docker-py names every local socket
    # http+docker://localhost, so two local engines would share (and wait on) one gate.
    if engine_id:  # else asked again next time: the engine may answer then
        return _record(api, engine_id)
    return str(getattr(api, "base_url", "")) or "http+docker://localhost"


def gate_for(engine: Engine | docker.DockerClient | docker.APIClient) -> EngineGate:
    """The gate of ``engine`` (or of a docker-py client's engine)."""
    key = _key(engine)
    with _lock:
        if key not in _gates:
            _gates[key] = EngineGate(key)
        return _gates[key]
