"""A multi-host Docker lab on one Linux machine: extra engines in network namespaces, one swarm.

    python -m pytest_dockernet.lab up --engines 3    # prints the --dockernet-hosts value
    python -m pytest_dockernet.lab status
    python -m pytest_dockernet.lab down

Engine 0 is the environment's engine (``DOCKER_HOST`` or the default socket) and runs in
the host's network namespace. Engines 1..n-1 each get a namespace ``dnlabI`` linked by a
veth pair to the host bridge ``dnlab-br`` (198.18.213.0/24, RFC 2544 benchmark range),
their own data root, exec root, socket, containerd and ``--bip``, and join engine 0's
swarm. Everything made is noted in a state file before it is made, so ``down`` from any
process removes exactly that, also after an ``up`` that failed half-way. Needs root.

This module is the lab as a whole (bring-up, reuse, status, partitions, removal); the host's
commands and processes are in :mod:`.host`, the state file and how each of its entries is
undone in :mod:`.journal`, the command line in :mod:`.__main__`.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import time
from dataclasses import dataclass
from typing import Any

from ..engine import connect, has_network
from ..engine.docker_engine import DockerEngine
from ..engine.errors import APIError, EngineException
from ..engine.gate import gate_for
from ..engine.info import read_info
from ..errors import EngineUnavailable, LabError
from ..image import copy_image
from ..retry import poll
from ..swarm import LAB, MADE, Leaving, made_labels
from . import journal
from .host import (
    BRIDGE,
    BRIDGE_ADDRESS,
    LAB_DIR,
    LINK,
    MAX_ENGINES,
    RULE_COMMENT,
    STATE_FILE,
    add_rule,
    alive,
    check_engines,
    check_host,
    check_leftovers,
    delete_rule,
    dockerd_command,
    engine_address,
    engine_dir,
    engine_log,
    engine_socket,
    forward_rule,
    host_addresses,
    host_veth,
    in_namespace,
    log_tail,
    namespace,
    namespace_veth,
    namespaces,
    partition_rules,
    run,
    spawn,
)

__all__ = [
    "LAB_DIR",
    "MAX_ENGINES",
    "RULE_COMMENT",
    "STATE_FILE",
    "EngineStatus",
    "Lab",
    "LabError",
    "copy_image",
]

START_TIMEOUT = 60.0


@dataclass(frozen=True)
class EngineStatus:
    """One engine of the lab as ``status`` sees it."""

    index: int
    url: str
    namespace: str | None  # None for engine 0, which runs in the host's namespace
    address: str  # where the others reach it
    running: bool
    node_id: str | None
    node_state: str  # the swarm's view: ready, down, unknown; "-" when not in the swarm
    role: str  # manager, worker, "-"
    partitioned: bool

    def describe(self) -> str:
        where = f"netns {self.namespace}" if self.namespace else "host netns"
        state = "running" if self.running else "NOT RUNNING"
        node = f"node {self.node_id[:12]} {self.role} {self.node_state}" if self.node_id else "not in the swarm"
        cut = ", PARTITIONED" if self.partitioned else ""
        return f"engine {self.index}: {self.url} ({where}, {self.address}) {state}, {node}{cut}"


def _check_engine(engine: object, engines: int, *, allow_zero: bool = True) -> int:
    low = 0 if allow_zero else 1
    if isinstance(engine, bool) or not isinstance(engine, int) or not low <= engine < engines:
        raise ValueError(f"engine={engine!r} is not an engine of this lab: pass {low} to {engines - 1}")
    return engine


# What connecting to an engine of the lab raises when it does not answer.
UNREACHABLE = (EngineException, EngineUnavailable, OSError)


class _Engines:
    """The engines a Lab object connected to, each when first asked for (the
    :class:`journal.Engines` that undoing uses)."""

    def __init__(self, state: dict[str, Any]):
        self._state = state
        self._open: dict[int, DockerEngine] = {}

    def engine(self, engine: int) -> DockerEngine:
        engine = _check_engine(engine, self._state["engines"])
        if engine not in self._open:
            url = self._state["base_url"] if engine == 0 else f"unix://{engine_socket(engine)}"
            self._open[engine] = connect(url or None)
        return self._open[engine]

    def drop(self, engine: int) -> None:
        opened = self._open.pop(engine, None)
        if opened is not None:
            opened.close()

    def close(self) -> None:
        for opened in self._open.values():
            opened.close()
        self._open.clear()


def _plan_swarm(swarm: dict[str, Any]) -> str | None:
    """Engine 0's manager address when it is a swarm manager already; None when it is in no swarm."""
    state = swarm.get("LocalNodeState")
    if state == "inactive":
        return None
    if state != "active":
        raise LabError(f"engine 0's swarm state is {state!r}; the lab needs it active as a manager, or inactive")
    if not swarm.get("ControlAvailable"):
        raise LabError(
            "engine 0 is a swarm worker; the lab needs it to be a manager of its swarm or in no swarm "
            "(docker swarm leave, if that swarm is not needed)"
        )
    own = [m["Addr"] for m in swarm.get("RemoteManagers") or [] if m.get("NodeID") == swarm.get("NodeID")]
    addr = own[0] if own else f"{swarm.get('NodeAddr')}:2377"
    host = ipaddress.ip_address(addr.rpartition(":")[0].strip("[]"))
    if host.version != 4 or host.is_loopback or (host not in LINK and host not in host_addresses()):
        labels = (swarm.get("Cluster") or {}).get("Spec", {}).get("Labels") or {}
        raise LabError(
            f"engine 0 is a swarm manager at {addr}, which the lab's engines cannot reach: it must be an IPv4 "
            "address of this host other than loopback "
            + (
                "(it is the swarm --dockernet-swarm auto made, kept because leaving it would have broken names: "
                "`pytest --dockernet-prune` leaves it once nothing is at risk)"
                if labels.get(MADE) == "made"
                else "(re-create the swarm with --advertise-addr set to one)"
            )
        )
    return addr


