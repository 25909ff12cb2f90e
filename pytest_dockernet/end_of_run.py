"""The end of a run's removal, done after its pytest process has exited.

At the end of a run its warm pool, the containers and networks of its last test (left
joined, see WarmPool.ending) and its lease are still on the engine: removing them took
0.2-0.4 s after pytest's summary line, which nobody needs to wait for. So the run ends
its lease (from then on every prune knows it as a dead run's) and hands the removal to a
detached process, ``python -m pytest_dockernet.end_of_run RUN_ID``, which removes what
is labelled with the run's id as a prune removes a dead run's: containers, networks,
volumes, the images ``build()`` named for it, the lease last. If that process is killed
or the engine refuses something, what is left is a dead run's, which the next run's
prune removes. A marker file in the temporary directory says that the removal is under
way (:func:`pending`, :func:`wait`): tools that look for leftovers wait for it.

The run waits for the removal itself (:func:`detachable` is false) on systems where a
process cannot wait for another's end (Linux before 5.3, macOS, Windows), when told to
(``--dockernet-teardown wait``), when it makes a swarm or a lab (leaving the swarm at its
end waits for its containers to be gone), when it keeps failed tests' resources, after a teardown
failed or the engine stopped answering (what fails at the end is then said), when its lease is
on another engine than the environment's (the detached process connects through the
environment), under CI (``CI`` or ``BUILD_NUMBER`` set, as pytest reads them: a job's
machine or container may end with its last process), and when its parent is the init
process (``docker run ... pytest``: the container ends with pytest, and every process in it).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from types import ModuleType

fcntl: ModuleType | None
try:
    import fcntl
except ImportError:  # Windows: no flock, and the run waits for its removal itself
    fcntl = None

MARK = "pytest-dockernet-ending-"
LOG = "pytest-dockernet-ending.log"  # what a detached removal could not do, appended


def marker(run_id: str) -> Path:
    return Path(tempfile.gettempdir(), MARK + run_id)


def detachable(env: dict[str, str] | None = None) -> bool:
    """Whether this process may leave the end of its run's removal to a detached process
    (the run's own settings aside: see the module's docstring)."""
    env = dict(os.environ if env is None else env)
    ci = bool(env.get("CI") or env.get("BUILD_NUMBER"))
    # pid 1, or a child of pid 1 (0: the parent is outside our pid namespace): the container
    # or namespace ends with this process, and every process in it.
    return fcntl is not None and not ci and os.getpid() != 1 and os.getppid() not in (0, 1)


def hand_over(run_id: str) -> bool:
    """Start the detached removal of ``run_id`` (whose lease has ended); False when it could
    not start (then the caller removes what is left itself).

    The marker is locked before the process starts, which inherits the lock's open file: the
    lock holds exactly as long as the process lives, however it ends, whatever pid namespace
    it or a reader is in."""
    assert fcntl is not None  # detachable() said so
    try:
        fd = os.open(marker(run_id), os.O_RDWR | os.O_CREAT, 0o644)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        process = subprocess.Popen(
            [sys.executable, "-m", "pytest_dockernet.end_of_run", run_id],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # a Ctrl-C in the terminal after pytest's exit does not reach it
            pass_fds=(fd,),
        )
        os.write(fd, str(process.pid).encode())  # for a person who looks; the lock is what tells
    except OSError:
        marker(run_id).unlink(missing_ok=True)
        return False
    finally:
        os.close(fd)  # the process's copy holds the lock now
    return True


def pending(run_ids: Iterable[str] | None = None) -> list[str]:
    """The runs (of ``run_ids``, or all) whose end a detached process is removing now."""
    wanted = None if run_ids is None else set(run_ids)
    found = []
    for path in Path(tempfile.gettempdir()).glob(MARK + "*"):
        run_id = path.name[len(MARK) :]
        if (wanted is None or run_id in wanted) and _held(path, wait=None):
            found.append(run_id)
    return found


def wait(run_ids: Iterable[str] | None = None, timeout: float = 60.0) -> bool:
    """Wait until no detached removal of ``run_ids`` (or of any run) is under way; False if
    one still is after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    for run_id in pending(run_ids):
        if _held(marker(run_id), wait=max(deadline - time.monotonic(), 0)):
            return False
    return True


def _held(path: Path, *, wait: float | None) -> bool:
    """Whether the marker's lock is held (after waiting up to ``wait`` seconds for it to be
    let go); a marker nobody holds is a removal that ended, and goes."""
    if fcntl is None:
        return False
    flock = fcntl.flock
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False  # gone: done
    if wait is None:
        try:
            flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)
    else:  # a blocking flock has no timeout: taken in a thread, which is waited for with one

        def take() -> None:
            try:
                flock(fd, fcntl.LOCK_SH)
            finally:
                os.close(fd)

        taker = threading.Thread(target=take, name="dockernet-end-of-run", daemon=True)
        taker.start()
        taker.join(wait)
        if taker.is_alive():
            return True
    path.unlink(missing_ok=True)
    return False


def remove(run_id: str) -> str:
    """Remove everything of the ended run ``run_id``; what could not go, in a line ('' if all went)."""
    from .engine import connect
    from .errors import EngineUnavailable
    from .labels import RunIdentity
    from .reaper import prune

    try:
        engine = connect()
    except EngineUnavailable as exc:
        return str(exc)
    try:
        pruned = prune(engine, RunIdentity(), runs={run_id}, ended={run_id})
    except Exception as exc:  # noqa: BLE001 - written to the log; the next run's prune retries
        return f"{type(exc).__name__}: {exc}"
    finally:
        engine.close()
    return "; ".join(pruned.failed)


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m pytest_dockernet.end_of_run RUN_ID", file=sys.stderr)
        return 2
    run_id = argv[0]
    try:
        failed = remove(run_id)
        if failed:
            with open(Path(tempfile.gettempdir(), LOG), "a") as log:
                log.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} run {run_id}: {failed}\n")
    finally:
        marker(run_id).unlink(missing_ok=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
