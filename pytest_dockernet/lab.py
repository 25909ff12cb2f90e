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
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import docker.errors

LAB_DIR = Path("/run/pytest-dockernet-lab")
STATE_FILE = LAB_DIR / "state.json"
NETNS_DIR = Path("/var/run/netns")
PREFIX = "dnlab"
BRIDGE = f"{PREFIX}-br"
LINK = ipaddress.IPv4Network("198.18.213.0/24")
BRIDGE_ADDRESS = LINK[1]  # engine 0 advertises here
MAX_ENGINES = 8
RULE_COMMENT = "pytest-dockernet-lab"
START_TIMEOUT = 60.0
LOG_TAIL = 30
STATE_VERSION = 1
# What the lab's commands need, and where Debian has them.
TOOLS = {
    "ip": "iproute2",
    "nsenter": "util-linux",
    "unshare": "util-linux",
    "iptables": "iptables",
    "dockerd": "docker.io",
}


class LabError(Exception):
    """The lab could not be brought up, taken down or changed; the message says why."""


def namespace(engine: int) -> str:
    return f"{PREFIX}{engine}"


def host_veth(engine: int) -> str:
    return f"{PREFIX}{engine}-h"


def namespace_veth(engine: int) -> str:
    return f"{PREFIX}{engine}-n"


def engine_address(engine: int) -> ipaddress.IPv4Address:
    return LINK[10 + engine]


def engine_bip(engine: int) -> ipaddress.IPv4Interface:
    """Engine I's docker0 range: 198.18.(213+I).1/24, beside the link and outside Docker's
    default pools (172.17-31/16, 192.168/16) and the plugin's (10.213/16)."""
    return ipaddress.IPv4Interface(f"{LINK.network_address + 256 * engine + 1}/24")


def engine_dir(engine: int) -> Path:
    return LAB_DIR / f"engine{engine}"


def engine_socket(engine: int) -> Path:
    return LAB_DIR / f"engine{engine}.sock"


def engine_log(engine: int) -> Path:
    return LAB_DIR / f"engine{engine}.log"


def _check_engines(engines: Any) -> int:
    if isinstance(engines, bool) or not isinstance(engines, int):
        raise ValueError(f"engines={engines!r} is not an int: pass the number of engines, engine 0 included, e.g. 3")
    if engines < 2:
        raise ValueError(
            f"engines={engines} is too few: the lab is engine 0 plus at least one more; pass engines=2 or more"
        )
    if engines > MAX_ENGINES:
        raise ValueError(f"engines={engines} is too many for one machine: pass engines=2 to {MAX_ENGINES}")
    return engines


# --- commands --------------------------------------------------------------------------


