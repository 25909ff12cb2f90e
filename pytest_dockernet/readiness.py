"""When a container is ready: ``container(ready=...)`` and ``Container.wait_until``.

Each form of ``ready`` is a :class:`Readiness` strategy: the words (``"running"``,
``"healthy"``, ``"completed"``) are mapped to theirs in :data:`WORDS`, ``LogLine``,
``Listening`` and a callable are their own. What the other parts ask (whether the start
alone is enough, whether an exit is success, whether a warm-pool container can serve it,
which of two a Compose dependency waits for) they ask the strategy, never the word.

A wait watches the container's state on every round, so one that exits ends the wait at
once with its exit code and last output lines, instead of at the timeout with a message
about something else. A container that has just started and turns unhealthy ends it too;
``wait_until`` waits through unhealthy instead (a healthcheck that fails can pass again:
a recovery after a fault is what it waits for then).
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from .checks import check_timeout
from .diagnosis import not_ready, sockets
from .engine import exec_in
from .engine.errors import APIError, NotFound
from .errors import DockernetError
from .handles import state_text
from .probes import run
from .retry import poll

if TYPE_CHECKING:
    from .handles import Container

CRASH_LINES = 20  # the output lines a crash report shows
# A healthcheck's output shown in a report: its last lines (a traceback's error is at the
# end), each cut to its end too.
HEALTH_LINES = 5
HEALTH_LINE_CHARS = 200
DEFAULT_HEALTH_INTERVAL = 30e9  # ns: the engine's interval for a healthcheck that sets none
_INTERVAL = 0.1  # between checks: a wait ends within this of the container being ready

State = dict[str, Any]  # a container's ``State``, as the engine's inspect answers it


class Readiness:
    """A strategy: when a container is ready, and what the parts may assume of it.

    A wait asks :meth:`settled` on every round, then (when it answers None) :meth:`holds`.
    """

    rank: ClassVar[int] = 0  # how much it asks: a Compose dependency waits for the most its dependents ask
    ready_when_started: ClassVar[bool] = False  # seen running after its start, it is ready: no wait
    poolable: ClassVar[bool] = False  # a warm-pool container (probe image, no healthcheck) can serve it
    # A check raising AssertionError or DockernetError means "not yet" (False: waiting cannot help).
    errors_mean_not_yet: ClassVar[bool] = True

    def exit_is_success(self, state: State) -> bool:
        """Whether a container that stopped in ``state`` is ready (a one-shot job's success)."""
        return False

    def settled(self, container: Container, state: State, *, through_unhealthy: bool = False) -> bool | None:
        """What ``state`` alone decides: True (ready), False (not yet), or None (ask
        :meth:`holds`); raises when the container stopped, or turned unhealthy unless
        ``through_unhealthy``."""
        if not state.get("Running") or state.get("Restarting"):
            raise DockernetError(crash_report(container, state, f"stopped before it was ready ({self})"))
        if (state.get("Health") or {}).get("Status") == "unhealthy" and not through_unhealthy:
            raise DockernetError(crash_report(container, state, f"turned unhealthy before it was ready ({self})"))
        return None

    def holds(self, container: Container, state: State) -> bool:
        """Whether the running ``container`` is ready now."""
        raise NotImplementedError

    def from_now(self, container: Container) -> Readiness:
        """The same wait, on what ``container`` does from now on (before a start again)."""
        return self


class Word(Readiness):
    """A readiness named by a word (see :data:`WORDS`)."""

    word: ClassVar[str]

    def __str__(self) -> str:
        return repr(self.word)

    def __repr__(self) -> str:
        return repr(self.word)


class Running(Word):
    word = "running"
    ready_when_started = True
    poolable = True

    def holds(self, container: Container, state: State) -> bool:
        return True


class Healthy(Word):
    word = "healthy"
    rank = 1
    errors_mean_not_yet = False  # no healthcheck: it never will be

    def holds(self, container: Container, state: State) -> bool:
        health: dict[str, Any] | None = state.get("Health")
        if health is None:
            raise DockernetError(
                f"container {container.name!r}: ready='healthy', but image {container.image} has no "
                "healthcheck: pass healthcheck={'test': [...], 'interval': 1} or wait another way "
                "(LogLine, Listening)"
            )
        if health.get("Status") == "healthy":
            return True
        if health.get("Log") and not OWN_CHECKS.taken_over(container):  # the engine runs them: its verdict stands
            return False
        return OWN_CHECKS.passes(container)


class OwnChecks:
    """Healthchecks run for an engine that runs none by itself: once a container has gone
    a whole interval (and a grace) without a check logged, the engine is asked to run it
    now, at its interval (its verdict is then the engine's, in its inspect answer too), or
    where it has no such call, its check command is run by exec and its exit code is the
    verdict. Podman 4.3 without systemd schedules healthchecks with systemd timers, so its
    containers stay "starting" with no check logged; an engine that runs them logs one
    before this ever acts."""

    GRACE = 2.0  # seconds past a check's first due time before the plugin runs it itself

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.due: dict[str, float] = {}  # container id -> when the plugin runs its check next
        self.ran: set[str] = set()  # containers whose checks the plugin has run

    def taken_over(self, container: Container) -> bool:
        """Whether the checks of ``container`` are run from here (what they log is ours)."""
        with self.lock:
            return container.id in self.ran

    def passes(self, container: Container) -> bool:
        config = container.engine.inspect_container(container.id)["Config"].get("Healthcheck") or {}
        command = healthcheck_command(config.get("Test") or [])
        if command is None:
            return False
        interval = max((config.get("Interval") or DEFAULT_HEALTH_INTERVAL) / 1e9, 0.5)
        now = time.monotonic()
        with self.lock:
            due = self.due.setdefault(container.id, now + interval + self.GRACE)
            if now < due:
                return False
            self.due[container.id] = now + interval
            self.ran.add(container.id)
        try:
            if container.engine.run_healthcheck(container.id):
                state = container.engine.inspect_container(container.id)["State"]
                return bool((state.get("Health") or {}).get("Status") == "healthy")
            code, _ = exec_in(container.engine, container.id, command)
        except APIError:
            return False
        return code == 0


def healthcheck_command(test: list[str]) -> list[str] | None:
    """The command a healthcheck's ``Test`` runs (None for none): ``CMD`` runs its words,
    ``CMD-SHELL`` its text through ``/bin/sh -c``."""
    if len(test) < 2 or test[0] not in ("CMD", "CMD-SHELL"):
        return None
    return list(test[1:]) if test[0] == "CMD" else ["/bin/sh", "-c", test[1]]


OWN_CHECKS = OwnChecks()


class Completed(Word):
    """Exited with code 0 (a one-shot job); while it runs, its health is not looked at."""

    word = "completed"
    rank = 2

    def exit_is_success(self, state: State) -> bool:
        return state.get("ExitCode") == 0

    def settled(self, container: Container, state: State, *, through_unhealthy: bool = False) -> bool | None:
        if state.get("Running") or state.get("Restarting"):
            return False
        if self.exit_is_success(state):
            return True
        raise DockernetError(crash_report(container, state, "did not complete successfully"))


# The words ``ready=`` takes, in the order messages list them: the one place a word is defined.
WORDS: dict[str, Word] = {w.word: w for w in (Running(), Healthy(), Completed())}


@dataclass(frozen=True)
class Check(Readiness):
    """A callable ``(Container) -> bool``: ready once it returns true."""

    check: Callable[[Container], object]

    def holds(self, container: Container, state: State) -> bool:
        return bool(self.check(container))

    def __str__(self) -> str:
        return getattr(self.check, "__name__", None) or repr(self.check)


@dataclass(frozen=True)
class LogLine(Readiness):
    """Ready once the container's output (stdout or stderr) has a line matching the
    regular expression ``pattern`` (``re.search`` on each line)."""

    pattern: str

    def __post_init__(self) -> None:
        if not isinstance(self.pattern, str) or not self.pattern:
            raise TypeError(f"LogLine(pattern): pattern must be a non-empty regular expression, got {self.pattern!r}")
        try:
            re.compile(self.pattern)
        except re.error as exc:
            raise ValueError(f"LogLine(pattern={self.pattern!r}) is not a regular expression: {exc}") from None

    def __call__(self, container: Container) -> bool:
        regex = re.compile(self.pattern)
        return any(regex.search(line) for line in container.logs().splitlines())

    def holds(self, container: Container, state: State) -> bool:
        return self(container)

    def from_now(self, container: Container) -> Readiness:
        return LogLineAfter(self.pattern, container.last_output_stamp())

    def __str__(self) -> str:
        return f"LogLine({self.pattern!r})"


@dataclass(frozen=True)
class LogLineAfter(LogLine):
    """A :class:`LogLine` matched in the output after ``after`` (a timestamp of
    :meth:`Container.last_output_stamp`): the engine keeps every run's output, and a restarted
    container is waited for on its new run's."""

    after: str = ""

    def __call__(self, container: Container) -> bool:
        regex = re.compile(self.pattern)
        output = container.engine.logs(container.id, timestamps=True).decode(errors="replace")
        # The engine's timestamps have a fixed width (nanoseconds, UTC): they compare as text.
        stamped = (line.partition(" ") for line in output.splitlines())
        return any(stamp > self.after and regex.search(line) for stamp, _, line in stamped)


@dataclass(frozen=True)
class Listening(Readiness):
    """Ready once something listens on ``port`` (``proto`` "tcp" or "udp") in the
    container's network namespace: read from the kernel's socket tables there (through
    the probe sidecar when the image has no tools), so it needs nothing in the image and
    sees a server bound to any address."""

    port: int
    proto: str = "tcp"

    def __post_init__(self) -> None:
        if not isinstance(self.port, int) or isinstance(self.port, bool) or not 0 < self.port < 65536:
            raise ValueError(f"Listening(port={self.port!r}): port must be a port number, 1-65535")
        if self.proto not in ("tcp", "udp"):
            raise ValueError(f"Listening(proto={self.proto!r}) must be 'tcp' or 'udp'")

    def __call__(self, container: Container) -> bool:
        tables = f"/proc/net/{self.proto} /proc/net/{self.proto}6"
        result = run(container, f"cat {tables} 2>/dev/null; true")
        return self.port in listening_ports(result.output, self.proto)

    def holds(self, container: Container, state: State) -> bool:
        return self(container)

    def __str__(self) -> str:
        return f"Listening({self.port}/{self.proto})"


def listening_ports(table: str, proto: str = "tcp") -> set[int]:
    """The local ports of listening sockets in /proc/net/tcp(6) or bound ones in udp(6)."""
    return {port for _, port in sockets(table, proto)}


def check_ready(ready: object, argument: str = "ready") -> Readiness:
    """The strategy of ``ready``, one of the forms ``container(ready=...)`` takes."""
    if isinstance(ready, Readiness):
        return ready
    if isinstance(ready, str):
        if ready not in WORDS:
            raise ValueError(
                f"{argument}={ready!r} is not one of {', '.join(map(repr, WORDS))}, LogLine(pattern), "
                "Listening(port) or a callable (Container) -> bool"
            )
        return WORDS[ready]
    if callable(ready):
        return Check(ready)
    raise TypeError(
        f"{argument} must be 'running', 'healthy', LogLine(pattern), Listening(port) or a "
        f"callable (Container) -> bool, got {ready!r}"
    )


def last_lines(container: Container, lines: int = CRASH_LINES) -> str:
    """The end of ``container``'s output, indented for a message ("(none)" when empty)."""
    try:
        text = container.logs(tail=lines).rstrip()
    except APIError:
        text = ""
    return "\n".join("  " + line for line in text.splitlines()) or "  (none)"


def last_healthcheck(state: dict[str, Any]) -> str | None:
    """What the last healthcheck of a container (its inspected ``State``) said, when it is
    unhealthy: its exit code and the end of its output (the last few lines, indented);
    None when it is not unhealthy or no check has run."""
    health = state.get("Health") or {}
    checks = health.get("Log") or []
    if health.get("Status") != "unhealthy" or not checks:
        return None
    last = checks[-1]
    lines = str(last.get("Output") or "").rstrip().splitlines()
    cut = [line if len(line) <= HEALTH_LINE_CHARS else "..." + line[-HEALTH_LINE_CHARS:] for line in lines]
    shown = cut[-HEALTH_LINES:]
    earlier = f"  (... {len(cut) - len(shown)} earlier lines)\n" if len(cut) > len(shown) else ""
    output = earlier + "\n".join("  " + line for line in shown) if shown else "  (no output)"
    streak = f", {health['FailingStreak']} in a row" if health.get("FailingStreak") else ""
    return f"its last healthcheck failed (exit code {last.get('ExitCode')}{streak}), saying:\n{output}"


def crash_report(container: Container, state: dict[str, Any], what: str) -> str:
    """``container`` is no longer running (or turned unhealthy): a message with ``what``
    happened, its state, exit code and last output lines (both streams)."""
    error = f"; the engine says: {state['Error']}" if state.get("Error") else ""
    oom = "; it was killed for want of memory (OOM)" if state.get("OOMKilled") else ""
    return (
        f"container {container.name!r} ({container.image}) {what}: {state_text(state)}, exit code "
        f"{state.get('ExitCode')}{error}{oom}{_and_output(container, state)}"
    )


def _and_output(container: Container, state: dict[str, Any]) -> str:
    """The end of a message about ``container``: its last healthcheck's words when it is
    unhealthy, then its last output lines."""
    checked = last_healthcheck(state)
    health = f"; {checked}\n" if checked else "; "
    return f"{health}the last lines of its output:\n{last_lines(container)}"


def wait_ready(
    container: Container,
    ready: object,
    timeout: object = 60.0,
    argument: str = "ready",
    *,
    through_unhealthy: bool = False,
) -> None:
    """Wait until ``ready`` holds for ``container``; see ``Container.wait_until``.

    A callable (or LogLine/Listening) that raises AssertionError or DockernetError counts
    as "not yet" (the last such error is shown at the timeout); other exceptions end the
    wait. A container that stops running ends it at once with a crash report; so does one
    whose healthcheck reports unhealthy, unless ``through_unhealthy`` (then it is waited
    for to be ready again, up to ``timeout``).
    """
    __tracebackhide__ = True
    strategy = check_ready(ready, argument)
    timeout = check_timeout(timeout)
    not_yet: list[BaseException] = []

    def attempt() -> bool:
        try:
            state = container.engine.inspect_container(container.id)["State"]
        except NotFound:
            raise DockernetError(
                f"container {container.name!r} no longer exists (removed while waiting for it)"
            ) from None
        settled = strategy.settled(container, state, through_unhealthy=through_unhealthy)
        if settled is not None:
            return settled
        try:
            return strategy.holds(container, state)
        except (AssertionError, DockernetError) as exc:
            if not strategy.errors_mean_not_yet:
                raise
            not_yet[:] = [exc]
            return False

    done, _ = poll(attempt, bool, timeout=timeout, interval=_INTERVAL)
    if done:
        return
    why = f"; the last check said: {not_yet[0]}" if not_yet else ""
    try:
        state = container.engine.inspect_container(container.id)["State"]
    except NotFound:
        state = {"Status": "removed"}
    raise DockernetError(
        f"{not_ready(container, strategy)}\n"
        f"container {container.name!r} ({container.image}) was not ready ({strategy}) within "
        f"{timeout:g} s{why}; it is {state_text(state)}{_and_output(container, state)}"
    )
