"""What an engine is: :class:`EngineInfo`, read from its version and info answers (one call
each), and whether it runs on this process's host.

The capability probe (:mod:`pytest_dockernet.capabilities`) starts here: what can be told
from these two answers and from this machine is told without a container; the rest is
probed. The kind ("Docker", "Podman") is said in messages; no part branches on it.
"""

from __future__ import annotations

import ipaddress
import os
import platform
import socket
import struct
import sys
from dataclasses import dataclass
from urllib.parse import urlsplit

from .connect import where
from .gate import remember
from .port import Engine, Info

# Docker Desktop's engine runs in a VM: host-mode containers and bind mounts are the VM's.
VM_ENGINES = ("Docker Desktop", "Rancher Desktop", "OrbStack", "colima")


# Architectures as Go (and so the engine's version answer) names them, from uname's names.
GO_ARCH = {"x86_64": "amd64", "x86-64": "amd64", "aarch64": "arm64", "armhf": "arm", "armel": "arm", "i386": "386"}


def go_arch(machine: str) -> str:
    """``machine`` (uname's name or Go's) as Go names it: the engine's spelling."""
    return GO_ARCH.get(machine, machine)


@dataclass(frozen=True)
class EngineInfo:
    """One engine, as its version and info answers and this machine tell it."""

    url: str  # where it answers (``DOCKER_HOST``, or the default socket)
    kind: str  # "Docker" or "Podman"
    version: str  # the engine's own version, e.g. "20.10.24+dfsg1", "4.3.1"
    api_version: str
    os: str  # e.g. "linux"
    arch: str  # e.g. "amd64"
    rootless: bool
    network_backend: str  # e.g. "netavark", "cni"; "" when the engine does not say
    id: str  # the engine's own id (info's ``ID``), or its name when it has none
    name: str  # the engine host's name (info's ``Name``)
    operating_system: str  # info's ``OperatingSystem``, e.g. "Docker Desktop"
    root: str  # info's ``DockerRootDir``
    # This process's machine: the same file system and kernel (bind mounts of its paths
    # are its files). ``host_reason`` says how that was decided.
    shares_host: bool
    # A host-mode container is in this process's network namespace (its 127.0.0.1 is ours).
    shares_network: bool
    host_reason: str
    runtimes: tuple[str, ...] = ()  # info's ``Runtimes``: what a container's ``runtime`` may name

    def describe(self) -> str:
        """e.g. "Podman 4.3.1", "Docker 20.10.24 (rootless)"."""
        version = self.version.split("+")[0].split("~")[0]
        return f"{self.kind} {version}{' (rootless)' if self.rootless else ''}"

    @property
    def runs_this_machines_programs(self) -> bool:
        """Whether a program of this machine (a Linux ELF) runs in the engine's containers:
        both Linux, one architecture (not so for Docker Desktop's host, nor across arm64/amd64)."""
        native = go_arch(platform.machine()) == go_arch(self.arch)
        return sys.platform.startswith("linux") and self.os == "linux" and native

    def api_at_least(self, *version: int) -> bool:
        """Whether the engine speaks API ``version`` (e.g. ``1, 44``) or newer; an API that
        does not say counts as older."""
        try:
            return tuple(int(part) for part in self.api_version.split(".")) >= version
        except ValueError:
            return False

    @property
    def cache_key(self) -> str:
        """What identifies the engine across runs, whichever address it is reached at: its
        host's name, its data root, kind and version (not its ID: Podman's compat API makes
        up a new one per call)."""
        return f"{self.name}\0{self.root}\0{self.kind}\0{self.version}"