def _run(*command: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    except FileNotFoundError:
        raise LabError(f"{command[0]} is not installed (Debian: {TOOLS.get(command[0], command[0])})") from None
    except subprocess.TimeoutExpired:
        raise LabError(f"`{shlex.join(command)}` did not finish in {timeout:.0f}s") from None
    if check and done.returncode != 0:
        raise LabError(f"`{shlex.join(command)}` failed (exit {done.returncode}): {done.stderr.strip()}")
    return done


def _in_namespace(name: str, *command: str) -> tuple[str, ...]:
    # nsenter, not `ip netns exec`: that remounts /sys, and dockerd then finds no devices cgroup.
    return ("nsenter", f"--net={NETNS_DIR / name}", *command)


def _iptables_rule(chain: str, *match: str) -> tuple[str, ...]:
    return (chain, *match, "-m", "comment", "--comment", RULE_COMMENT)


def _add_rule(table_prefix: tuple[str, ...], chain: str, rule: tuple[str, ...], target: str) -> None:
    """Insert the rule at the top of ``chain`` unless it is there already."""
    iptables = (*table_prefix, "iptables", "-w")
    if _run(*iptables, "-C", *rule, "-j", target, check=False).returncode != 0:
        _run(*iptables, "-I", chain, "1", *rule[1:], "-j", target)


def _delete_rule(table_prefix: tuple[str, ...], rule: tuple[str, ...], target: str) -> None:
    iptables = (*table_prefix, "iptables", "-w")
    while _run(*iptables, "-C", *rule, "-j", target, check=False).returncode == 0:
        _run(*iptables, "-D", *rule, "-j", target)


def _forward_rule() -> tuple[str, ...]:
    # Docker sets the host's FORWARD policy to DROP, and with br_netfilter bridged frames
    # between two veths of dnlab-br go through FORWARD too.
    return _iptables_rule("FORWARD", "-i", BRIDGE, "-o", BRIDGE)


def _partition_rules(engine: int) -> list[tuple[tuple[str, ...], str]]:
    link = namespace_veth(engine)
    return [
        (_iptables_rule("INPUT", "-i", link), "DROP"),
        (_iptables_rule("OUTPUT", "-o", link), "DROP"),
    ]


def _links() -> set[str]:
    return {link["ifname"] for link in json.loads(_run("ip", "-j", "link", "show").stdout or "[]")}


def _namespaces() -> set[str]:
    return {line.split()[0] for line in _run("ip", "netns", "list").stdout.splitlines() if line.strip()}


def _host_routes() -> list[tuple[ipaddress.IPv4Network, str]]:
    """Every IPv4 destination the host routes (all tables) or owns, with how ``ip`` shows it."""
    found = []
    for route in json.loads(_run("ip", "-j", "-4", "route", "show", "table", "all").stdout or "[]"):
        dst = route.get("dst", "")
        if dst in ("", "default") or dst.startswith("0.0.0.0/0"):
            continue
        with contextlib.suppress(ValueError):
            found.append((ipaddress.IPv4Network(dst, strict=False), f"{dst} dev {route.get('dev', '?')}"))
    for link in json.loads(_run("ip", "-j", "-4", "addr", "show").stdout or "[]"):
        for addr in link.get("addr_info", []):
            interface = ipaddress.IPv4Interface(f"{addr['local']}/{addr['prefixlen']}")
            found.append((interface.network, f"{interface} on {link['ifname']}"))
    return found


def _host_addresses() -> set[ipaddress.IPv4Address]:
    found = set()
    for link in json.loads(_run("ip", "-j", "-4", "addr", "show").stdout or "[]"):
        for addr in link.get("addr_info", []):
            found.add(ipaddress.IPv4Address(addr["local"]))
    return found


# --- processes -------------------------------------------------------------------------

_children: dict[int, subprocess.Popen] = {}  # dockerds this process started, to reap them


def _cmdline(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return [part.decode(errors="replace") for part in f.read().split(b"\0") if part]
    except OSError:
        return []


def _alive(pid: int) -> bool:
    child = _children.get(pid)
    if child is not None:
        return child.poll() is None
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rpartition(")")[2].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def _is_lab_dockerd(pid: int, socket: str) -> bool:
    """The pid is still the dockerd the lab started (not a new process that reuses the pid)."""
    cmdline = _cmdline(pid)
    return bool(cmdline) and os.path.basename(cmdline[0]) == "dockerd" and f"--host=unix://{socket}" in cmdline


def _processes_under(directory: str) -> list[int]:
    """Processes whose command line names a path in ``directory`` (an engine's containerd and
    shims), with their descendants (the containers' processes)."""
    parents: dict[int, int] = {}
    roots = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        pid = int(entry)
        try:
            with open(f"/proc/{pid}/stat") as f:
                parents[pid] = int(f.read().rpartition(")")[2].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        if pid != os.getpid() and any(directory.rstrip("/") + "/" in part for part in _cmdline(pid)):
            roots.append(pid)
    found, todo = set(), list(roots)
    while todo:
        pid = todo.pop()
        if pid not in found:
            found.add(pid)
            todo += [child for child, parent in parents.items() if parent == pid]
    return sorted(found)


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while _alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    child = _children.pop(pid, None)
    if child is not None:
        child.wait()
    return True


def _log_tail(path: Path, lines: int = LOG_TAIL) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()[-lines:]
    except OSError:
        return f"(no log at {path})"
    return "\n".join("    " + line for line in text)


def _unmount_under(directory: Path) -> None:
    prefix = str(directory) + "/"
    with open("/proc/self/mountinfo") as f:
        points = [line.split()[4] for line in f]
    for point in sorted((p for p in points if p.startswith(prefix)), key=len, reverse=True):
        _run("umount", "-l", point, check=False)


# --- the lab ---------------------------------------------------------------------------


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


class Lab:
    """A running lab, as recorded in the state file.

    ``Lab.up(3)`` brings one up (or returns the running one if it has 3 engines), ``Lab.load()``
    finds the running one from any process, ``lab.down()`` removes it.
    """

    def __init__(self, state: dict[str, Any], *, reused: bool = False):
        self._state = state
        self._clients: dict[int, docker.DockerClient] = {}
        self.reused = reused  # up() found this lab running and returned it

    # The state: "made" lists what was made, in order, each entry noted before it is made.

    def _save(self) -> None:
        LAB_DIR.mkdir(mode=0o755, parents=True, exist_ok=True)
        tmp = STATE_FILE.with_suffix(".tmp")
        tmp.write_text(json.dumps(self._state, indent=2) + "\n")
        os.replace(tmp, STATE_FILE)

    def _note(self, kind: str, **details: Any) -> dict[str, Any]:
        entry = {"kind": kind, **details}
        self._state["made"].append(entry)
        self._save()
        return entry

    @classmethod
    def load(cls) -> Lab | None:
        """The lab recorded in the state file, or None when no lab is up."""
        try:
            state = json.loads(STATE_FILE.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise LabError(f"cannot read the lab's state file {STATE_FILE}: {exc}") from None
        if state.get("version") != STATE_VERSION:
            raise LabError(f"{STATE_FILE} was written by another version of pytest-dockernet; remove it by hand")
        return cls(state)

    # What callers read.

    @property
    def engines(self) -> int:
        """How many engines, engine 0 included."""
        return self._state["engines"]

    @property
    def complete(self) -> bool:
        """False while ``up`` runs, and after an ``up`` that failed and could not clean up."""
        return self._state["complete"]

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

    def _check_engine(self, engine: Any, *, allow_zero: bool = True) -> int:
        low = 0 if allow_zero else 1
        if isinstance(engine, bool) or not isinstance(engine, int) or not low <= engine < self.engines:
            raise ValueError(f"engine={engine!r} is not an engine of this lab: pass {low} to {self.engines - 1}")
        return engine

    def client(self, engine: int) -> docker.DockerClient:
        """A client of engine ``engine``; 0 is the environment's engine."""
        engine = self._check_engine(engine)
        if engine not in self._clients:
            if engine == 0:
                base_url = self._state["base_url"]
                self._clients[0] = docker.DockerClient(base_url=base_url) if base_url else docker.from_env()
            else:
                self._clients[engine] = docker.DockerClient(base_url=f"unix://{engine_socket(engine)}", timeout=60)
        return self._clients[engine]

    def close(self) -> None:
        """Close the clients this object opened (the lab keeps running)."""
        for client in self._clients.values():
            client.close()
        self._clients.clear()

    # Bring-up.

    @classmethod
    def up(cls, engines: int = 3, *, base_url: str | None = None, timeout: float = START_TIMEOUT) -> Lab:
        """Start engines 1..engines-1 and join them and engine 0 into one swarm.

        A lab that is up already is returned (healed of partitions, ``reused`` set) when it has
        as many engines on the same engine 0; otherwise this raises LabError: take it down first.
        """
        _check_engines(engines)
        _check_host()
        existing = cls.load()
        if existing is not None:
            return existing._reuse(engines, base_url, timeout)
        _check_leftovers()
        lab = cls(
            {
                "version": STATE_VERSION,
                "engines": engines,
                "base_url": base_url,
                "complete": False,
                "pid": os.getpid(),
                "made": [],
                "partitioned": [],
                "timings": {},
                "swarm": {},
            }
        )
        # Swarm init and join change engine 0's networking under everyone using it: hold its
        # gate, as a network removal does (see pytest_dockernet.gate).
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

    def _engine0_gate(self):
        from .gate import gate_for

        return gate_for(self.client(0)).removing()

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
            swarm = self.client(0).info()["Swarm"]
        except docker.errors.DockerException as exc:
            raise LabError(f"engine 0 is not available: {exc}") from None
        manager = self._plan_swarm(swarm)
        self._note("dir", path=str(LAB_DIR))
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
        self._save()

    def _plan_swarm(self, swarm: dict[str, Any]) -> str | None:
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
        if host.version != 4 or host.is_loopback or (host not in LINK and host not in _host_addresses()):
            raise LabError(
                f"engine 0 is a swarm manager at {addr}, which the lab's engines cannot reach: it must be an IPv4 "
                "address of this host other than loopback (re-create the swarm with --advertise-addr set to one)"
            )
        return addr

    def _make_network(self, manager: str | None) -> None:
        self._note("bridge", name=BRIDGE)
        _run("ip", "link", "add", BRIDGE, "type", "bridge")
        _run("ip", "addr", "add", f"{BRIDGE_ADDRESS}/{LINK.prefixlen}", "dev", BRIDGE)
        _run("ip", "link", "set", BRIDGE, "up")
        self._note("forward-rule")
        _add_rule((), "FORWARD", _forward_rule(), "ACCEPT")
        manager_host = manager.rpartition(":")[0] if manager else None
        for engine in range(1, self.engines):
            name, outside, inside = namespace(engine), host_veth(engine), namespace_veth(engine)
            self._note("netns", name=name)
            _run("ip", "netns", "add", name)
            self._note("veth", name=outside)
            _run("ip", "link", "add", outside, "type", "veth", "peer", "name", inside, "netns", name)
            _run("ip", "link", "set", outside, "master", BRIDGE, "up")
            _run(*_in_namespace(name, "ip", "addr", "add", f"{engine_address(engine)}/{LINK.prefixlen}", "dev", inside))
            _run(*_in_namespace(name, "ip", "link", "set", inside, "up"))
            _run(*_in_namespace(name, "ip", "link", "set", "lo", "up"))
            if manager_host and ipaddress.ip_address(manager_host) not in LINK:
                # No default route: the namespaces reach the lab and nothing beyond.
                _run(*_in_namespace(name, "ip", "route", "add", f"{manager_host}/32", "via", str(BRIDGE_ADDRESS)))

    def _start_engine(self, engine: int) -> None:
        directory, socket, log = engine_dir(engine), engine_socket(engine), engine_log(engine)
        self._note("engine-dir", path=str(directory))
        directory.mkdir(mode=0o711)
        config = directory / "daemon.json"
        config.write_text("{}\n")  # not /etc/docker/daemon.json, which is engine 0's
        name = namespace(engine)
        command = [
            *_in_namespace(name),
            # Its own host name, so the swarm's nodes tell the engines apart (node.hostname==dnlab1).
            *("unshare", "--uts", "--", "sh", "-c", 'hostname "$0" && exec "$@"', name),
            "dockerd",
            f"--config-file={config}",
            f"--data-root={directory / 'data'}",
            f"--exec-root={directory / 'exec'}",
            f"--host=unix://{socket}",
            f"--pidfile={directory / 'dockerd.pid'}",
            f"--bip={engine_bip(engine)}",
            # Without --containerd, dockerd starts its own containerd under its exec root unless
            # a system containerd runs at /run/containerd/containerd.sock; should one run, its
            # own namespaces keep this engine's containers apart from engine 0's.
            f"--containerd-namespace={name}",
            f"--containerd-plugins-namespace={name}-plugins",
            "--shutdown-timeout=2",
            f"--label=pytest-dockernet.lab={name}",
        ]
        with open(log, "ab") as out:
            proc = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        _children[proc.pid] = proc
        # nsenter, unshare and sh exec, so this pid is dockerd's.
        self._note("dockerd", engine=engine, pid=proc.pid, socket=str(socket), dir=str(directory))

    def _wait_for_engine(self, engine: int, timeout: float) -> None:
        entry = self._dockerd(engine)
        deadline = time.monotonic() + timeout
        while True:
            if not _alive(entry["pid"]):
                raise LabError(
                    f"engine {engine}'s dockerd exited; the end of {engine_log(engine)}:\n"
                    + _log_tail(engine_log(engine))
                )
            try:
                self.client(engine).ping()  # the client asks the API version when it is made
                return
            except (docker.errors.DockerException, OSError):
                pass
            if time.monotonic() > deadline:
                raise LabError(
                    f"engine {engine} did not answer on {engine_socket(engine)} within {timeout:.0f}s; "
                    f"the end of {engine_log(engine)}:\n" + _log_tail(engine_log(engine))
                )
            time.sleep(0.1)

    def _dockerd(self, engine: int) -> dict[str, Any]:
        return next(e for e in self._state["made"] if e["kind"] == "dockerd" and e["engine"] == engine)

    def _make_swarm(self, manager: str | None, timeout: float) -> None:
        client0 = self.client(0)
        if manager is None:
            address = str(BRIDGE_ADDRESS)
            self._note("swarm-init", gwbridge_existed=_has_network(client0, "docker_gwbridge"))
            try:
                client0.swarm.init(advertise_addr=address, listen_addr=f"{address}:2377", data_path_addr=address)
            except docker.errors.APIError as exc:
                raise LabError(f"engine 0 could not start a swarm at {address}: {exc.explanation or exc}") from None
            manager = f"{address}:2377"
        client0.swarm.reload()
        token = client0.swarm.attrs["JoinTokens"]["Worker"]
        self._state["swarm"] = {"manager": manager}
        for engine in range(1, self.engines):
            address = str(engine_address(engine))
            client = self.client(engine)
            entry = self._note("swarm-node", engine=engine, node_id=None)
            try:
                client.swarm.join(
                    remote_addrs=[manager],
                    join_token=token,
                    listen_addr=f"{address}:2377",
                    advertise_addr=address,
                    data_path_addr=address,
                )
            except docker.errors.APIError as exc:
                raise LabError(
                    f"engine {engine} could not join the swarm at {manager}: {exc.explanation or exc}\n"
                    f"the end of {engine_log(engine)}:\n" + _log_tail(engine_log(engine))
                ) from None
            finally:
                with contextlib.suppress(docker.errors.DockerException):
                    entry["node_id"] = client.info()["Swarm"]["NodeID"] or None
                    self._save()
        self._wait_until_ready(timeout)

    def _wait_until_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            states = self._node_states()
            waiting = [e for e in range(self.engines) if states.get(e, ("-", "-"))[0] != "ready"]
            if not waiting:
                return
            if time.monotonic() > deadline:
                raise LabError(
                    f"the swarm's nodes were not all ready after {timeout:.0f}s: "
                    + ", ".join(f"engine {e} {states.get(e, ('not in the swarm',))[0]}" for e in waiting)
                )
            time.sleep(0.2)

    def _node_states(self) -> dict[int, tuple[str, str]]:
        """Engine index -> (state, role) of its swarm node, as engine 0 (the manager) sees it."""
        ids = {e["node_id"]: e["engine"] for e in self._state["made"] if e["kind"] == "swarm-node" and e["node_id"]}
        client0 = self.client(0)
        info = client0.info()["Swarm"]
        if info.get("NodeID"):
            ids[info["NodeID"]] = 0
        if not info.get("ControlAvailable"):
            return {}
        found = {}
        for node in client0.api.nodes():
            if node["ID"] in ids:
                found[ids[node["ID"]]] = (node["Status"]["State"], node["Spec"]["Role"])
        return found

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
            self._save()
        for rule, target in _partition_rules(engine):
            _add_rule(_in_namespace(namespace(engine)), rule[0], rule, target)

    def heal(self, engine: int) -> None:
        """Undo ``partition(engine)``; nothing happens if it is not partitioned.

        Returns once the rules are gone. Traffic flows again at once after a partition shorter
        than gossip's failure detection (about 6 s); after a longer one the gossip rejoins within
        a second or two, but Docker restores the overlay's endpoints only at its next periodic
        table sync: about 30-40 s here.
        """
        engine = self._check_partitionable(engine)
        if namespace(engine) in _namespaces():
            for rule, target in _partition_rules(engine):
                _delete_rule(_in_namespace(namespace(engine)), rule, target)
        if engine in self._state["partitioned"]:
            self._state["partitioned"].remove(engine)
            self._save()

    def _check_partitionable(self, engine: Any) -> int:
        if engine == 0 and not isinstance(engine, bool):
            raise ValueError(
                "engine=0 cannot be partitioned: it is the host's own engine, which the others are cut off from "
                f"when they are partitioned; pass 1 to {self.engines - 1}"
            )
        return self._check_engine(engine, allow_zero=False)

    # What is up.

    def status(self) -> list[EngineStatus]:
        """Each engine's process, socket and swarm node, engine 0 first."""
        try:
            nodes = self._node_states()
        except docker.errors.DockerException:
            nodes = {}
        ids = {e["engine"]: e["node_id"] for e in self._state["made"] if e["kind"] == "swarm-node"}
        try:
            info0 = self.client(0).info()
            running0, ids[0] = True, info0["Swarm"].get("NodeID") or None
        except docker.errors.DockerException:
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
            running = entry is not None and _alive(entry["pid"]) and os.path.exists(entry["socket"])
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
        """Remove everything the lab made; the state file goes last. Safe to call again."""
        _check_host()
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
        remaining = []
        # The engines stop first (together, in about 2 s); their nodes are then down, and the
        # manager removes them at once. The rest goes in the reverse order of its making.
        made = list(reversed(self._state["made"]))
        first = {"dockerd": 0, "swarm-node": 1, "swarm-init": 2}
        made.sort(key=lambda entry: first.get(entry["kind"], len(first)))
        for entry in made:
            if entry["kind"] == "dir" and (errors or remaining):
                remaining.append(entry)  # keep the state file for another try
                continue
            try:
                self._remove(entry)
            except (LabError, OSError, docker.errors.DockerException) as exc:
                errors.append(f"{entry['kind']} {entry}: {exc}")
                remaining.append(entry)
        self._state["made"] = [entry for entry in self._state["made"] if entry in remaining]
        if remaining:
            self._save()
        if errors:
            raise LabError("the lab could not be removed completely:\n  " + "\n  ".join(errors))

    def _remove(self, entry: dict[str, Any]) -> None:
        kind = entry["kind"]
        if kind == "swarm-node":
            self._leave(entry["engine"], entry["node_id"])
        elif kind == "swarm-init":
            client0 = self.client(0)
            with contextlib.suppress(docker.errors.APIError):  # 503: not part of a swarm
                client0.swarm.leave(force=True)
            if not entry["gwbridge_existed"]:
                _remove_network_if_unused(client0, "docker_gwbridge")
        elif kind == "dockerd":
            # All at once, their containers killed first: a dockerd stopping gives each running
            # container its stop timeout (10 s unless set), and nothing of theirs is kept anyway.
            for other in self._state["made"]:
                if other["kind"] == "dockerd" and _is_lab_dockerd(other["pid"], other["socket"]):
                    self._kill_containers(other["engine"])
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(other["pid"], signal.SIGTERM)
            client = self._clients.pop(entry["engine"], None)
            if client is not None:
                client.close()
            _stop_dockerd(entry["pid"], entry["socket"], entry["dir"])
        elif kind == "engine-dir":
            path = Path(entry["path"])
            _unmount_under(path)
            if path.exists():
                shutil.rmtree(path)
        elif kind == "netns":
            if entry["name"] in _namespaces():
                _run("ip", "netns", "del", entry["name"])
        elif kind in ("veth", "bridge"):
            if entry["name"] in _links():
                _run("ip", "link", "del", entry["name"])
        elif kind == "forward-rule":
            _delete_rule((), _forward_rule(), "ACCEPT")
        elif kind == "dir":
            path = Path(entry["path"])
            _unmount_under(path)
            if path.exists():
                shutil.rmtree(path)

    def _kill_containers(self, engine: int) -> None:
        with contextlib.suppress(docker.errors.DockerException, OSError):
            api = self.client(engine).api
            for container in api.containers():
                with contextlib.suppress(docker.errors.APIError):
                    api.kill(container["Id"])

    def _leave(self, engine: int, node_id: str | None) -> None:
        # The manager removes the node; the engine itself forgets the swarm with its data root.
        client0 = self.client(0)
        if not client0.info()["Swarm"].get("ControlAvailable"):
            return  # no swarm (or not a manager of it) any more: nothing to remove
        label = f"pytest-dockernet.lab={namespace(engine)}"
        ids = {node_id} if node_id else set()
        # A join that failed half-way may have left a node the lab has no id of: its engine label tells.
        ids |= {n["ID"] for n in client0.api.nodes() if label in _engine_labels(n)}
        for node in ids:
            try:
                client0.api.remove_node(node, force=True)
            except docker.errors.NotFound:
                pass
            except docker.errors.APIError as exc:
                raise LabError(f"engine 0 could not remove engine {engine}'s node {node}: {exc}") from None


def _engine_labels(node: dict[str, Any]) -> list[str]:
    labels = node.get("Description", {}).get("Engine", {}).get("Labels") or {}
    return [f"{key}={value}" for key, value in labels.items()]


def _has_network(client: docker.DockerClient, name: str) -> bool:
    return any(n["Name"] == name for n in client.api.networks(names=[name]))


def _remove_network_if_unused(client: docker.DockerClient, name: str) -> None:
    for network in client.api.networks(names=[name]):
        if network["Name"] == name and not client.api.inspect_network(network["Id"]).get("Containers"):
            with contextlib.suppress(docker.errors.APIError):
                client.api.remove_network(network["Id"])


def _stop_dockerd(pid: int, socket: str, directory: str) -> None:
    if _is_lab_dockerd(pid, socket) and _alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        if not _wait_gone(pid, 30):
            os.kill(pid, signal.SIGKILL)
            _wait_gone(pid, 10)
    else:
        _children.pop(pid, None)
    # What a dockerd killed (or crashed) leaves: its containerd, the shims, their containers.
    for straggler in _processes_under(directory):
        with contextlib.suppress(ProcessLookupError):
            os.kill(straggler, signal.SIGKILL)


def _check_host() -> None:
    if not sys.platform.startswith("linux"):
        raise LabError(f"the lab needs Linux (network namespaces, veth, iptables); this is {sys.platform}")
    if os.geteuid() != 0:
        raise LabError(
            "the lab needs root on Linux: it makes network namespaces, links, iptables rules and starts dockerd "
            "(run it with sudo, or as root in CI)"
        )
    missing = [f"{tool} (Debian: {package})" for tool, package in TOOLS.items() if shutil.which(tool) is None]
    if missing:
        raise LabError("the lab needs these commands, which are not on PATH: " + ", ".join(missing))


def _check_leftovers() -> None:
    """Refuse to start over things with the lab's names that no state file accounts for."""
    how = "remove them by hand"
    links = sorted(name for name in _links() if name.startswith(PREFIX))
    spaces = sorted(name for name in _namespaces() if name.startswith(PREFIX))
    found = [f"link {name} (ip link del {name})" for name in links]
    found += [f"network namespace {name} (ip netns del {name})" for name in spaces]
    if LAB_DIR.exists() and any(LAB_DIR.iterdir()):
        found.append(f"directory {LAB_DIR} (stop the dockerds whose sockets are in it, then rm -r it)")
    if found:
        raise LabError(
            f"the host has lab resources that no state file ({STATE_FILE}) accounts for; {how}:\n  "
            + "\n  ".join(found)
        )
    wanted = [("the lab's link", LINK)] + [
        (f"engine {i}'s docker0", engine_bip(i).network) for i in range(1, MAX_ENGINES)
    ]
    for what, network in wanted:
        for taken, shown in _host_routes():
            if taken.overlaps(network):
                raise LabError(
                    f"{network} ({what}) overlaps the host's {shown}; the lab needs {LINK} and "
                    f"{engine_bip(1).network}..{engine_bip(MAX_ENGINES - 1).network} free"
                )


def copy_image(src_client: docker.DockerClient, dst_client: docker.DockerClient, tag: str) -> bool:
    """Make image ``tag`` of ``src_client``'s engine present on ``dst_client``'s (docker save | docker load).

    Returns False when the destination had it already, True when it was copied.
    """
    try:
        dst_client.api.inspect_image(tag)
        return False
    except docker.errors.ImageNotFound:
        pass
    try:
        src_client.api.inspect_image(tag)
    except docker.errors.ImageNotFound:
        raise ValueError(f"tag={tag!r} is not an image of the source engine: build or pull it there first") from None
    dst_client.api.load_image(src_client.api.get_image(tag))  # streamed, not held in memory
    dst_client.api.inspect_image(tag)  # raises if the load did not produce it
    return True


# --- CLI -------------------------------------------------------------------------------


@contextlib.contextmanager
def _reported() -> Iterator[None]:
    try:
        yield
    except (LabError, ValueError) as exc:
        print(f"pytest-dockernet lab: {exc}", file=sys.stderr)
        raise SystemExit(2 if isinstance(exc, ValueError) else 1) from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pytest_dockernet.lab",
        description="A multi-host Docker lab on this machine: extra engines in network namespaces, "
        "one swarm with the environment's engine (engine 0) as manager. Needs root.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="{up,down,status}")
    up = commands.add_parser("up", help="start the engines and the swarm; print the --dockernet-hosts value")
    up.add_argument("--engines", type=int, default=3, help="engines in all, engine 0 included (default 3)")
    up.add_argument("--base-url", help="engine 0 (default: DOCKER_HOST or the default socket)")
    commands.add_parser("down", help="remove everything the lab made")
    commands.add_parser("status", help="say what is up")
    args = parser.parse_args(argv)
    with _reported():
        if args.command == "up":
            lab = Lab.up(args.engines, base_url=args.base_url)
            if lab.reused:
                print(f"a lab of {lab.engines} engines was up already; reusing it", file=sys.stderr)
            else:
                t = lab.timings
                print(
                    f"lab of {lab.engines} engines up in {t['total']:.1f}s (network {t['network']:.1f}s, "
                    f"engines {t['engines']:.1f}s, swarm {t['swarm']:.1f}s)",
                    file=sys.stderr,
                )
            print(lab.hosts_option)
        elif args.command == "down":
            lab = Lab.load()
            if lab is None:
                print("no lab is up", file=sys.stderr)
            else:
                lab.down()
                print(f"lab of {lab.engines} engines removed", file=sys.stderr)
        else:
            try:
                lab = Lab.load()
            except LabError as exc:
                print(f"the lab's state is unreadable: {exc}")
                return 0
            print(lab.describe() if lab is not None else "no lab is up")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
