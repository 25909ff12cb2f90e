"""A run's lease: an engine-visible sign that the run is alive, wherever it runs.

Process ids do not tell: a run in another pid namespace (a CI job in a container that
shares the host's network and Docker socket, ``unshare --pid``) has pids of its own, and
another machine's runs have nothing in common with ours. So each run keeps a small
container from the probe image whose only process reads its stdin, and holds that stdin
open over an attach connection. However the run ends (exit, SIGKILL, OOM, a lost
machine), the connection closes, the read ends and the container exits with code 0:
then, and only then, the run is dead. Testcontainers' Ryuk rests on the same principle.

An engine that stops or restarts takes the lease down with a signal, not with code 0; the
run, still alive, attaches a new lease as soon as the engine answers again, and a lease
stopped that way counts as alive for :data:`GRACE` seconds after it stopped.

The lease is created before the run makes anything, and a lease that is created but not
yet started counts as alive too: for :data:`GRACE` seconds, unless the process that made
it is known to be gone (the same machine and pid namespace, see ``RunIdentity.maker_is_gone``).
A run's lease starts :data:`START_WITHIN` seconds after it was made, in its watcher
thread: starting a container takes the engine 150-200 ms, which a run's first containers
would otherwise wait behind, and a run that ends sooner (one test, run again and again
while its author works on it) never starts it. At its end such a run renames the lease
``dn-<run>-lease-ended``, which every prune reads as an ended run. What it costs: a run
killed within its first second, in another pid namespace or on another host, is known
dead only :data:`GRACE` seconds after it began instead of at once (then the next prune
removes what it left, as ever).
"""

from __future__ import annotations

import socket
import threading
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from .engine import Client, as_engine, remove_container, remove_containers_named, undone_on_failure
from .engine.errors import EngineException, NotFound
from .labels import HELD_BY, IDLE_FOR, KEEP_WARM, ROLE, SESSION, RunIdentity

if TYPE_CHECKING:
    from collections.abc import Callable

    from .engine.port import AttachStream, Engine

LEASE_ROLE = "lease"
GRACE = 120.0  # seconds a lease stopped by its engine (not by its run's end) still counts
START_WITHIN = 1.0  # seconds after its creation a run's lease starts (see the module's docstring)
ENDED = "-ended"  # the suffix of a lease that never started, once its run has ended
# Exits 0 once its stdin closes: the run's attach connection is gone.
COMMAND = ["sh", "-c", "read _ ; exit 0"]


def lease_name(run_id: str) -> str:
    return f"dn-{run_id}-lease"


class Lease:
    """The lease of one run on one engine; :meth:`close` ends it (the run is over).

    ``start_after``: seconds to wait before it starts (a run's: :data:`START_WITHIN`);
    :meth:`close` before then leaves it unstarted (removed, or renamed as ended)."""

    def __init__(
        self,
        engine: Engine,
        identity: RunIdentity,
        image: str,
        labels: dict[str, str] | None = None,
        *,
        start_after: float = 0.0,
    ):
        self._engine = engine
        self._identity = identity
        self._image = image
        self._extra = dict(labels or {})
        self._start_after = start_after
        self._stream: AttachStream | None = None
        self._closed = threading.Event()
        self._started = threading.Event()  # set once started, once its start failed, or never to start
        self._lock = threading.Lock()  # between close() and a start about to begin
        self._starting = False
        self._failed: BaseException | None = None
        self.id = ""
        with undone_on_failure("creating the run's lease", self._remove_named):
            self.id = self._create()
        self._watcher = threading.Thread(target=self._start_and_watch, name="dockernet-lease", daemon=True)
        self._watcher.start()

    @property
    def engine(self) -> Engine:
        return self._engine

    def wait_started(self) -> None:
        """Return once the lease runs (or was closed before it started); raise what stopped
        it from starting (it is removed then)."""
        self._started.wait()
        self.check()

    def check(self) -> None:
        """Raise what stopped the lease from starting, if it tried and failed (no waiting)."""
        if self._failed is not None:
            raise self._failed

    @property
    def running(self) -> bool:
        """Whether it started (without waiting for it)."""
        return self._starting and self._started.is_set() and self._failed is None

    @property
    def failed(self) -> bool:
        return self._failed is not None

    def _start_and_watch(self) -> None:
        self._closed.wait(self._start_after)  # not a poll: the delay, cut short by close()
        with self._lock:
            if self._closed.is_set():  # the run ended first: close() leaves it unstarted
                self._started.set()
                return
            self._starting = True
        try:
            with undone_on_failure("starting the run's lease", self._remove_named):
                self._attach()
        except BaseException as exc:  # noqa: BLE001 - raised by check(), in the run's thread
            self._failed = exc
            return
        finally:
            self._started.set()
        self._watch()

    def _create(self) -> str:
        engine = self._engine
        labels = {**self._extra, **self._identity.labels(), ROLE: LEASE_ROLE}
        created = engine.create_container(
            self._image,
            command=COMMAND,
            name=lease_name(self._identity.run_id),
            labels=labels,
            stdin_open=True,
            # Not detached: the SDK then sets StdinOnce, so the end of the first attached
            # client (ours) closes the container's stdin.
            detach=False,
            host_config=engine.create_host_config(network_mode="none"),
        )
        container_id: str = created["Id"]
        return container_id

    def _attach(self) -> socket.socket:
        """Attach to the lease's stdin, then start it: the read waits for this connection."""
        stream = self._engine.attach(self.id, stdout=False, stderr=False)
        with self._lock:  # close() shuts down the stream it finds here
            self._stream = stream
        self._engine.start(self.id)
        return stream.sock

    def _watch(self) -> None:
        """Keep the lease up while the run lives: if the engine dropped the connection (it
        stopped or restarted), attach again once it answers."""
        assert self._stream is not None  # attached before the watcher starts
        sock = self._stream.sock
        while not self._closed.is_set():
            try:
                sock.settimeout(None)
                if sock.recv(1) == b"":  # the engine closed the connection
                    raise OSError("closed")
            except OSError:
                pass
            if self._closed.wait(0.5):  # not a poll for a condition: it waits for the engine
                return
            try:
                try:
                    running = self._engine.inspect_container(self.id)["State"].get("Running")
                except NotFound:  # removed by someone: make another
                    self.id, running = self._create(), False
                if not running:
                    self._close_stream()
                    sock = self._attach()
            except (EngineException, OSError):
                continue  # the engine is not back yet

    def _close_stream(self) -> None:
        if self._stream is not None:
            # Shut down, not only closed: the SDK's response may hold the socket open, and then
            # the lease would run on until this process exits.
            try:
                self._stream.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self._stream.close()

    def close(self, *, remove: bool = True) -> None:
        """The run is over: end the lease and remove its container (or, with ``remove=False``,
        leave it ended, so that a later prune knows the run's kept resources are a dead run's)."""
        with self._lock:
            self._closed.set()
            starting, attached = self._starting, self._stream is not None
        if remove or (starting and not attached):
            # An attach under way would hold the lease open after this. A start under way
            # need not be waited for when the lease stays: its stdin is shut below, so it
            # exits with code 0 as soon as it runs (the run's end does not wait ~0.2 s).
            self._started.wait()
        try:
            if starting:
                self._close_stream()
            elif not remove:  # never started: its name says that its run has ended
                self._engine.rename(self.id, lease_name(self._identity.run_id) + ENDED)
            if remove:
                remove_container(self._engine, self.id)
        except (EngineException, OSError):  # the engine is gone (connection errors are OSErrors)
            pass  # a later run's prune finds it ended, or judges it as a created one

    def _remove_named(self) -> None:
        remove_containers_named(self._engine, lease_name(self._identity.run_id), {"label": SESSION})


