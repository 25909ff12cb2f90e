"""Running probes from a source container's network namespace.

A probe is a busybox shell snippet (ping, nc, nslookup, /etc/hosts). It runs in the
source container itself when that is the probe image, else in a sidecar of the probe
image that shares the source's network namespace (and so its /etc/hosts and
/etc/resolv.conf): a source without a shell or tools (distroless, ``FROM scratch``)
is probed exactly as its application sees the network. Many probes of one source go
into one run, concurrently inside it.

Containers the plugin starts with its own command (probe-image containers without a
command, sidecars) run a resident shell that reads scripts from stdin: a probe is then a
write to the container's attach socket (about 1 ms) rather than an exec (about 70 ms,
most of it the runtime starting a process). Anything else, or a shell that is busy or
broken, falls back to an exec.
"""

from __future__ import annotations

import itertools
import math
import re
import shlex
import socket
import struct
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

import docker.errors

from . import identity as lbl
from .gate import gate_for

if TYPE_CHECKING:
    from .topology import Container

_RC = re.compile(r"@@rc=(\d+)\s*$")


@dataclass
class ProbeResult:
    source: str  # the source's logical name
    where: str  # the container the command ran in
    command: str
    exit_code: int
    output: str

    @property
    def ok(self) -> bool:
        return self.exit_code == 0

    def describe(self) -> str:
        output = self.output.strip() or "(no output)"
        body = "\n".join("      " + line for line in output.splitlines())
        return (
            f"    probe from {self.source} (in {self.where}):\n"
            f"      $ {self.command}\n"
            f"      exit code {self.exit_code}, output:\n{body}"
        )


def seconds(timeout: float) -> int:
    """busybox ping -W and nc -w take whole seconds."""
    return max(1, math.ceil(timeout))


def connect_command(address: str, port: int | None, timeout: float) -> str:
    """ICMP echo (``port=None``) or a TCP connect, giving up after ``timeout``."""
    address = shlex.quote(address)
    if port is None:
        return f"ping -c1 -W{seconds(timeout)} {address}"
    return f"nc -w{seconds(timeout)} {address} {int(port)} </dev/null"


def resolve_command(name: str) -> str:
    """Resolve ``name`` as getaddrinfo does with ``hosts: files dns``: /etc/hosts first
    (link aliases, extra hosts, the container's own name), DNS only when it has no entry.

    Prints ``hosts ADDRESS`` lines, or nslookup's own output.
    """
    n = shlex.quote(name)
    return (
        f"a=$(awk -v n={n} 'BEGIN {{n = tolower(n)}} /^[ \\t]*[^# \\t]/ "
        f"{{for (i = 2; i <= NF; i++) if (tolower($i) == n) {{print $1; next}}}}' /etc/hosts); "
        f'if [ -n "$a" ]; then for x in $a; do echo "hosts $x"; done; else nslookup {n}; fi'
    )


def parse_addresses(output: str) -> list[str]:
    """The addresses in the output of :func:`resolve_command`."""
    found: list[str] = []
    answering = False
    for line in output.splitlines():
        line = line.strip()
        if line.startswith("hosts "):
            found.append(line.split()[1])
        elif line.startswith("Name:"):
            answering = True  # nslookup's "Server:/Address:" header lies before the answers
        elif answering and line.startswith("Address"):
            address = line.split(":", 1)[1].strip().split()[0]
            found.append(address)
    return list(dict.fromkeys(found))


class Shell:
    """The resident shell of one container, fed over its attach socket.

    Each script runs as ``sh -c SCRIPT`` (a syntax error cannot kill the resident shell)
    and ends with a unique marker carrying its exit code; output before a marker that is
    not ours (left by a script abandoned half-way) is skipped.
    """

    _tokens = itertools.count()

    def __init__(self, api, container_id: str):
        self._api = api
        self._id = container_id
        self._sock: socket.socket | None = None
        self._io = None  # the SDK's wrapper, which owns the socket
        self._buffer = b""
        self.lock = threading.Lock()
        self.broken = False

    def run(self, script: str) -> tuple[int, str]:
        """Run ``script``; (exit code, stdout+stderr). Raises OSError if the shell is unusable."""
        if self._sock is None:
            self._io = self._api.attach_socket(self._id, params={"stdin": 1, "stdout": 1, "stderr": 1, "stream": 1})
            self._sock = getattr(self._io, "_sock", None)
            if not isinstance(self._sock, socket.socket):  # e.g. an ssh:// engine: no plain socket to write to
                raise OSError("the attach stream is not a socket")
            self._sock.settimeout(self._api.timeout if isinstance(self._api.timeout, (int, float)) else None)
        token = f"@@end{next(self._tokens)}@@"
        line = f"sh -c {shlex.quote(script)} </dev/null 2>&1; echo {token}$?\n"
        self._sock.sendall(line.encode())
        output = self._read_until(token.encode())
        head, _, tail = output.rpartition(token.encode())
        return int(tail.strip() or 127), head.decode(errors="replace")

    def _read_until(self, token: bytes) -> bytes:
        out = b""
        while True:
            while len(self._buffer) < 8:
                self._recv()
            size = struct.unpack(">L", self._buffer[4:8])[0]
            while len(self._buffer) < 8 + size:
                self._recv()
            out += self._buffer[8 : 8 + size]
            self._buffer = self._buffer[8 + size :]
            at = out.find(token)
            if at >= 0 and out.find(b"\n", at) >= 0:
                start = out.rfind(b"@@end", 0, at)
                # the output of an earlier script that never reached its marker is not ours
                return out[out.find(b"\n", start) + 1 if start >= 0 else 0 : out.find(b"\n", at)]

    def _recv(self) -> None:
        data = self._sock.recv(65536)
        if not data:
            raise OSError("the attach stream closed")
        self._buffer += data

    def close(self) -> None:
        self.broken = True
        for closable in (self._sock, self._io):
            try:
                if closable is not None:
                    closable.close()
            except OSError:
                pass


