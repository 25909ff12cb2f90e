"""Where a fault helper image keeps ``iptables``, ``ip6tables`` and ``tc``, and whether they
work there: found once per image and engine by a short-lived container of that image.

The rule scripts (:mod:`.rules`) name the tools bare; :func:`preamble` makes each name a
shell function calling the path found. By function, not by PATH: a shell function wins
over busybox's applets (the static busybox's shell runs its own small ``tc`` before
anything on PATH), and the scripts stay the same whatever image runs them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from ..engine import exec_in, remove_container
from ..engine.errors import APIError
from ..errors import DockernetError
from ..probes import RESIDENT

if TYPE_CHECKING:
    from ..engine.port import Engine

TOOLS = ("iptables", "ip6tables", "tc")
REQUIRED = ("iptables", "tc")  # without ip6tables, faults refuse what would leave IPv6 uncovered
# What each tool's -V prints; busybox's applets print their usage with "BusyBox" instead.
_VERSION = {"iptables": "iptables v", "ip6tables": "ip6tables v", "tc": "iproute2"}
_SEARCH = "$PATH:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# Per tool, one line "@@TOOL PATH|-- OUTPUT": PATH and a working check (a chain made and
# removed, the loopback's qdiscs listed: the backend works in a container's namespace),
# else "--" and why. Run by the image's own sh.
CHECK_SCRIPT = (
    "found() { IFS=:; for d in " + _SEARCH + '; do unset IFS; p="$d/$1"; '
    '[ -f "$p" ] && [ -x "$p" ] || continue; '
    'case "$("$p" -V 2>&1)" in *BusyBox*) ;; *"$2"*) echo "$p"; return;; esac; done; unset IFS; }; '
    + "".join(
        f'p=$(found {tool} "{_VERSION[tool]}"); '
        f'if [ -z "$p" ]; then echo "@@{tool} -- not found"; '
        f'elif out=$({check}); then echo "@@{tool} $p"; '
        f'else echo "@@{tool} -- $p: $(echo $out)"; fi; '
        for tool, check in (
            ("iptables", '"$p" -w -N DN-CHECK 2>&1 && "$p" -w -X DN-CHECK 2>&1'),
            ("ip6tables", '"$p" -w -N DN-CHECK 2>&1 && "$p" -w -X DN-CHECK 2>&1'),
            ("tc", '"$p" qdisc show dev lo 2>&1'),
        )
    )
    + "true"
)
PACKAGES = "iptables and iproute2"


def preamble(tools: Mapping[str, str]) -> str:
    """Shell functions naming each tool's path in the image, for a script's start; the path
    also in ``DN_PATH_<TOOL>`` (a script that needs a command beside it: iptables-restore)."""
    return "".join(
        f'{tool}() {{ {path} "$@"; }}; DN_PATH_{tool.upper()}={path}; ' for tool, path in sorted(tools.items())
    )


def parse_check(output: str) -> tuple[dict[str, str], dict[str, str]]:
    """:data:`CHECK_SCRIPT`'s output: ``({tool: path}, {tool: why not})``."""
    found: dict[str, str] = {}
    missing: dict[str, str] = {}
    for line in output.splitlines():
        words = line.split(maxsplit=2)
        if len(words) < 2 or not words[0].startswith("@@") or words[0][2:] not in TOOLS:
            continue
        tool = words[0][2:]
        if words[1] == "--":
            missing[tool] = words[2] if len(words) > 2 else "not found"
        else:
            found[tool] = words[1]
    for tool in TOOLS:
        if tool not in found:
            missing.setdefault(tool, "not found")
    return found, missing


def check_tools(engine: Engine, image: str, named: str, name: str, labels: dict[str, str]) -> dict[str, str]:
    """``{tool: path}`` in ``image`` on ``engine``, each found working in a container's network
    namespace (``ip6tables`` may be missing); DockernetError naming ``named`` (the option or
    the build the image came from) and what is missing or failing."""
    config = engine.inspect_image(image).get("Config") or {}
    if config.get("Entrypoint"):
        raise DockernetError(
            f"{named}: the image has an ENTRYPOINT ({config['Entrypoint']}), but the fault helpers run "
            "`sh` as their command; give an image without one (a Dockerfile FROM it with `ENTRYPOINT []`)"
        )
    try:
        created = engine.create_container(
            image,
            command=RESIDENT,
            stdin_open=True,
            name=name,
            labels=labels,
            host_config=engine.create_host_config(network_mode="none", cap_add=["NET_ADMIN", "NET_RAW"]),
            detach=True,
        )
    except APIError as exc:
        raise DockernetError(f"{named}: the engine cannot make a container of it: {exc.explanation or exc}") from None
    try:
        try:
            engine.start(created["Id"])
        except APIError as exc:
            raise DockernetError(
                f"{named}: no POSIX sh to run in it, the fault helpers need one: {exc.explanation or exc}"
            ) from None
        _, output = exec_in(engine, created["Id"], ["sh", "-c", CHECK_SCRIPT])
    finally:
        remove_container(engine, created["Id"])
    found, missing = parse_check(output)
    lacking = [f"{tool}: {missing[tool]}" for tool in REQUIRED if tool in missing]
    if lacking:
        raise DockernetError(
            f"{named}: the fault helpers need iptables and tc working in a container's network namespace; "
            f"in this image {'; '.join(lacking)} (install {PACKAGES} in it)"
        )
    return found