def _finished(state: dict[str, Any]) -> float:
    text = (state.get("FinishedAt") or "").rstrip("Z")
    try:
        when = datetime.fromisoformat(text.split(".")[0]).replace(tzinfo=timezone.utc)
    except ValueError:
        return 0.0
    return when.timestamp()


def _started(summary: dict[str, Any]) -> float:
    return float(summary.get("Created") or 0)


def lease_states(
    engine: Client, *, again: bool = True, owner_gone: Callable[[dict[str, str]], bool] | None = None
) -> dict[str, bool]:
    """Run id -> whether its lease says it is alive, for every lease on the engine.

    ``owner_gone`` (a RunIdentity's ``maker_is_gone``) tells, from its labels, whether the
    process that made a lease not started yet is gone: then its run is dead.

    A keeper (see :mod:`.keep_warm`) lives for N seconds after its idle lease was made, or
    while a run that holds it lives. A run that adopts a keeper whose idle lease is about to
    end holds it before it checks that lease still lives: so a keeper read dead here is read
    once ``again`` (the holder may have come between the listing and the lease's inspect)."""
    engine = as_engine(engine)
    now = datetime.now(timezone.utc).timestamp()
    found: dict[str, bool] = {}
    holders: dict[str, list[str]] = {}  # keeper -> the runs that hold it
    keepers: set[str] = set()
    for summary in engine.containers(all=True, filters={"label": f"{ROLE}={LEASE_ROLE}"}):
        labels = summary.get("Labels") or {}
        run_id = labels.get(SESSION)
        if not run_id:
            continue
        if labels.get(KEEP_WARM):
            keepers.add(run_id)
        if labels.get(HELD_BY):  # its own state says nothing: its holder's lease tells
            holders.setdefault(run_id, []).append(labels[HELD_BY])
            found.setdefault(run_id, False)
            continue
        try:
            state = engine.inspect_container(summary["Id"])["State"]
        except NotFound:
            continue
        if state.get("Running") or state.get("Restarting"):
            alive = True
        elif state.get("Status") == "created":  # not started (yet): see the module's docstring
            if any(name.endswith(ENDED) for name in summary.get("Names") or []):
                alive = False  # its run ended before it started
            elif labels.get(IDLE_FOR):  # a keeper's idle lease
                alive = now - _started(summary) < float(labels[IDLE_FOR])
            else:
                alive = now - _started(summary) < GRACE and not (owner_gone is not None and owner_gone(labels))
        elif state.get("ExitCode") == 0:
            alive = False  # its run's connection closed: the run has ended
        else:
            alive = now - _finished(state) < GRACE  # stopped by the engine; the run may attach again
        found[run_id] = found.get(run_id, False) or alive
    for keeper, runs in holders.items():
        found[keeper] = found[keeper] or any(found.get(run, False) for run in runs)
    if again and any(not found.get(keeper, False) for keeper in keepers):
        later = lease_states(engine, again=False, owner_gone=owner_gone)
        found.update({keeper: True for keeper in keepers if later.get(keeper)})
    return found