def close_shells(topology) -> None:
    with topology._lock:
        shells, topology._shells = list(topology._shells.values()), {}
    for shell in shells:
        shell.close()


def _runner(source: Container) -> tuple[str, str, bool]:
    """The container id a probe of ``source`` runs in, its name for messages, and whether
    it runs the resident shell."""
    if source.can_probe:
        return source.id, source.docker_name, source.resident
    topology = source.topology
    with topology._lock:
        if source.sidecar_id is None:
            source.sidecar_id = _start_sidecar(source)
    return source.sidecar_id, f"probe sidecar {source.docker_name}-probe", True


def _shell(source: Container, runner: str) -> Shell | None:
    """The runner's resident shell if it is free (else the caller execs)."""
    topology = source.topology
    with topology._lock:
        if topology.closed and not topology._shells:
            return None
        shell = topology._shells.get(runner)
        if shell is None:
            shell = topology._shells[runner] = Shell(source.client.api, runner)
    if shell.broken or not shell.lock.acquire(blocking=False):
        return None
    return shell


def _start_sidecar(source: Container) -> str:
    from .topology import RESIDENT, DockernetError

    topology = source.topology
    topology._probe_image_on(source.host)
    api = source.client.api
    name = f"{source.docker_name}-probe"
    try:
        with gate_for(source.client).building():
            created = api.create_container(
                topology.probe_image,
                command=RESIDENT,
                stdin_open=True,
                name=name,
                labels=topology._labels("sidecar", source.name, {lbl.PREFIX + ".sidecar-of": source.id}),
                host_config=api.create_host_config(network_mode=f"container:{source.id}"),
                detach=True,
            )
            api.start(created["Id"])
        topology.timings.count("sidecars")
        return created["Id"]
    except docker.errors.APIError as exc:
        topology._remove_containers_named(name, source.client)
        raise DockernetError(
            f"starting the probe sidecar of {source.name!r} failed: {exc.explanation or exc}"
        ) from None
    except BaseException:
        topology._remove_containers_named(name, source.client)
        raise


def run(source: Container, script: str) -> ProbeResult:
    """Run a shell snippet in ``source``'s network namespace: through the resident shell
    where there is one, else one exec (two API calls)."""
    runner, where, resident = _runner(source)
    source.topology.timings.count("probes")
    shell = _shell(source, runner) if resident else None
    if shell is not None:
        try:
            code, output = shell.run(script)
        except OSError:
            shell.close()  # later probes of this source exec; this one too
        else:
            return ProbeResult(source.name, where, script, code, output)
        finally:
            shell.lock.release()
    api = source.client.api
    source.topology.timings.count("probe execs")
    wrapped = f"{{ {script}\n}} 2>&1; echo @@rc=$?"
    exec_id = api.exec_create(runner, ["sh", "-c", wrapped])["Id"]
    output = api.exec_start(exec_id).decode(errors="replace")
    match = _RC.search(output)
    if match is None:  # the exec itself failed (e.g. no sh in a custom probe image)
        return ProbeResult(source.name, where, script, api.exec_inspect(exec_id)["ExitCode"] or 127, output)
    return ProbeResult(source.name, where, script, int(match.group(1)), output[: match.start()])


def run_many(source: Container, commands: list[str]) -> list[bool]:
    """Run ``commands`` concurrently in one exec; whether each exited 0."""
    if not commands:
        return []
    parts = [f"( {cmd} ) >/dev/null 2>&1 && echo @@ok{i} &" for i, cmd in enumerate(commands)]
    result = run(source, "\n".join(parts) + "\nwait")
    ok = set(re.findall(r"@@ok(\d+)", result.output))
    return [str(i) in ok for i in range(len(commands))]
