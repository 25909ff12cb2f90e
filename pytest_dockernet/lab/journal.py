"""The lab's state file: what the lab made, each entry noted before it is made, and how to
undo each kind of entry. Noting first is what lets ``down`` from any process remove exactly
what an ``up`` made, also one that failed half-way; keeping the undoing beside the noting
keeps the file's kinds and what removes them in one place.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from ..engine import remove_network_if_unused
from ..engine.errors import APIError, EngineException, NotFound
from ..errors import EngineUnavailable, LabError
from ..swarm import LAB, Leaving, made_by_plugin, what_keeps
from .host import (
    LAB_DIR,
    STATE_FILE,
    delete_rule,
    forward_rule,
    is_lab_dockerd,
    links,
    namespace,
    namespaces,
    run,
    stop_dockerd,
    unmount_under,
)

if TYPE_CHECKING:
    from ..engine.port import Engine

STATE_VERSION = 1

Entry = dict[str, Any]


class Engines(Protocol):
    """The lab's engines, as undoing needs them."""

    def engine(self, engine: int) -> Engine: ...

    def drop(self, engine: int) -> None:
        """Close and forget the connection to engine ``engine``, if one is open."""


# --- the state file --------------------------------------------------------------------


def fresh(engines: int, base_url: str | None, *, for_run: bool = False) -> dict[str, Any]:
    """The state of a lab about to be brought up: nothing made yet. ``for_run``: the lab lives
    only as long as this process (a pytest run's ``--dockernet-lab``), not until ``down``."""
    return {
        "version": STATE_VERSION,
        "engines": engines,
        "base_url": base_url,
        "complete": False,
        "pid": os.getpid(),
        "for_run": for_run,
        "made": [],
        "partitioned": [],
        "timings": {},
        "swarm": {},
    }


def read() -> dict[str, Any] | None:
    """The state in the state file, or None when there is none (no lab is up)."""
    try:
        state: dict[str, Any] = json.loads(STATE_FILE.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise LabError(f"cannot read the lab's state file {STATE_FILE}: {exc}") from None
    if state.get("version") != STATE_VERSION:
        raise LabError(f"{STATE_FILE} was written by another version of pytest-dockernet; remove it by hand")
    return state


def save(state: dict[str, Any]) -> None:
    LAB_DIR.mkdir(mode=0o755, parents=True, exist_ok=True)
    tmp = STATE_FILE.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=2) + "\n")
    os.replace(tmp, STATE_FILE)


def note(state: dict[str, Any], kind: str, **details: Any) -> Entry:
    entry = {"kind": kind, **details}
    state["made"].append(entry)
    save(state)
    return entry


# --- undoing ---------------------------------------------------------------------------


def undo_all(state: dict[str, Any], engines: Engines, *, keep_state_file: bool) -> list[str]:
    """Undo every entry of ``state``; what could not be undone stays in it (and in the state
    file, saved again), and the errors saying why are returned. With ``keep_state_file`` the
    lab's directory, which holds the state file, is kept for another try."""
    errors = []
    remaining: list[Entry] = []
    # The engines stop first (together, in about 2 s); their nodes are then down, and the
    # manager removes them at once. The rest goes in the reverse order of its making.
    made = list(reversed(state["made"]))
    first = {"dockerd": 0, "swarm-node": 1, "swarm-init": 2}
    made.sort(key=lambda entry: first.get(entry["kind"], len(first)))
    for entry in made:
        if entry["kind"] == "dir" and (keep_state_file or remaining):
            remaining.append(entry)  # keep the state file for another try
            continue
        try:
            undo(entry, state["made"], engines)
        except (LabError, OSError, EngineException, EngineUnavailable) as exc:
            errors.append(f"{entry['kind']} {entry}: {exc}")
            remaining.append(entry)
    state["made"] = [entry for entry in state["made"] if entry in remaining]
    if remaining:
        save(state)
    return errors


def swarm_outcome(entries: list[Entry]) -> Leaving:
    """What undoing did with the swarm the lab made (``entries``: its swarm-init entries,
    which :func:`_leave_swarm` marks)."""
    kept = tuple(reason for entry in entries for reason in entry.get("kept_by", ()))
    return Leaving(left=not kept and any(entry.get("left") for entry in entries), kept_by=kept)


