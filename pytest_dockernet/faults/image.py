"""The fault helpers' image, chosen in this order (:func:`helper_image`):

1. the one ``--dockernet-fault-image`` names (present or pullable; checked once per run
   and engine: :mod:`.tools`); this machine's tools are not looked at then;
2. the probe image plus this machine's ``iptables``, ``ip6tables`` and ``tc`` with their
   libraries and modules, built locally (no registry: air-gapped CI);
3. one built ``FROM`` a small public base with its package manager (a machine without
   those tools, Docker Desktop's host, a CI job's container, has a registry instead);
4. else DriverUnavailable naming the option and the two ways to satisfy it.

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
import tarfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..engine.errors import APIError
from ..errors import DockernetError, DriverUnavailable
from ..image import ensure_image, image_on, library_files, remove_stale_builds
from .tools import PACKAGES, TOOLS, check_tools

if TYPE_CHECKING:
    from ..engine.port import Engine

FAULT_REPOSITORY = "pytest-dockernet/faults"
FAULT_BASE = "pytest-dockernet.fault-base"  # label: the probe image it was built on
OPTION = "--dockernet-fault-image"
# How the rule scripts name tc: a shell function of the helper's script, calling the path
# the image has it at (tools.preamble); busybox's shell would run its own tc applet instead
# of one found on PATH.
TC = "tc"
HOST_TOOLS = {tool: f"/usr/sbin/{tool}" for tool in TOOLS}  # in the image built from this machine's
# The public base and what its package manager adds, for a machine without the tools.
PUBLIC_BASE = "alpine:3.20"
PUBLIC_DOCKERFILE = (
    f"FROM {PUBLIC_BASE}\nRUN apk add --no-cache iptables iproute2 python3\n"
    f"LABEL pytest-dockernet.image=faults {FAULT_BASE}={PUBLIC_BASE}\n"
)
SYMLINK = "@symlink:"  # host_files: a symlink in a module directory, kept as one
_LIB_DIRS = ("xtables", "tc")  # iptables' match/target modules, tc's distribution tables
_PACKAGES = {"iptables": "iptables", "ip6tables": "iptables", "tc": "iproute2"}
IP6TABLES_MISSING = (
    "IPv6 faults need ip6tables on this machine to build the fault helper image (Debian: apt-get install iptables)"
)


@dataclass(frozen=True)
class FaultImage:
    tag: str
    ipv6: bool  # ip6tables is in it
    tools: Mapping[str, str] = field(default_factory=lambda: dict(HOST_TOOLS))  # tool -> its path in the image
    no_ipv6: str = IP6TABLES_MISSING  # why there is no ip6tables, for messages


def helper_image(engine: Engine, probe_image: str, given: str | None, check: tuple[str, dict[str, str]]) -> FaultImage:
    """The fault helpers' image on ``engine`` in the module's order: ``given`` (the option's),
    else one built from this machine's tools, else one built from a public base.
    ``check``: the name and labels of the container that checks an image's tools."""
    if given:
        named = f"{OPTION} {given}"
        try:
            ensure_image(engine, given)
        except ValueError as exc:
            raise DockernetError(f"{named}: {exc}") from None
        return checked(engine, given, named, check)
    if find_tool("iptables") and find_tool("tc"):
        return fault_image(engine, probe_image)
    return public_image(engine, check)


def checked(engine: Engine, image: str, named: str, check: tuple[str, dict[str, str]]) -> FaultImage:
    tools = check_tools(engine, image, named, *check)
    return FaultImage(image, "ip6tables" in tools, tools, f"{named} has no working ip6tables (install {PACKAGES})")


def public_image(engine: Engine, check: tuple[str, dict[str, str]]) -> FaultImage:
    """The fault image built FROM :data:`PUBLIC_BASE` with its package manager; DriverUnavailable
    naming both ways out when it cannot be built (no registry either)."""
    tag = f"{FAULT_REPOSITORY}:{hashlib.sha256(PUBLIC_DOCKERFILE.encode()).hexdigest()[:12]}"
    named = f"the fault helper image built FROM {PUBLIC_BASE} ({tag})"
    if not image_on(engine, tag):
        try:
            build_image(engine, PUBLIC_DOCKERFILE.encode(), {}, tag)
        except (DockernetError, APIError) as exc:
            raise DriverUnavailable(
                "faults need iptables, ip6tables and tc in their helper image: this machine has none to build "
                f"it from (iptables and tc looked for on PATH, /usr/sbin, /sbin), and building one FROM "
                f"{PUBLIC_BASE} with apk failed: {str(exc).splitlines()[0].split(' failed: ', 1)[-1]}\n"
                "Either install them here (Debian: apt-get install iptables iproute2), or pass "
                f"{OPTION} IMAGE (ini dockernet_fault_image) naming an image the engine has or can pull "
                "that has iptables, ip6tables and tc"
            ) from None
        remove_stale_builds(
            engine, "faults", FAULT_REPOSITORY, tag, lambda labels: labels.get(FAULT_BASE) == PUBLIC_BASE
        )
    return checked(engine, tag, named, check)


def find_tool(tool: str) -> str | None:
    """Where ``tool`` is on this machine (PATH, then the sbin directories), or None."""
    candidates = (f"/usr/sbin/{tool}", f"/sbin/{tool}")
    return shutil.which(tool) or next((p for p in candidates if os.access(p, os.X_OK)), None)


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
    and modules (``@link:NAME``: a symlink ``/usr/sbin/NAME`` to a path in the image;
    ``@symlink:PATH``: a symlink at ``PATH`` in the image to what it says, as on this machine);
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
        libraries = library_files(real, DriverUnavailable, "faults")
        files.update(libraries)
        for path in ("/" + in_image for in_image in libraries.values()):
            for module_dir in _LIB_DIRS:
                # Where the tool looks for them: the directory's real path (/usr/lib/...).
                candidate = os.path.realpath(os.path.join(os.path.dirname(path), module_dir))
                if os.path.isdir(candidate):
                    for name in os.listdir(candidate):
                        full = os.path.join(candidate, name)
                        if os.path.islink(full):
                            # Debian's libxt_DNAT.so, libxt_REDIRECT.so, ... -> libxt_NAT.so: without
                            # the link, iptables -t nat knows no REDIRECT (nor prints Docker's DNAT).
                            files[f"{SYMLINK}{full}"] = os.readlink(full)
                        elif os.path.isfile(full):
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
        if source.startswith("@"):
            digest.update(files[source].encode())
        else:
            digest.update(str(os.stat(source).st_size).encode())
    tag = f"{FAULT_REPOSITORY}:{digest.hexdigest()[:12]}"
    built = FaultImage(tag, ipv6, {t: p for t, p in HOST_TOOLS.items() if ipv6 or t != "ip6tables"})
    if image_on(engine, tag):
        return built
    build_image(engine, dockerfile, files, tag)
    # One fault image on the engine, not one per version of the plugin or of the host's tools.
    # (Those of another probe image are another run's; one without the label, an earlier version's.)
    remove_stale_builds(
        engine, "faults", FAULT_REPOSITORY, tag, lambda labels: labels.get(FAULT_BASE, probe_image) == probe_image
    )
    return built


def build_image(engine: Engine, dockerfile: bytes, files: dict[str, str], tag: str) -> None:
    """Build ``tag`` from ``dockerfile`` and ``files`` (see :func:`host_files`) under ``root/``."""
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
            elif source.startswith(SYMLINK):
                link = tarfile.TarInfo(f"root/{source[len(SYMLINK) :].lstrip('/')}")
                link.type, link.linkname = tarfile.SYMTYPE, target
                tar.addfile(link)
            else:
                tar.add(source, arcname=f"root/{target}")
    context.seek(0)
    steps = list(engine.build(fileobj=context, custom_context=True, tag=tag, rm=True, forcerm=True))
    failure = next((str(step["error"]) for step in steps if "error" in step), None)
    if failure is not None or not image_on(engine, tag):
        log = "".join(str(step.get("stream", "")) for step in steps)[-2000:]
        raise DockernetError(f"building the fault helper image {tag} failed: {failure or 'Unknown'}\n{log}")
