"""The resident shells of a topology's containers: probe scripts written to a container's
attach stream (about 1 ms) instead of an exec (about 70 ms).

Each script runs in a process group of its own, marked in its environment: what it leaves
running ends with it, and a script abandoned at its deadline is ended by its mark.
"""

from __future__ import annotations

import itertools
import select
import shlex
import threading
import time

from .engine.errors import APIError
from .engine.port import AttachStream, Engine


def stop_command(mark: str) -> str:
    """A line that kills every process whose environment carries ``mark`` (see
    :func:`contained`), daemons that left the script's process group too; in a few rounds,
    for one that forked meanwhile."""
    return (
        f"for i in 1 2 3; do set -- $(grep -lzxF DN_PROBE={mark} /proc/[0-9]*/environ 2>/dev/null); "
        "[ $# -gt 0 ] || break; for f; do f=${f#/proc/}; kill -9 ${f%/environ} 2>/dev/null; done; done"
    )


def contained(script: str, mark: str) -> str:
    """Lines that run ``script`` as ``sh -c`` in a session of its own (``setsid``, where the
    image has it) with ``DN_PROBE=mark`` in its environment, and then kill whatever it left
    running; its exit code is then in ``$r``.

    The group kill is a builtin (no process started). Only when more processes run than an
    idle resident shell's two (so after busybox ``timeout``, whose watchdog makes a session
    of its own and would outlive the probe by up to a second) are the marked ones looked for.
    """
    return (
        "command -v setsid >/dev/null 2>&1 && s=setsid || s=; "
        f"DN_PROBE={mark} $s sh -c {shlex.quote(script)} </dev/null 2>&1 & p=$!; wait $p; r=$?; "
        f"kill -9 -$p 2>/dev/null; set -- /proc/[0-9]*; [ $# -le 2 ] || {{ {stop_command(mark)}; }}; "
    )


class NotSent(OSError):
    """The resident shell could not be given the script: it has not started, and an exec may
    run it instead."""


class Shell:
    """The resident shell of one container, fed over its attach socket.

    Each script runs as ``sh -c SCRIPT`` (a syntax error cannot kill the resident shell,
    see :func:`contained`) and ends with a unique marker carrying its exit code; output
    before a marker that is not ours (left by a script abandoned half-way) is skipped.
    """

    _tokens = itertools.count()

    def __init__(self, engine: Engine, container_id: str):
        self._engine = engine
        self._id = container_id
        self._stream: AttachStream | None = None
        self.lock = threading.Lock()
        self.broken = False
        self._until = 0.0  # when the script being read is abandoned (time.monotonic())
        self._deadline = 0.0

    def run(self, script: str, mark: str, deadline: float) -> tuple[int, str]:
        """Run ``script`` (marked ``mark``) and read its end for up to ``deadline`` seconds;
        (exit code, stdout+stderr). Raises NotSent if the shell could not be given the script,
        OSError if it was given it and no end came (the script may still run)."""
        self._until, self._deadline = time.monotonic() + deadline, deadline
        token = f"@@end{next(self._tokens)}@@"
        try:
            stream = self._stream or self._attach()
            # The line's last byte is the newline that makes the shell start it: a send that
            # fails has not started it.
            stream.sock.sendall(f"{contained(script, mark)}echo {token}$r\n".encode())
        except (OSError, APIError) as exc:
            raise NotSent(str(exc)) from None
        output = self._read_until(token.encode())
        head, _, tail = output.rpartition(token.encode())
        return int(tail.strip() or 127), head.decode(errors="replace")

    def _attach(self) -> AttachStream:
        # Attached to a container that has stopped, the stream neither answers nor ends; a
        # paused one's shell answers nothing until it is unpaused.
        state = self._engine.inspect_container(self._id)["State"]
        if not state.get("Running") or state.get("Paused"):
            raise OSError("the container is not running")
        self._stream = self._engine.attach(self._id, stdout=True, stderr=True)
        self._stream.sock.settimeout(self._engine.timeout)
        return self._stream

    def _read_until(self, token: bytes) -> bytes:
        # Linear in the output (an HTTP response of megabytes comes in thousands of
        # frames): only what is new is searched, from where a token could begin.
        out, at, searched = bytearray(), -1, 0
        while True:
            stream = self._wait_readable()
            frame = stream.read_frame()
            if frame is None:
                raise OSError("the attach stream closed")
            out += frame
            if at < 0:
                at = out.find(token, searched)
                searched = max(0, len(out) - len(token) + 1)
            if at >= 0 and out.find(b"\n", at) >= 0:
                start = out.rfind(b"@@end", 0, at)
                # the output of an earlier script that never reached its marker is not ours
                return bytes(out[out.find(b"\n", start) + 1 if start >= 0 else 0 : out.find(b"\n", at)])

    def _wait_readable(self) -> AttachStream:
        """The engine's reads wait for data without a limit: a shell that hangs must not hang us."""
        stream = self._stream
        if stream is None:
            raise OSError("the attach stream closed")
        if stream.pending():  # TLS: bytes decrypted already
            return stream
        left = self._until - time.monotonic()
        if left <= 0 or not select.select([stream.sock], [], [], left)[0]:
            raise OSError(f"no end within {self._deadline:g} s")
        return stream

    def close(self) -> None:
        self.broken = True
        if self._stream is not None:
            self._stream.close()


class Shells:
    """The resident shells of one topology's containers, attached on first use and closed
    with the topology (probes after that exec)."""

    def __init__(self) -> None:
        self._shells: dict[str, Shell] = {}
        self._lock = threading.Lock()
        self._closed = False

    def acquire(self, engine: Engine, container_id: str) -> Shell | None:
        """The container's shell, locked for the caller, or None if it is busy, broken or closed."""
        with self._lock:
            if self._closed:
                return None
            shell = self._shells.get(container_id)
            if shell is None:
                shell = self._shells[container_id] = Shell(engine, container_id)
        if shell.broken or not shell.lock.acquire(blocking=False):
            return None
        return shell

    def discard(self, container_id: str) -> None:
        """Close the container's shell, if any: the next probe attaches afresh (after a
        restart the resident shell is a new process; the old stream answers nothing)."""
        with self._lock:
            shell = self._shells.pop(container_id, None)
        if shell is not None:
            shell.close()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            shells, self._shells = list(self._shells.values()), {}
        for shell in shells:
            shell.close()