def read_info(engine: Engine) -> EngineInfo:
    """What ``engine`` is: one version and one info call (the caller keeps the answer)."""
    version, info = engine.version(), engine.info()
    remember(engine, str(info.get("ID") or ""))  # the network gate's key, without asking again
    components = [c for c in version.get("Components") or [] if isinstance(c, dict)]
    podman = any(str(c.get("Name", "")).startswith("Podman") for c in components)
    url = where(engine)
    if url.startswith(("http://", "https://")):  # docker-py's spelling of the tcp:// users give
        url = "tcp://" + url.partition("://")[2]
    security = [str(s) for s in info.get("SecurityOptions") or []]
    rootless = any("name=rootless" in s for s in security) or info.get("Rootless") is True
    shares_host, shares_network, how = _locality(url, info)
    return EngineInfo(
        url=url,
        kind="Podman" if podman else "Docker",
        version=str(version.get("Version") or info.get("ServerVersion") or "unknown"),
        api_version=str(version.get("ApiVersion") or "unknown"),
        os=str(version.get("Os") or info.get("OSType") or "unknown"),
        arch=str(version.get("Arch") or info.get("Architecture") or "unknown"),
        rootless=rootless,
        network_backend=_network_backend(engine) if podman else "",
        id=str(info.get("ID") or info.get("Name") or url),
        name=str(info.get("Name") or ""),
        operating_system=str(info.get("OperatingSystem") or ""),
        root=str(info.get("DockerRootDir") or ""),
        shares_host=shares_host,
        shares_network=shares_network and not rootless,
        host_reason=how if not (shares_network and rootless) else f"{how}; rootless: its host network is its own",
        runtimes=tuple(sorted(info.get("Runtimes") or {})),
    )


def _network_backend(engine: Engine) -> str:
    """Podman's network backend ("netavark", "cni"), with its version when Podman says it
    (``networkBackendInfo``, Podman 4.5 on); "" when it does not say."""
    try:
        native = engine.native_info() or {}
    except Exception:  # noqa: BLE001 - the backend is said in messages only: none is no error
        return ""
    host = native.get("host")
    host = host if isinstance(host, dict) else {}
    details = host.get("networkBackendInfo")
    details = details if isinstance(details, dict) else {}
    return str(details.get("Version") or host.get("networkBackend") or "")


def _locality(url: str, info: Info) -> tuple[bool, bool, str]:
    """``(shares_host, shares_network, how that was decided)`` for the engine at ``url``."""
    parts = urlsplit(url)
    if parts.scheme in ("tcp", "http", "https", "ssh"):
        host = parts.hostname or ""
        if not _loopback(host):
            return False, False, f"the engine is reached at {host} ({parts.scheme}://), not on this machine's loopback"
    system = str(info.get("OperatingSystem") or "")
    if any(vm in system for vm in VM_ENGINES):
        return False, False, f"the engine runs in a VM ({system})"
    name, here = str(info.get("Name") or ""), socket.gethostname()
    if name and name != here:
        return False, False, f"the engine's host is named {name!r}, this machine {here!r}"
    if parts.scheme in ("unix", "") and sys.platform.startswith("linux"):
        return _socket_peer(parts.path or url.partition("://")[2])
    return True, True, f"the engine answers on this machine's loopback and its host is named {name!r}, as this one"


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _socket_peer(path: str) -> tuple[bool, bool, str]:
    """The process that answers on the socket at ``path`` (its peer credentials): on this
    machine when this process sees it, and in this network namespace when its
    ``/proc/PID/ns/net`` is ours. A socket mounted from elsewhere has a peer this process
    cannot see (pid 0)."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(3)
            sock.connect(path)
            pid = struct.unpack("3i", sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i")))[0]
    except OSError as exc:
        return True, True, f"assumed from the host name (the socket's peer is not readable: {exc})"
    if pid <= 0:
        return False, False, f"the process serving {path} is not in this process's view (a socket from elsewhere)"
    try:
        same = os.readlink(f"/proc/{pid}/ns/net") == os.readlink("/proc/self/ns/net")
    except OSError as exc:
        return True, True, f"{path} is served by pid {pid} on this machine (its network namespace unreadable: {exc})"
    if not same:
        return True, False, f"{path} is served by pid {pid} on this machine, in another network namespace"
    return True, True, f"{path} is served by pid {pid} on this machine, in this process's network namespace"
