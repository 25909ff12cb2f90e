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
(``--dockernet-teardown wait``), when it keeps failed tests' resources, when its lease is
on another engine than the environment's (the detached process connects through the
environment), under CI (``CI`` or ``BUILD_NUMBER`` set, as pytest reads them: a job's
machine or container may end with its last process), and when its parent is the init
process (``docker run ... pytest``: the container ends with pytest, and every process in it).
"""

from __future__ import annotations

import os
import select
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

MARK = "pytest-dockernet-ending-"
LOG = "pytest-dockernet-ending.log"  # what a detached removal could not do, appended


def marker(run_id: str) -> Path:
    return Path(tempfile.gettempdir(), MARK + run_id)


def detachable(env: dict[str, str] | None = None) -> bool:
    """Whether this process may leave the end of its run's removal to a detached process
    (the run's own settings aside: see the module's docstring)."""
    env = dict(os.environ if env is None else env)
    ci = bool(env.get("CI") or env.get("BUILD_NUMBER"))
    return not ci and os.getppid() != 1 and _waitable()


def _waitable() -> bool:
    """Whether a process's end can be waited for without being its parent (Linux 5.3 on):
    what :func:`wait` needs."""
    try:
        os.close(os.pidfd_open(os.getpid()))
    except (AttributeError, OSError):
        return False
    return True


def hand_over(run_id: str) -> bool:
    """Start the detached removal of ``run_id`` (whose lease has ended); False when it could
    not start (then the caller removes what is left itself)."""
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "pytest_dockernet.end_of_run", run_id],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # a Ctrl-C in the terminal after pytest's exit does not reach it
            close_fds=True,
        )
    except OSError:
        return False
    try:  # the process removes it when done (if that was before this line: a dead pid, below)
        marker(run_id).write_text(str(process.pid))
    except OSError:
        pass  # then nothing says it is under way; it is no less done
    return True


def pending(run_ids: Iterable[str] | None = None) -> list[str]:
    """The runs (of ``run_ids``, or all) whose end is being removed by a live detached process."""
    wanted = None if run_ids is None else set(run_ids)
    found = []
    for path in Path(tempfile.gettempdir()).glob(MARK + "*"):
        run_id = path.name[len(MARK) :]
        if wanted is not None and run_id not in wanted:
            continue
        try:
            pid = int(path.read_text())
        except (OSError, ValueError):
            continue
        if _alive(pid):
            found.append(run_id)
        else:  # killed before it could say it was done: the next run's prune takes the rest
            path.unlink(missing_ok=True)
    return found


def wait(run_ids: Iterable[str] | None = None, timeout: float = 60.0) -> bool:
    """Wait until no detached removal of ``run_ids`` (or of any run) is under way; False if
    one still is after ``timeout`` seconds."""
    runs = None if run_ids is None else list(run_ids)
    deadline = time.monotonic() + timeout
    for run_id in pending(runs):
        try:
            pid = int(marker(run_id).read_text())
        except (OSError, ValueError):
            continue  # done meanwhile
        if not _exited(pid, deadline - time.monotonic()):
            return False
    return not pending(runs)


def _exited(pid: int, timeout: float) -> bool:
    """Whether process ``pid`` (not necessarily a child) ends within ``timeout`` seconds."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    except (AttributeError, OSError):  # no pidfd here: then no run handed its end over (detachable)
        return not _alive(pid)
    try:  # readable once the process has exited
        return bool(select.select([fd], [], [], max(timeout, 0))[0])
    finally:
        os.close(fd)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    # A finished child of this process stays a zombie until reaped; it is done.
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:  # not our child: alive, since kill() reached it
        return True
    return done == 0


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
