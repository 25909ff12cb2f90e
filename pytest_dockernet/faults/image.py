"""The fault helpers' image: the probe image plus this machine's ``iptables``,
``ip6tables`` and ``tc`` with their libraries and modules, built locally (no registry).

``ip6tables`` is the same multi-call binary as ``iptables`` where that is one
(``xtables-nft-multi``, ``xtables-legacy-multi``): both families then go through one
backend, the one the engine uses for the container's own rules. A machine without
``ip6tables`` still gets an image; the faults refuse what would need IPv6 covered
(:attr:`FaultImage.ipv6` False), naming it.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import subprocess
import tarfile
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import DockernetError, DriverUnavailable
from ..image import image_on, remove_stale_builds

if TYPE_CHECKING:
    from ..engine.port import Engine

FAULT_REPOSITORY = "pytest-dockernet/faults"
FAULT_BASE = "pytest-dockernet.fault-base"  # label: the probe image it was built on
# Where the image has them. By path: busybox's shell runs its own (smaller) tc applet
# before anything on PATH.
TC = "/usr/sbin/tc"
_LIB_DIRS = ("xtables", "tc")  # iptables' match/target modules, tc's distribution tables
_PACKAGES = {"iptables": "iptables", "ip6tables": "iptables", "tc": "iproute2"}
IP6TABLES_MISSING = (
    "IPv6 faults need ip6tables on this machine to build the fault helper image (Debian: apt-get install iptables)"
)


@dataclass(frozen=True)
class FaultImage:
    tag: str
    ipv6: bool  # ip6tables is in it


def find_tool(tool: str) -> str | None:
    """Where ``tool`` is on this machine (PATH, then the sbin directories), or None."""
    return shutil.which(tool) or next((p for p in (f"/usr/sbin/{tool}", f"/sbin/{tool}") if os.path.exists(p)), None)


def _required(tool: str) -> str:
    found = find_tool(tool)
    if found is None:
        raise DriverUnavailable(
            f"faults need {tool} on this machine to build their helper image "
            f"(Debian: apt-get install {_PACKAGES[tool]})"
        )
    return os.path.realpath(found)


def ip6tables_for(iptables: str) -> str | None:
    """The binary to run as ip6tables: iptables' own where it is a multi-call one."""
    if "multi" in os.path.basename(iptables):
        return iptables
    found = find_tool("ip6tables")
    return os.path.realpath(found) if found else None


def host_files() -> dict[str, str]:
    """``{path on this machine: path in the image}`` for the fault tools, their libraries
    and modules (``@link:NAME``: a symlink ``/usr/sbin/NAME`` to a path in the image);
    DriverUnavailable naming a required tool that is missing."""
    tools = {"iptables": _required("iptables"), "tc": _required("tc")}
    ip6tables = ip6tables_for(tools["iptables"])
    if ip6tables is not None:
        tools["ip6tables"] = ip6tables
    files: dict[str, str] = {}
    for tool, real in tools.items():
        files[real] = real.lstrip("/")
        if real != f"/usr/sbin/{tool}":
            files[f"@link:{tool}"] = real  # the tool's own name (iptables: a multi-call binary)
        try:
            ldd = subprocess.run(["ldd", real], capture_output=True, text=True, timeout=30).stdout
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise DriverUnavailable(f"faults: cannot list the libraries of {real} (ldd: {exc})") from None
        for line in ldd.splitlines():
            parts = line.split()
            path = (
                parts[2]
                if "=>" in parts and len(parts) > 3
                else parts[0]
                if parts and parts[0].startswith("/")
                else None
            )
            if path and os.path.exists(path):
                files[os.path.realpath(path)] = path.lstrip("/")
                for module_dir in _LIB_DIRS:
                    # Where the tool looks for them: the directory's real path (/usr/lib/...).
                    candidate = os.path.realpath(os.path.join(os.path.dirname(path), module_dir))
                    if os.path.isdir(candidate):
                        for name in os.listdir(candidate):
                            full = os.path.join(candidate, name)
                            if os.path.isfile(full):
                                files.setdefault(os.path.realpath(full), full.lstrip("/"))
    return files


def fault_image(engine: Engine, probe_image: str) -> FaultImage:
    """The fault image on ``engine``, built once per content (tag by digest); a
    build removes the fault images of other contents that no container uses."""
    files = host_files()
    ipv6 = "@link:ip6tables" in files or "usr/sbin/ip6tables" in files.values()
    dockerfile = (
        f"FROM {probe_image}\nCOPY root/ /\nLABEL pytest-dockernet.image=faults {FAULT_BASE}={probe_image}\n"
    ).encode()
    digest = hashlib.sha256(dockerfile)
    for source in sorted(files):
        digest.update(source.encode())
        if source.startswith("@link:"):
            digest.update(files[source].encode())
        else:
            digest.update(str(os.stat(source).st_size).encode())
    tag = f"{FAULT_REPOSITORY}:{digest.hexdigest()[:12]}"
    if image_on(engine, tag):
        return FaultImage(tag, ipv6)
    context = io.BytesIO()
    with tarfile.open(fileobj=context, mode="w") as tar:
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(dockerfile)
        tar.addfile(info, io.BytesIO(dockerfile))
        for source, target in files.items():
            if source.startswith("@link:"):
                link = tarfile.TarInfo(f"root/usr/sbin/{source[len('@link:') :]}")
                link.type, link.linkname = tarfile.SYMTYPE, "/" + target.lstrip("/")
                tar.addfile(link)
            else:
                tar.add(source, arcname=f"root/{target}")
    context.seek(0)
    steps = list(engine.build(fileobj=context, custom_context=True, tag=tag, rm=True, forcerm=True))
    failure = next((str(step["error"]) for step in steps if "error" in step), None)
    if failure is not None or not image_on(engine, tag):
        log = "".join(str(step.get("stream", "")) for step in steps)[-2000:]
        raise DockernetError(f"building the fault helper image {tag} failed: {failure or 'Unknown'}\n{log}")
    # One fault image on the engine, not one per version of the plugin or of the host's tools.
    # (Those of another probe image are another run's; one without the label, an earlier version's.)
    remove_stale_builds(
        engine, "faults", FAULT_REPOSITORY, tag, lambda labels: labels.get(FAULT_BASE, probe_image) == probe_image
    )
    return FaultImage(tag, ipv6)
