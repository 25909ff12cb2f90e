"""Service keys that are one engine option each (``read_only``, ``cap_drop``,
``security_opt``, ``group_add``, ``domainname``, and the namespaces ``pid``, ``ipc``,
``userns_mode``, ``cgroup``): checked here and passed on as docker-py's ``containers.create``
takes them, so the engine applies them as it does for Compose.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ..errors import ComposeError
from .values import flag, items, name, strings, text

# key: (docker-py's argument, the values taken). Another container's namespace
# ("service:NAME", "container:NAME") would need that container made first, with its id.
NAMESPACES = {
    "pid": ("pid_mode", ("host",)),
    "ipc": ("ipc_mode", ("host", "private", "shareable", "none")),
    "userns_mode": ("userns_mode", ("host",)),
    "cgroup": ("cgroupns", ("host", "private")),
}


def engine_options(spec: Mapping[str, Any], where: str) -> dict[str, Any]:
    """The ``docker_options`` of these keys of service ``spec`` (``where``: its path)."""
    options: dict[str, Any] = {}
    if flag(spec.get("stdin_open"), f"{where}.stdin_open"):
        options["stdin_open"] = True  # a pipe nobody writes to: a command reading it waits, as under Compose
    if spec.get("read_only") is not None:
        options["read_only"] = flag(spec["read_only"], f"{where}.read_only")
    if spec.get("cap_drop") is not None:
        options["cap_drop"] = strings(spec["cap_drop"], f"{where}.cap_drop", "a capability name such as NET_RAW")
    if spec.get("security_opt") is not None:
        options["security_opt"] = strings(
            spec["security_opt"], f"{where}.security_opt", "an option such as no-new-privileges:true"
        )
    if spec.get("group_add") is not None:
        groups = items(spec["group_add"], f"{where}.group_add")
        for i, group in enumerate(groups):
            # A group id or a group name of the image's /etc/group, as the engine takes them.
            if isinstance(group, bool) or not isinstance(group, (str, int)) or group in ("", -1):
                raise ComposeError(
                    f"{where}.group_add[{i}]: {group!r} is not a group name or id such as 'mail' or 1000"
                )
        options["group_add"] = [str(group) for group in groups]
    domain = text(spec.get("domainname"), f"{where}.domainname")
    if domain is not None:
        if not domain or len(domain) > 253 or any(not part or len(part) > 63 for part in domain.split(".")):
            raise ComposeError(f"{where}.domainname: {domain!r} is not a domain name such as example.internal")
        options["domainname"] = domain
    for key, (option, values) in NAMESPACES.items():
        value = text(spec.get(key), f"{where}.{key}")
        if value is None:
            continue
        if value.partition(":")[0] in ("service", "container") and key in ("pid", "ipc"):
            raise ComposeError(
                f"{where}.{key}: {value!r}: sharing another container's {key} namespace is not carried out by "
                f"compose(); it takes {', '.join(values)}"
            )
        if value not in values:
            raise ComposeError(f"{where}.{key}: {value!r} is not one of {', '.join(values)}")
        options[option] = value
    return options


def label_files(value: object, where: str, root: Path, read: Callable[[Path], dict[str, str]]) -> dict[str, str]:
    """``label_file`` (a path or a list): the labels of its ``KEY=VALUE`` files, read as env
    files are, the later files winning; paths are relative to ``root``."""
    labels: dict[str, str] = {}
    paths = [value] if isinstance(value, str) else items(value, where)
    for i, entry in enumerate(paths):
        at = where if isinstance(value, str) else f"{where}[{i}]"
        if not isinstance(entry, str) or not entry:
            raise ComposeError(f"{at}: each entry must be the path of a file of KEY=VALUE lines, got {entry!r}")
        path = (root / entry).resolve()
        if not path.is_file():
            raise ComposeError(f"{at}: {entry!r}: no such file ({path})")
        try:
            labels.update(read(path))
        except ComposeError as exc:
            raise ComposeError(f"{at}: {exc}") from None
    return labels


def volumes_from(value: object, where: str) -> dict[str, str]:
    """``volumes_from``: ``{service: "rw" or "ro"}``, the services of the file whose mounts
    the service's containers get too (the first replica's, as under Compose)."""
    sources = {}
    for i, entry in enumerate(items(value, where)):
        at = f"{where}[{i}]"
        if not isinstance(entry, str) or not entry:
            raise ComposeError(f"{at}: {entry!r} is not 'SERVICE' or 'SERVICE:ro'")
        if entry.startswith("container:"):
            raise ComposeError(
                f"{at}: {entry!r}: a container outside the file's services; a test's containers are its own: "
                "name a service of the file instead"
            )
        source, _, mode = entry.partition(":")
        if mode not in ("", "ro", "rw"):
            raise ComposeError(f"{at}: {entry!r}: the mode after the service is ro or rw")
        sources[name(source, at, "service name")] = mode or "rw"
    return sources