class Lab:
    """A running lab, as recorded in the state file.

    ``Lab.up(3)`` brings one up (or returns the running one if it has 3 engines), ``Lab.load()``
    finds the running one from any process, ``lab.down()`` removes it (``swarm_left`` says
    then whether engine 0 left the swarm the lab made, or what kept it there)."""

    def __init__(self, state: dict[str, Any], *, reused: bool = False):
        self._state = state
        self._engines = _Engines(state)
        self.reused = reused  # up() found this lab running and returned it
        self.swarm_left = Leaving()  # after down(): whether engine 0 left the lab's swarm, or what kept it

    @classmethod
    def load(cls) -> Lab | None:
        """The lab recorded in the state file, or None when no lab is up."""
        state = journal.read()
        return None if state is None else cls(state)

    # What callers read.

    @property
    def engines(self) -> int:
        """How many engines, engine 0 included."""
        engines: int = self._state["engines"]
        return engines

    @property
    def complete(self) -> bool:
        """False while ``up`` runs, and after an ``up`` that failed and could not clean up."""
        complete: bool = self._state["complete"]
        return complete

    @property
    def hosts(self) -> list[str]:
        """The URLs of engines 1..n-1."""
        return [f"unix://{engine_socket(i)}" for i in range(1, self.engines)]

    @property
    def hosts_option(self) -> str:
        """The value for ``--dockernet-hosts``."""
        return ",".join(self.hosts)

    @property
    def timings(self) -> dict[str, float]:
        """Seconds the bring-up spent: network, engines, swarm, total (all 0.0 when reused)."""
        if self.reused:
            return dict.fromkeys(self._state["timings"], 0.0)
        return dict(self._state["timings"])

    @property
    def partitioned(self) -> list[int]:
        return sorted(self._state["partitioned"])

    @property
    def swarm_initialised(self) -> bool:
        """Whether the lab made the swarm (else engine 0 was a manager already)."""
        return any(entry["kind"] == "swarm-init" for entry in self._state["made"])

    def client(self, engine: int) -> Any:
        """A docker-py client (``docker.DockerClient``) of engine ``engine``; 0 is the
        environment's engine."""
        return self._engines.engine(engine).client

    def close(self) -> None:
        """Close the connections this object opened (the lab keeps running)."""
        self._engines.close()

    # Bring-up.

    @classmethod
    def up(
        cls, engines: int = 3, *, base_url: str | None = None, timeout: float = START_TIMEOUT, for_run: bool = False
    ) -> Lab:
        """Start engines 1..engines-1 and join them and engine 0 into one swarm.

        A lab that is up already is returned (healed of partitions, ``reused`` set) when it has
        as many engines on the same engine 0; otherwise this raises LabError: take it down first.
        A lab brought up for a run that is gone (``for_run``, its process killed before it could
        take the lab down) is taken down first: nobody else uses it.
        """
        check_engines(engines)
        check_host()
        _check_engine_here(base_url)
        existing = cls.load()
        if existing is not None and existing.orphaned:
            existing.down()
            existing = None
        if existing is not None:
            return existing._reuse(engines, base_url, timeout)
        check_leftovers()
        lab = cls(journal.fresh(engines, base_url, for_run=for_run))
        # Swarm init and join change engine 0's networking under everyone using it: hold its
        # gate, as a network removal does (see pytest_dockernet.engine.gate).
        with lab._engine0_gate():
            try:
                lab._bring_up(timeout)
            except BaseException as exc:
                try:
                    lab._tear_down()
                except LabError as cleanup:
                    raise LabError(f"{exc}\n\nCleaning up after the failed bring-up failed too: {cleanup}") from exc
                raise
        return lab

    @property
    def orphaned(self) -> bool:
        """Brought up for a pytest run (``--dockernet-lab``) whose process is gone."""
        return bool(self._state.get("for_run")) and not alive(self._state["pid"])

    def _engine0_gate(self) -> contextlib.AbstractContextManager[None]:
        return gate_for(self._engines.engine(0)).removing()

    def _reuse(self, engines: int, base_url: str | None, timeout: float) -> Lab:
        how = "python -m pytest_dockernet.lab down"
        if not self.complete:
            raise LabError(f"a lab's bring-up (pid {self._state['pid']}) is running or failed half-way; run `{how}`")
        if engines != self.engines or base_url != self._state["base_url"]:
            raise LabError(
                f"a lab with {self.engines} engines (engine 0: {self._state['base_url'] or 'from the environment'}) "
                f"is up already; run `{how}` before bringing up one with {engines}"
            )
        stopped = [s for s in self.status() if not s.running]
        if stopped:
            raise LabError(
                "the lab that is up is broken:\n  " + "\n  ".join(s.describe() for s in stopped) + f"\nrun `{how}`"
            )
        for engine in self.partitioned:
            self.heal(engine)
        try:
            self._wait_until_ready(timeout)
        except LabError as exc:
            raise LabError(f"the lab that is up is not healthy: {exc}; run `{how}`") from None
        self.reused = True
        return self

    def _bring_up(self, timeout: float) -> None:
        started = time.perf_counter()
        try:
            swarm = self._engines.engine(0).info()["Swarm"]
        except UNREACHABLE as exc:
            raise LabError(f"engine 0 is not available: {exc}") from None
        manager = _plan_swarm(swarm)
        journal.note(self._state, "dir", path=str(LAB_DIR))
        LAB_DIR.mkdir(mode=0o755, exist_ok=True)
        self._make_network(manager)
        network_done = time.perf_counter()
        for engine in range(1, self.engines):
            self._start_engine(engine)
        for engine in range(1, self.engines):
            self._wait_for_engine(engine, timeout)
        engines_done = time.perf_counter()
        self._make_swarm(manager, timeout)
        done = time.perf_counter()
        self._state["timings"] = {
            "network": round(network_done - started, 3),
            "engines": round(engines_done - network_done, 3),
            "swarm": round(done - engines_done, 3),
            "total": round(done - started, 3),
        }
        self._state["complete"] = True
        journal.save(self._state)

    def _make_network(self, manager: str | None) -> None:
        journal.note(self._state, "bridge", name=BRIDGE)
        run("ip", "link", "add", BRIDGE, "type", "bridge")
        run("ip", "addr", "add", f"{BRIDGE_ADDRESS}/{LINK.prefixlen}", "dev", BRIDGE)
        run("ip", "link", "set", BRIDGE, "up")
        journal.note(self._state, "forward-rule")
        add_rule((), "FORWARD", forward_rule(), "ACCEPT")
        manager_host = manager.rpartition(":")[0] if manager else None
        for engine in range(1, self.engines):
            name, outside, inside = namespace(engine), host_veth(engine), namespace_veth(engine)
            journal.note(self._state, "netns", name=name)
            run("ip", "netns", "add", name)
            journal.note(self._state, "veth", name=outside)
            run("ip", "link", "add", outside, "type", "veth", "peer", "name", inside, "netns", name)
            run("ip", "link", "set", outside, "master", BRIDGE, "up")
            run(*in_namespace(name, "ip", "addr", "add", f"{engine_address(engine)}/{LINK.prefixlen}", "dev", inside))
            run(*in_namespace(name, "ip", "link", "set", inside, "up"))
            run(*in_namespace(name, "ip", "link", "set", "lo", "up"))
            if manager_host and ipaddress.ip_address(manager_host) not in LINK:
                # No default route: the namespaces reach the lab and nothing beyond.
                run(*in_namespace(name, "ip", "route", "add", f"{manager_host}/32", "via", str(BRIDGE_ADDRESS)))

    def _start_engine(self, engine: int) -> None:
        directory = engine_dir(engine)
        journal.note(self._state, "engine-dir", path=str(directory))
        directory.mkdir(mode=0o711)
        (directory / "daemon.json").write_text("{}\n")  # not /etc/docker/daemon.json, which is engine 0's
        pid = spawn(dockerd_command(engine), engine_log(engine))
        # nsenter, unshare and sh exec, so this pid is dockerd's.
        journal.note(
            self._state, "dockerd", engine=engine, pid=pid, socket=str(engine_socket(engine)), dir=str(directory)
        )

    def _wait_for_engine(self, engine: int, timeout: float) -> None:
        entry = self._dockerd(engine)

        def answers() -> bool:
            if not alive(entry["pid"]):
                raise LabError(
                    f"engine {engine}'s dockerd exited; the end of {engine_log(engine)}:\n"
                    + log_tail(engine_log(engine))
                )
            try:
                return self._engines.engine(engine).ping()  # connecting asks the API version too
            except UNREACHABLE:
                return False

        answered, _ = poll(answers, bool, timeout=timeout, interval=0.1)
        if not answered:
            raise LabError(
                f"engine {engine} did not answer on {engine_socket(engine)} within {timeout:.0f}s; "
                f"the end of {engine_log(engine)}:\n" + log_tail(engine_log(engine))
            )

    def _dockerd(self, engine: int) -> dict[str, Any]:
        return next(e for e in self._state["made"] if e["kind"] == "dockerd" and e["engine"] == engine)

    def _make_swarm(self, manager: str | None, timeout: float) -> None:
        engine0 = self._engines.engine(0)
        if manager is None:
            address = str(BRIDGE_ADDRESS)
            journal.note(self._state, "swarm-init", gwbridge_existed=has_network(engine0, "docker_gwbridge"))
            # The plugin's, in use while the state file exists: a later run leaves it if down() cannot.
            labels = {**made_labels(engine0), LAB: str(STATE_FILE)}
            try:
                engine0.init_swarm(
                    advertise_addr=address, listen_addr=f"{address}:2377", data_path_addr=address, labels=labels
                )
            except APIError as exc:
                raise LabError(f"engine 0 could not start a swarm at {address}: {exc.explanation or exc}") from None
            manager = f"{address}:2377"
        token = engine0.inspect_swarm()["JoinTokens"]["Worker"]
        self._state["swarm"] = {"manager": manager}
        for engine in range(1, self.engines):
            address = str(engine_address(engine))
            joining = self._engines.engine(engine)
            entry = journal.note(self._state, "swarm-node", engine=engine, node_id=None)
            try:
                joining.join_swarm(
                    remote_addrs=[manager],
                    join_token=token,
                    listen_addr=f"{address}:2377",
                    advertise_addr=address,
                    data_path_addr=address,
                )
            except APIError as exc:
                raise LabError(
                    f"engine {engine} could not join the swarm at {manager}: {exc.explanation or exc}\n"
                    f"the end of {engine_log(engine)}:\n" + log_tail(engine_log(engine))
                ) from None
            finally:
                with contextlib.suppress(EngineException):
                    entry["node_id"] = joining.info()["Swarm"]["NodeID"] or None
                    journal.save(self._state)
        self._wait_until_ready(timeout)

    def _wait_until_ready(self, timeout: float) -> None:
        def waiting(states: dict[int, tuple[str, str]]) -> list[int]:
            return [e for e in range(self.engines) if states.get(e, ("-", "-"))[0] != "ready"]

        engine0 = self._engines.engine(0)
        states, _ = poll(lambda: node_states(self._state, engine0), lambda states: not waiting(states), timeout=timeout)
        if waiting(states):
            raise LabError(
                f"the swarm's nodes were not all ready after {timeout:.0f}s: "
                + ", ".join(f"engine {e} {states.get(e, ('not in the swarm',))[0]}" for e in waiting(states))
            )

    # Faults.

    def partition(self, engine: int) -> None:
        """Cut engine ``engine`` off from all others, swarm control plane and overlay data plane alike.

        DROP rules on the engine's link inside its namespace: nothing in or out, established
        connections included. After about 6 s the others' gossip marks the engine failed and
        forgets its overlay endpoints; the swarm marks its node down after about 10 s.
        """
        engine = self._check_partitionable(engine)
        if engine not in self._state["partitioned"]:
            self._state["partitioned"].append(engine)
            journal.save(self._state)
        for rule, target in partition_rules(engine):
            add_rule(in_namespace(namespace(engine)), rule[0], rule, target)

    def heal(self, engine: int) -> None:
        """Undo ``partition(engine)``; nothing happens if it is not partitioned.

        Returns once the rules are gone. Traffic flows again at once after a partition shorter
        than gossip's failure detection (about 6 s); after a longer one the gossip rejoins within
        a second or two, but Docker restores the overlay's endpoints only at its next periodic
        table sync: about 30-40 s here.
        """
        engine = self._check_partitionable(engine)
        if namespace(engine) in namespaces():
            for rule, target in partition_rules(engine):
                delete_rule(in_namespace(namespace(engine)), rule, target)
        if engine in self._state["partitioned"]:
            self._state["partitioned"].remove(engine)
            journal.save(self._state)

    def _check_partitionable(self, engine: Any) -> int:
        if engine == 0 and not isinstance(engine, bool):
            raise ValueError(
                "engine=0 cannot be partitioned: it is the host's own engine, which the others are cut off from "
                f"when they are partitioned; pass 1 to {self.engines - 1}"
            )
        return _check_engine(engine, self.engines, allow_zero=False)

    # What is up.

    def status(self) -> list[EngineStatus]:
        """Each engine's process, socket and swarm node, engine 0 first."""
        try:
            nodes = node_states(self._state, self._engines.engine(0))
        except UNREACHABLE:
            nodes = {}
        ids = {e["engine"]: e["node_id"] for e in self._state["made"] if e["kind"] == "swarm-node"}
        try:
            info0 = self._engines.engine(0).info()
            running0, ids[0] = True, info0["Swarm"].get("NodeID") or None
        except UNREACHABLE:
            running0 = False
        manager = self._state["swarm"].get("manager", "-")
        found = [
            EngineStatus(
                index=0,
                url=self._state["base_url"] or os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock",
                namespace=None,
                address=manager.rpartition(":")[0] if manager != "-" else str(BRIDGE_ADDRESS),
                running=running0,
                node_id=ids.get(0),
                node_state=nodes.get(0, ("-", "-"))[0],
                role=nodes.get(0, ("-", "-"))[1],
                partitioned=False,
            )
        ]
        for engine in range(1, self.engines):
            entry = next((e for e in self._state["made"] if e["kind"] == "dockerd" and e["engine"] == engine), None)
            running = entry is not None and alive(entry["pid"]) and os.path.exists(entry["socket"])
            found.append(
                EngineStatus(
                    index=engine,
                    url=f"unix://{engine_socket(engine)}",
                    namespace=namespace(engine),
                    address=str(engine_address(engine)),
                    running=running,
                    node_id=ids.get(engine),
                    node_state=nodes.get(engine, ("-", "-"))[0],
                    role=nodes.get(engine, ("-", "-"))[1],
                    partitioned=engine in self._state["partitioned"],
                )
            )
        return found

    def describe(self) -> str:
        """What ``status`` prints."""
        if not self.complete:
            head = f"a lab of {self.engines} engines is being brought up or failed half-way (pid {self._state['pid']})"
        else:
            t = self._state["timings"]
            head = (
                f"a lab of {self.engines} engines is up (brought up in {t['total']:.1f}s: network {t['network']:.1f}s, "
                f"engines {t['engines']:.1f}s, swarm {t['swarm']:.1f}s); "
                + ("the lab made the swarm" if self.swarm_initialised else "engine 0's own swarm")
            )
        lines = [head, *(s.describe() for s in self.status())]
        if self.complete:
            lines.append(f"--dockernet-hosts={self.hosts_option}")
        return "\n".join(lines)

    # Removal.

    def down(self) -> None:
        """Remove everything the lab made; the state file goes last. Safe to call again. Engine 0
        leaves the lab's swarm only if that breaks no one's names (``swarm_left`` says what it did)."""
        check_host()
        with self._engine0_gate():
            self._tear_down()
        self.close()

    def _tear_down(self) -> None:
        errors = []
        for engine in list(self._state["partitioned"]):
            try:
                self.heal(engine)
            except LabError as exc:
                errors.append(str(exc))
        made = [entry for entry in self._state["made"] if entry["kind"] == "swarm-init"]
        errors += journal.undo_all(self._state, self._engines, keep_state_file=bool(errors))
        self.swarm_left = journal.swarm_outcome(made)
        if errors:
            raise LabError("the lab could not be removed completely:\n  " + "\n  ".join(errors))


def node_states(state: dict[str, Any], engine0: DockerEngine) -> dict[int, tuple[str, str]]:
    """Engine index -> (state, role) of its swarm node, as engine 0 (the manager) sees it."""
    ids = {e["node_id"]: e["engine"] for e in state["made"] if e["kind"] == "swarm-node" and e["node_id"]}
    info = engine0.info()["Swarm"]
    if info.get("NodeID"):
        ids[info["NodeID"]] = 0
    if not info.get("ControlAvailable"):
        return {}
    found = {}
    for node in engine0.nodes():
        if node["ID"] in ids:
            found[ids[node["ID"]]] = (node["Status"]["State"], node["Spec"]["Role"])
    return found


def _check_engine_here(base_url: str | None) -> None:
    """The lab's engines join engine 0's host (network namespaces, veths, a bridge): engine 0
    must run on this machine, in this process's network namespace."""
    engine = connect(base_url)
    try:
        info = read_info(engine)
    finally:
        engine.close()
    if not (info.shares_host and info.shares_network):
        raise LabError(
            f"the lab needs root on engine 0's own host, and {info.describe()} at {info.url} is not there: "
            f"{info.host_reason}"
        )
