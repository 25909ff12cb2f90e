"""When a container is ready: ``container(ready=...)`` and ``Container.wait_until``.

A wait watches the container's state on every round, so one that exits ends the wait at
once with its exit code and last output lines, instead of at the timeout with a message
about something else. A container that has just started and turns unhealthy ends it too;
``wait_until`` waits through unhealthy instead (a healthcheck that fails can pass again:
a recovery after a fault is what it waits for then).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Union, cast

import docker.errors

from .checks import check_timeout
from .errors import DockernetError
from .handles import state_text
from .probes import run
from .retry import poll

if TYPE_CHECKING:
    from .handles import Container

READY_WORDS = ("running", "healthy", "completed")  # "completed": exited with code 0 (a one-shot job)
CRASH_LINES = 20  # the output lines a crash report shows
# A healthcheck's output shown in a report: its last lines (a traceback's error is at the
# end), each cut to its end too.
HEALTH_LINES = 5
HEALTH_LINE_CHARS = 200
_INTERVAL = 0.1  # between checks: a wait ends within this of the container being ready


@dataclass(frozen=True)
class LogLine:
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

    def __str__(self) -> str:
        return f"LogLine({self.pattern!r})"


@dataclass(frozen=True)
class Listening:
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

    def __str__(self) -> str:
        return f"Listening({self.port}/{self.proto})"


def listening_ports(table: str, proto: str = "tcp") -> set[int]:
    """The local ports of listening sockets in /proc/net/tcp(6) or bound ones in udp(6)."""
    ports = set()
    for line in table.splitlines():
        fields = line.split()
        if len(fields) < 4 or ":" not in fields[1] or fields[0] == "sl":
            continue
        state = fields[3]
        if (proto == "tcp" and state == "0A") or (proto == "udp" and state == "07"):
            ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


Ready = Union[str, LogLine, Listening, Callable[["Container"], bool]]


def check_ready(ready: object, argument: str = "ready") -> Ready:
    """``ready`` must be one of the forms ``container(ready=...)`` takes."""
    if isinstance(ready, str):
        if ready not in READY_WORDS:
            raise ValueError(
                f"{argument}={ready!r} is not one of 'running', 'healthy', 'completed', LogLine(pattern), "
                "Listening(port) or a callable (Container) -> bool"
            )
        return ready
    if callable(ready):
        return ready
    raise TypeError(
        f"{argument} must be 'running', 'healthy', LogLine(pattern), Listening(port) or a "
        f"callable (Container) -> bool, got {ready!r}"
    )


def describe_ready(ready: Ready) -> str:
    if isinstance(ready, str):
        return repr(ready)
    if isinstance(ready, (LogLine, Listening)):
        return str(ready)
    return getattr(ready, "__name__", None) or repr(ready)


def last_lines(container: Container, lines: int = CRASH_LINES) -> str:
    """The end of ``container``'s output, indented for a message ("(none)" when empty)."""
    try:
        text = container.logs(tail=lines).rstrip()
    except docker.errors.APIError:
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


def _verdict(container: Container, ready: Ready, state: dict[str, Any]) -> bool:
    if ready == "running":
        return True
    if ready == "healthy":
        health: dict[str, Any] | None = state.get("Health")
        if health is None:
            raise DockernetError(
                f"container {container.name!r}: ready='healthy', but image {container.image} has no "
                "healthcheck: pass healthcheck={'test': [...], 'interval': 1} or wait another way "
                "(LogLine, Listening)"
            )
        return health.get("Status") == "healthy"
    return bool(cast("Callable[[Container], object]", ready)(container))  # no str is left here


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
    ready = check_ready(ready, argument)
    timeout = check_timeout(timeout)
    not_yet: list[BaseException] = []

    def attempt() -> bool:
        try:
            state = container.client.api.inspect_container(container.id)["State"]
        except docker.errors.NotFound:
            raise DockernetError(
                f"container {container.name!r} no longer exists (removed while waiting for it)"
            ) from None
        waited_for = describe_ready(ready)
        if ready == "completed" and not state.get("Running") and not state.get("Restarting"):
            if state.get("ExitCode") == 0:
                return True
            raise DockernetError(crash_report(container, state, "did not complete successfully"))
        if ready == "completed":
            return False
        if not state.get("Running") or state.get("Restarting"):
            raise DockernetError(crash_report(container, state, f"stopped before it was ready ({waited_for})"))
        if (state.get("Health") or {}).get("Status") == "unhealthy" and not through_unhealthy:
            raise DockernetError(crash_report(container, state, f"turned unhealthy before it was ready ({waited_for})"))
        try:
            return _verdict(container, ready, state)
        except (AssertionError, DockernetError) as exc:
            if ready == "healthy":  # the image has no healthcheck: waiting will not help
                raise
            not_yet[:] = [exc]
            return False

    done, _ = poll(attempt, bool, timeout=timeout, interval=_INTERVAL)
    if done:
        return
    why = f"; the last check said: {not_yet[0]}" if not_yet else ""
    try:
        state = container.client.api.inspect_container(container.id)["State"]
    except docker.errors.NotFound:
        state = {"Status": "removed"}
    raise DockernetError(
        f"container {container.name!r} ({container.image}) was not ready ({describe_ready(ready)}) within "
        f"{timeout:g} s{why}; it is {state_text(state)}{_and_output(container, state)}"
    )
