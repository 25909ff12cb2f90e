"""Running probes from a source container's network namespace.

A probe is a busybox shell snippet (ping, nc, nslookup, /etc/hosts). It runs in the
source container itself when that is the probe image, else in a sidecar of the probe
image that shares the source's network namespace (and so its /etc/hosts and
/etc/resolv.conf): a source without a shell or tools (distroless, ``FROM scratch``)
is probed exactly as its application sees the network. Many probes of one source go
into one exec, run concurrently inside it.
"""

from __future__ import annotations

import math
import re
import shlex
from dataclasses import dataclass
from typing import TYPE_CHECKING

import docker.errors

from . import identity as lbl

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


def _runner(source: Container) -> tuple[str, str]:
    """The container id a probe of ``source`` runs in, and its name for messages."""
    if source.can_probe:
        return source.id, source.docker_name
    topology = source.topology
    with topology._lock:
        if source.sidecar_id is None:
            source.sidecar_id = _start_sidecar(source)
    return source.sidecar_id, f"probe sidecar {source.docker_name}-probe"


def _start_sidecar(source: Container) -> str:
    from .topology import KEEPALIVE, DockernetError

    topology = source.topology
    api = topology.client.api
    name = f"{source.docker_name}-probe"
    try:
        created = api.create_container(
            topology.probe_image,
            command=KEEPALIVE,
            name=name,
            labels=topology._labels("sidecar", source.name, {lbl.PREFIX + ".sidecar-of": source.id}),
            host_config=api.create_host_config(network_mode=f"container:{source.id}"),
            detach=True,
        )
        api.start(created["Id"])
        topology.timings.count("sidecars")
        return created["Id"]
    except docker.errors.APIError as exc:
        topology._remove_containers_named(name)
        raise DockernetError(
            f"starting the probe sidecar of {source.name!r} failed: {exc.explanation or exc}"
        ) from None
    except BaseException:
        topology._remove_containers_named(name)
        raise


def run(source: Container, script: str) -> ProbeResult:
    """Run a shell snippet in ``source``'s network namespace (one exec, two API calls)."""
    runner, where = _runner(source)
    api = source.topology.client.api
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