def undo(entry: Entry, made: list[Entry], engines: Engines) -> None:
    """Remove what ``entry`` notes; ``made`` is every entry, for undoing that takes in others."""
    how = UNDO.get(entry["kind"])
    if how is not None:  # a kind without undo has nothing on the host to remove
        how(entry, made, engines)


def _leave_swarm_node(entry: Entry, made: list[Entry], engines: Engines) -> None:
    engine, node_id = entry["engine"], entry["node_id"]
    # The manager removes the node; the engine itself forgets the swarm with its data root.
    engine0 = engines.engine(0)
    if not engine0.info()["Swarm"].get("ControlAvailable"):
        return  # no swarm (or not a manager of it) any more: nothing to remove
    label = f"pytest-dockernet.lab={namespace(engine)}"
    ids = {node_id} if node_id else set()
    # A join that failed half-way may have left a node the lab has no id of: its engine label tells.
    ids |= {n["ID"] for n in engine0.nodes() if label in _engine_labels(n)}
    for node in ids:
        try:
            engine0.remove_node(node, force=True)
        except NotFound:
            pass
        except APIError as exc:
            raise LabError(f"engine 0 could not remove engine {engine}'s node {node}: {exc}") from None


def _engine_labels(node: dict[str, Any]) -> list[str]:
    labels = node.get("Description", {}).get("Engine", {}).get("Labels") or {}
    return [f"{key}={value}" for key, value in labels.items()]


def _leave_swarm(entry: Entry, made: list[Entry], engines: Engines) -> None:
    engine0 = engines.engine(0)
    labels = made_by_plugin(engine0)
    if labels is not None:
        # Checked at the last moment, under engine 0's gate (see Lab.down); the lab's own
        # state file, which keeps its swarm from other runs, exists until the end.
        keep = what_keeps(engine0, {k: v for k, v in labels.items() if k != LAB})
        if keep:
            entry["kept_by"] = keep  # it stays, labelled: a later run's prune leaves it
            return
    with contextlib.suppress(APIError):  # 503: not part of a swarm
        engine0.leave_swarm(force=True)
        entry["left"] = True
    if not entry["gwbridge_existed"]:
        remove_network_if_unused(engine0, "docker_gwbridge")


def _stop_engine(entry: Entry, made: list[Entry], engines: Engines) -> None:
    # All at once, their containers killed first: a dockerd stopping gives each running
    # container its stop timeout (10 s unless set), and nothing of theirs is kept anyway.
    for other in made:
        if other["kind"] == "dockerd" and is_lab_dockerd(other["pid"], other["socket"]):
            _kill_containers(engines, other["engine"])
            with contextlib.suppress(ProcessLookupError):
                os.kill(other["pid"], signal.SIGTERM)
    engines.drop(entry["engine"])
    stop_dockerd(entry["pid"], entry["socket"], entry["dir"])


def _kill_containers(engines: Engines, engine: int) -> None:
    with contextlib.suppress(EngineException, EngineUnavailable, OSError):
        running = engines.engine(engine)
        for container in running.containers():
            with contextlib.suppress(APIError):
                running.kill(container["Id"])


def _remove_dir(entry: Entry, made: list[Entry], engines: Engines) -> None:
    path = Path(entry["path"])
    unmount_under(path)
    if path.exists():
        shutil.rmtree(path)


def _remove_netns(entry: Entry, made: list[Entry], engines: Engines) -> None:
    if entry["name"] in namespaces():
        run("ip", "netns", "del", entry["name"])


def _remove_link(entry: Entry, made: list[Entry], engines: Engines) -> None:
    if entry["name"] in links():
        run("ip", "link", "del", entry["name"])


def _remove_forward_rule(entry: Entry, made: list[Entry], engines: Engines) -> None:
    delete_rule((), forward_rule(), "ACCEPT")


# Every kind the lab notes, and what undoes it.
UNDO: dict[str, Callable[[Entry, list[Entry], Engines], None]] = {
    "swarm-node": _leave_swarm_node,
    "swarm-init": _leave_swarm,
    "dockerd": _stop_engine,
    "engine-dir": _remove_dir,
    "netns": _remove_netns,
    "veth": _remove_link,
    "bridge": _remove_link,
    "forward-rule": _remove_forward_rule,
    "dir": _remove_dir,
}
