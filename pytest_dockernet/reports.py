"""What a run's reports say about its topologies: the sections of a failing test's report
(the topology, its containers' last log lines, the ones that are not running or are
unhealthy) and the summary of what ``--dockernet-keep`` kept.

Built from the topology's handles and the engine's answers, and never raising: a report is
read after something went wrong, maybe the engine itself, and must not hide that failure
behind its own. Whatever the engine does not answer is said in the section instead.
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, cast

from .engine import lost
from .engine.errors import APIError, EngineException, NotFound
from .errors import one_line

if TYPE_CHECKING:
    from .context import Context
    from .handles import Container

TOPOLOGY = "dockernet topology"
LOGS = "dockernet logs"
NOT_RUNNING = "dockernet: containers not running"
UNHEALTHY = "dockernet: containers unhealthy"  # running, but their healthcheck fails
ENGINE = "dockernet: engine"
# A stopped container's last lines, in its entry of NOT_RUNNING: shown even with
# --dockernet-logs 0, since a crash is most often the reason the test failed.
NOT_RUNNING_LINES = 5
# A section's text at most: a log line may be any length (tail= counts lines, not bytes).
MAX_CHARS = 20_000
OWN_FIXTURE = "dockernet"  # the function-scoped factory: its sections' titles name no fixture
# Container.status() of a running container: "running", or with its healthcheck's word
# ("running (healthy)", "running (health: starting)"); "unhealthy" has a section of its own.
RUNNING = "running"

T = TypeVar("T")


class Factory(Protocol):
    """What a report reads of a factory (a :class:`~pytest_dockernet.Topology`)."""

    @property
    def containers_list(self) -> list[Container]: ...
    def describe(self) -> str: ...


class _Engine:
    """Asks the engine on the report's behalf and turns an error into a sentence; once the
    engine is lost, asks no more (each call would wait for its timeout)."""

    def __init__(self, silent: str | None):
        self.silent = silent  # why the engine is not asked

    def ask(self, question: Callable[[], T]) -> tuple[T | None, str | None]:
        """``(answer, None)``, or ``(None, why there is none)``."""
        if self.silent is not None:
            return None, self.silent
        try:
            return question(), None
        except NotFound:
            return None, "removed from the engine"
        except APIError as exc:
            return None, f"the engine answered with an error: {one_line(exc)}"
        except Exception as exc:  # noqa: BLE001 - any error becomes a line of the report
            reason = lost(exc)
            if reason is None and isinstance(exc, OSError):  # requests' errors are OSErrors
                reason = one_line(exc)  # e.g. a read that timed out: the next would too
            if reason is not None:
                self.silent = f"the engine did not answer ({reason})"
                return None, self.silent
            if isinstance(exc, EngineException):
                return None, f"the engine did not answer: {one_line(exc)}"
            return None, f"failed: {type(exc).__name__}: {one_line(exc)}"


def failure_sections(
    used: Sequence[tuple[str, Factory]], *, log_lines: int, engine_silent: str | None = None
) -> list[tuple[str, str]]:
    """The ``(title, text)`` sections of the report of a failed test that used these
    factories (``(fixture name, topology)`` pairs, the test's own first): the containers
    that are not running, each topology, and the last ``log_lines`` lines of each
    container with output of its own (none when 0). With ``engine_silent`` (why the engine
    is not to be asked), one section saying so."""
    try:
        if engine_silent is not None:
            return [(ENGINE, f"{engine_silent}: no topology, container states or logs in this report")]
        return _sections(used, log_lines, _Engine(None))
    except Exception as exc:  # noqa: BLE001 - the report of a failure must not fail
        return [(ENGINE, f"the dockernet sections of this report could not be made: {one_line(exc)}")]


def _sections(used: Sequence[tuple[str, Factory]], log_lines: int, engine: _Engine) -> list[tuple[str, str]]:
    entries: dict[str, list[str]] = {NOT_RUNNING: [], UNHEALTHY: []}
    topologies: list[tuple[str, str]] = []
    logs: list[tuple[str, str]] = []
    crash_lines = min(log_lines, NOT_RUNNING_LINES) if log_lines else NOT_RUNNING_LINES
    for fixture, factory in used:
        suffix = "" if fixture == OWN_FIXTURE else f" ({fixture})"
        description, why = engine.ask(factory.describe)
        topologies.append((TOPOLOGY + suffix, cast(str, description) if why is None else f"not shown: {why}"))
        for container in cast("list[Container | None]", factory.containers_list):  # defensive: it holds no None
            if container is None:  # its name is reserved, the container not made (yet)
                continue
            entry = _not_running(container, suffix, crash_lines, engine)
            if entry is not None:
                entries[entry[0]].append(entry[1])
            if log_lines and not container.resident:
                logs.append((f"{LOGS}: {container.name}{suffix}", _tail(container, log_lines, engine)))
    head = [(title, "\n".join(listed)) for title, listed in entries.items() if listed]
    return [(title, _cut(text)) for title, text in head + topologies + logs]


def _not_running(container: Container, suffix: str, lines: int, engine: _Engine) -> tuple[str, str] | None:
    """``(section, entry)`` of a container that is not running, or runs but is unhealthy
    (None if it runs otherwise): its state, exit code, last healthcheck and last lines."""
    name = f"{container.name}  [{container.docker_name}]{suffix}"
    status, why = engine.ask(container.status)
    if why is not None:
        return NOT_RUNNING, f"{name}  state unknown: {why}"
    status = cast(str, status)  # answered
    if status == RUNNING or status.startswith(RUNNING + " ("):
        return None
    if status == "removed":
        return NOT_RUNNING, f"{name}  removed (no exit code or logs left)"
    section = UNHEALTHY if status == "unhealthy" else NOT_RUNNING
    if section == UNHEALTHY:
        status = "running, but its healthcheck fails (unhealthy)"
    state, why = engine.ask(lambda: container.engine.inspect_container(container.id)["State"])
    if state is None:
        entry = [f"{name}  {status} ({why})"]
    else:
        from .readiness import last_healthcheck  # here: only a failure's report reads a healthcheck

        details = _state_details(state)
        entry = [f"{name}  {status}: {details}" if details else f"{name}  {status}"]
        checked = last_healthcheck(state)
        if checked is not None:
            entry.append(_indent(checked, 2))
    if not container.resident:  # a probe shell has no output of its own
        entry.append(f"  last lines:\n{_indent(_tail(container, lines, engine), 4)}")
    return section, "\n".join(entry)


def _state_details(state: dict[str, Any]) -> str:
    """The exit code (with the signal that killed it), and what else the engine says."""
    details = []
    if not state.get("Running") or state.get("Restarting"):
        code = state.get("ExitCode")
        text = f"{'last ' if state.get('Restarting') else ''}exit code {code}"
        if isinstance(code, int) and code > 128:
            try:
                text += f" (128 + {signal.Signals(code - 128).name})"
            except ValueError:
                pass
        details.append(text)
    if state.get("OOMKilled"):
        details.append("killed for lack of memory (OOM)")
    if state.get("Error"):
        details.append(f"engine error: {state['Error']}")
    return ", ".join(details)


def _tail(container: Container, lines: int, engine: _Engine) -> str:
    output, why = engine.ask(lambda: container.logs(tail=lines))
    if why is not None:
        return f"(no logs: {why})"
    return cast(str, output).rstrip("\n") or "(no output)"


def _indent(text: str, spaces: int) -> str:
    return "\n".join(" " * spaces + line for line in text.splitlines())


def _cut(text: str) -> str:
    if len(text) <= MAX_CHARS:
        return text
    return f"(... the first {len(text) - MAX_CHARS} characters cut)\n" + text[-MAX_CHARS:]


def kept_report(context: Context) -> str:
    """What ``--dockernet-keep`` kept of a topology (each container followed by its probe
    sidecar, which the removal command removes too) and how to remove it."""
    networks = [n.docker_name for n in context.networks if n.owned]
    containers = []
    for container in context.containers:
        containers.append(container.docker_name)
        if container.sidecar_id is not None:
            containers.append(_name_of(container, container.sidecar_id))
    return (
        f"{context.label}:\n"
        f"  networks:   {' '.join(networks) or '-'}\n"
        f"  containers: {' '.join(containers) or '-'}\n"
        f"  remove with: {context.removal_command()}"
    )


def _name_of(container: Container, container_id: str) -> str:
    """The engine's name of a container on ``container``'s engine (its short id if the
    engine does not say)."""
    info, why = _Engine(None).ask(lambda: container.engine.inspect_container(container_id))
    return info["Name"].lstrip("/") if why is None and info else container_id[:12]
