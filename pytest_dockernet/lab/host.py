"""This machine, as the lab changes it: the lab's names and addresses, and the commands and
processes that make and remove its links, namespaces, iptables rules and dockerds. Kept
apart from the lab's bookkeeping so that everything here is about the host alone: it writes
no state file and holds no Docker client, and the rest of the lab reaches the host only through it.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from ..errors import LabError
from ..retry import poll

# --- names and addresses ---------------------------------------------------------------

LAB_DIR = Path("/run/pytest-dockernet-lab")
STATE_FILE = LAB_DIR / "state.json"
NETNS_DIR = Path("/var/run/netns")
PREFIX = "dnlab"
BRIDGE = f"{PREFIX}-br"
LINK = ipaddress.IPv4Network("198.18.213.0/24")
BRIDGE_ADDRESS = LINK[1]  # engine 0 advertises here
MAX_ENGINES = 8
RULE_COMMENT = "pytest-dockernet-lab"
LOG_TAIL = 30
# What the lab's commands need, and where Debian has them.
TOOLS = {
    "ip": "iproute2",
    "nsenter": "util-linux",
    "unshare": "util-linux",
    "iptables": "iptables",
    "dockerd": "docker.io",
}


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


# --- commands --------------------------------------------------------------------------


def run(*command: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    except FileNotFoundError:
        raise LabError(f"{command[0]} is not installed (Debian: {TOOLS.get(command[0], command[0])})") from None
    except subprocess.TimeoutExpired:
        raise LabError(f"`{shlex.join(command)}` did not finish in {timeout:.0f}s") from None
    if check and done.returncode != 0:
        raise LabError(f"`{shlex.join(command)}` failed (exit {done.returncode}): {done.stderr.strip()}")
    return done


def in_namespace(name: str, *command: str) -> tuple[str, ...]:
    # nsenter, not `ip netns exec`: that remounts /sys, and dockerd then finds no devices cgroup.
    return ("nsenter", f"--net={NETNS_DIR / name}", *command)


def _iptables_rule(chain: str, *match: str) -> tuple[str, ...]:
    return (chain, *match, "-m", "comment", "--comment", RULE_COMMENT)


def add_rule(table_prefix: tuple[str, ...], chain: str, rule: tuple[str, ...], target: str) -> None:
    """Insert the rule at the top of ``chain`` unless it is there already."""
    iptables = (*table_prefix, "iptables", "-w")
    if run(*iptables, "-C", *rule, "-j", target, check=False).returncode != 0:
        run(*iptables, "-I", chain, "1", *rule[1:], "-j", target)


def delete_rule(table_prefix: tuple[str, ...], rule: tuple[str, ...], target: str) -> None:
    iptables = (*table_prefix, "iptables", "-w")
    while run(*iptables, "-C", *rule, "-j", target, check=False).returncode == 0:
        run(*iptables, "-D", *rule, "-j", target)


def forward_rule() -> tuple[str, ...]:
    # Docker sets the host's FORWARD policy to DROP, and with br_netfilter bridged frames
    # between two veths of dnlab-br go through FORWARD too.
    return _iptables_rule("FORWARD", "-i", BRIDGE, "-o", BRIDGE)


def partition_rules(engine: int) -> list[tuple[tuple[str, ...], str]]:
    link = namespace_veth(engine)
    return [
        (_iptables_rule("INPUT", "-i", link), "DROP"),
        (_iptables_rule("OUTPUT", "-o", link), "DROP"),
    ]


def links() -> set[str]:
    return {link["ifname"] for link in json.loads(run("ip", "-j", "link", "show").stdout or "[]")}


def namespaces() -> set[str]:
    return {line.split()[0] for line in run("ip", "netns", "list").stdout.splitlines() if line.strip()}


def _host_routes() -> list[tuple[ipaddress.IPv4Network, str]]:
    """Every IPv4 destination the host routes (all tables) or owns, with how ``ip`` shows it."""
    found = []
    for route in json.loads(run("ip", "-j", "-4", "route", "show", "table", "all").stdout or "[]"):
        dst = route.get("dst", "")
        if dst in ("", "default") or dst.startswith("0.0.0.0/0"):
            continue
        with contextlib.suppress(ValueError):
            found.append((ipaddress.IPv4Network(dst, strict=False), f"{dst} dev {route.get('dev', '?')}"))
    for link in json.loads(run("ip", "-j", "-4", "addr", "show").stdout or "[]"):
        for addr in link.get("addr_info", []):
            interface = ipaddress.IPv4Interface(f"{addr['local']}/{addr['prefixlen']}")
            found.append((interface.network, f"{interface} on {link['ifname']}"))
    return found


def host_addresses() -> set[ipaddress.IPv4Address]:
    found = set()
    for link in json.loads(run("ip", "-j", "-4", "addr", "show").stdout or "[]"):
        for addr in link.get("addr_info", []):
            found.add(ipaddress.IPv4Address(addr["local"]))
    return found


# --- processes -------------------------------------------------------------------------

_children: dict[int, subprocess.Popen[bytes]] = {}  # dockerds this process started, to reap them


def dockerd_command(engine: int) -> list[str]:
    """The command that runs engine ``engine``'s dockerd in its namespace, on its own directories."""
    directory, name = engine_dir(engine), namespace(engine)
    return [
        *in_namespace(name),
        # Its own host name, so the swarm's nodes tell the engines apart (node.hostname==dnlab1).
        *("unshare", "--uts", "--", "sh", "-c", 'hostname "$0" && exec "$@"', name),
        "dockerd",
        f"--config-file={directory / 'daemon.json'}",
        f"--data-root={directory / 'data'}",
        f"--exec-root={directory / 'exec'}",
        f"--host=unix://{engine_socket(engine)}",
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


def spawn(command: list[str], log: Path) -> int:
    """Start ``command`` in a session of its own, its output appended to ``log``; its pid."""
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    _children[proc.pid] = proc
    return proc.pid


def _cmdline(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return [part.decode(errors="replace") for part in f.read().split(b"\0") if part]
    except OSError:
        return []


def alive(pid: int) -> bool:
    child = _children.get(pid)
    if child is not None:
        return child.poll() is None
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rpartition(")")[2].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def is_lab_dockerd(pid: int, socket: str) -> bool:
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
    gone, _ = poll(lambda: not alive(pid), bool, timeout=timeout, interval=0.1)
    if not gone:
        return False
    child = _children.pop(pid, None)
    if child is not None:
        child.wait()
    return True


def log_tail(path: Path, lines: int = LOG_TAIL) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()[-lines:]
    except OSError:
        return f"(no log at {path})"
    return "\n".join("    " + line for line in text)


def unmount_under(directory: Path) -> None:
    prefix = str(directory) + "/"
    with open("/proc/self/mountinfo") as f:
        points = [line.split()[4] for line in f]
    for point in sorted((p for p in points if p.startswith(prefix)), key=len, reverse=True):
        run("umount", "-l", point, check=False)


def stop_dockerd(pid: int, socket: str, directory: str) -> None:
    if is_lab_dockerd(pid, socket) and alive(pid):
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


# --- what the host must offer ----------------------------------------------------------


def check_engines(engines: object) -> int:
    if isinstance(engines, bool) or not isinstance(engines, int):
        raise ValueError(f"engines={engines!r} is not an int: pass the number of engines, engine 0 included, e.g. 3")
    if engines < 2:
        raise ValueError(
            f"engines={engines} is too few: the lab is engine 0 plus at least one more; pass engines=2 or more"
        )
    if engines > MAX_ENGINES:
        raise ValueError(f"engines={engines} is too many for one machine: pass engines=2 to {MAX_ENGINES}")
    return engines


def check_host() -> None:
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


def check_leftovers() -> None:
    """Refuse to start over things with the lab's names that no state file accounts for."""
    how = "remove them by hand"
    found_links = sorted(name for name in links() if name.startswith(PREFIX))
    spaces = sorted(name for name in namespaces() if name.startswith(PREFIX))
    found = [f"link {name} (ip link del {name})" for name in found_links]
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
