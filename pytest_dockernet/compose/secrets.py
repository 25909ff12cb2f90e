"""A Compose file's secrets and configs: the top-level definitions (``file:``,
``environment:``, and for configs ``content:``) and each service's references to them
(a name, or a mapping of ``source``, ``target``, ``uid``, ``gid``, ``mode``), read into
the files ``container(files=...)`` puts into the service's container before it starts
(see :mod:`pytest_dockernet.container_files` for why not bind mounts).

Where Compose puts them: a secret at ``/run/secrets/<target or source>`` (a relative
target under ``/run/secrets``, an absolute one as given), a config at ``/<source>`` or its
target (a relative one under ``/``); mode 0444 and owner 0:0 unless given. What a file
needs is checked when the file is read, before anything is made: references to undefined
names, a ``file:`` that does not exist, a variable that is not set. ``external: true``
(an engine's swarm secret or config, made outside the test) is refused: a test uses
nothing outside its own topology.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, cast

from ..container_files import DEFAULT_MODE, ContainerFile, check_files
from ..errors import ComposeError
from .values import entries, items, mapping

if TYPE_CHECKING:
    from .env import Variables

KINDS = ("secrets", "configs")
SOURCES = {"secrets": ("file", "environment"), "configs": ("file", "environment", "content")}
# Keys of a definition besides its source: read, or accepted and listed in the warning.
KEYS = ("external", "name")
IGNORED = {"labels": "labels of the engine's secret or config object: here the file is put into the container"}
REFUSED = {
    "driver": "a secret store's driver: compose() reads secrets from files and variables only",
    "driver_opts": "a secret store's driver options: compose() reads secrets from files and variables only",
    "template_driver": "templating is not done: the file's content is put in as it is",
}
REFERENCE_KEYS = ("source", "target", "uid", "gid", "mode")
DIRECTORY = {"secrets": "/run/secrets/", "configs": "/"}  # where a target that is not absolute goes
_NAME = re.compile(r"^[a-zA-Z0-9._-]+$")  # the specification's pattern for secret and config names


class Service(Protocol):
    """What is read and set of a service (a services.ServiceDef): its mounts and engine
    options (where a file could not go), its files by path."""

    mounts: list[Any]  # values.Mount
    docker_options: dict[str, Any]
    files: dict[str, ContainerFile]


@dataclass
class Definition:
    """A top-level secret or config: where its content comes from (read only when a
    service uses it)."""

    kind: str  # "secrets" or "configs"
    name: str
    where: str  # "FILE: secrets.NAME", for messages
    file: Path | None = None
    written: str = ""  # the file as the Compose file gives it
    variable: str | None = None
    content: str | None = field(default=None, repr=False)

    def read(self, variables: Variables, root: Path, user: str) -> bytes:
        """The content, for ``user`` (``services.NAME.secrets[i]``, named in messages)."""
        if self.content is not None:
            return self.content.encode()
        if self.variable is not None:
            value = variables.get(self.variable)
            if value is None:
                raise ComposeError(
                    f"{self.where}.environment: variable {self.variable!r} is not set (give it in compose(env=...), "
                    f"the process environment or {root / '.env'}); {user} uses it"
                )
            return value.encode()
        path = cast(Path, self.file)  # _definition sets one of the three
        at = f"{self.where}.file: {self.written!r}"
        if not path.exists():
            raise ComposeError(f"{at}: no such file ({path}); {user} uses it")
        if not path.is_file():
            raise ComposeError(f"{at}: {path} is not a file (a {self.kind[:-1]} here is one file); {user} uses it")
        try:
            return path.read_bytes()
        except OSError as exc:
            raise ComposeError(f"{at}: {path} cannot be read: {exc.strerror}") from None


def add_files(
    merged: Mapping[str, Any],
    services: Mapping[str, Service],
    where: str,
    root: Path,
    variables: Variables,
    ignored: list[str],
) -> None:
    """Read the file's top-level ``secrets:`` and ``configs:`` and set each service's
    ``files`` from its own ``secrets:`` and ``configs:`` (``merged`` is the whole file,
    merged and interpolated; ``where`` the file's name, for messages)."""
    defined = {kind: _definitions(kind, merged.get(kind), where, root, ignored) for kind in KINDS}
    specs = mapping(merged.get("services"), f"{where}: services")
    for name, service in services.items():
        spec = mapping(specs.get(name), f"{where}: services.{name}")
        files: dict[str, ContainerFile] = {}
        for kind in KINDS:
            at = f"{where}: services.{name}.{kind}"
            for i, entry in enumerate(items(spec.get(kind), at)):
                source, path, (mode, uid, gid) = _reference(kind, entry, f"{at}[{i}]")
                definition = defined[kind].get(source)
                if definition is None:
                    names = ", ".join(defined[kind]) or "none"
                    raise ComposeError(
                        f"{at}[{i}]: {kind[:-1]} {source!r} is not defined under the top-level '{kind}:' (it "
                        f"defines {names})"
                    )
                if path in files:
                    raise ComposeError(f"{at}[{i}]: {path} is the path of another of the service's secrets or configs")
                content = definition.read(variables, root, f"services.{name}.{kind}[{i}]")
                files[path] = ContainerFile(content, mode, uid, gid)
        try:  # a tmpfs or a volume over a file's path would hide it: said now rather than at the start
            check_files(files, [mount.target for mount in service.mounts], service.docker_options)
        except ValueError as exc:
            raise ComposeError(f"{where}: services.{name}: {exc}") from None
        service.files = files


def _definitions(kind: str, value: object, where: str, root: Path, ignored: list[str]) -> dict[str, Definition]:
    definitions = {}
    for name, spec in entries(value, f"{where}: {kind}").items():
        at = f"{where}: {kind}.{name}"
        if not _NAME.match(name):
            raise ComposeError(f"{where}: {kind}: {name!r} is not a {kind[:-1]} name: letters, digits, '.', '_', '-'")
        definitions[name] = _definition(kind, name, mapping(spec, at), at, root, ignored)
    return definitions


def _definition(
    kind: str, name: str, spec: Mapping[str, Any], where: str, root: Path, ignored: list[str]
) -> Definition:
    sources = SOURCES[kind]
    for key in spec:
        if key in IGNORED:
            ignored.append(f"{kind}.{name}.{key} ({IGNORED[key]})")
        elif key in REFUSED:
            raise ComposeError(f"{where}.{key} is not supported: {REFUSED[key]}")
        elif key not in (*sources, *KEYS) and not str(key).startswith("x-"):
            allowed = ", ".join((*sources, *KEYS, *IGNORED))
            raise ComposeError(f"{where}: key {key!r} of {kind[:-1]} {name!r} is not supported; supported: {allowed}")
    external = spec.get("external", False)
    if external is not False:
        engine_name = spec.get("name") or (external.get("name") if isinstance(external, Mapping) else None) or name
        raise ComposeError(
            f"{where}.external: an external {kind[:-1]} (the engine's {engine_name!r}, made outside the test) is not "
            f"supported: a test uses nothing outside its own topology; give it {' or '.join(s + ':' for s in sources)} "
            "instead (for this test, e.g. in an override file with external: false)"
        )
    if "name" in spec:
        ignored.append(f"{kind}.{name}.name (the engine's name of a swarm {kind[:-1]}: here none is made)")
    given = [key for key in sources if spec.get(key) is not None]
    if len(given) != 1:
        why = f"it gives {' and '.join(given)}" if given else "it gives none"
        raise ComposeError(f"{where}: give exactly one of {', '.join(sources)}: {why}")
    value = spec[given[0]]
    if not isinstance(value, str) or (not value and given[0] != "content"):
        raise ComposeError(f"{where}.{given[0]} must be a non-empty string, got {value!r}")
    definition = Definition(kind, name, where)
    if given[0] == "file":
        definition.file, definition.written = (root / value).resolve(), value
    elif given[0] == "environment":
        definition.variable = value
    else:
        definition.content = value
    return definition


def _reference(kind: str, entry: object, where: str) -> tuple[str, str, tuple[int, int, int]]:
    """A service's reference: the name it uses, the path in the container, and the
    file's mode and owner (its content is the definition's)."""
    if isinstance(entry, str):
        entry = {"source": entry}
    if not isinstance(entry, Mapping):
        raise ComposeError(f"{where}: {entry!r} is neither a {kind[:-1]} name nor a mapping with 'source'")
    for key in entry:
        if key not in REFERENCE_KEYS and not str(key).startswith("x-"):
            raise ComposeError(
                f"{where}: key {key!r} is not supported; a {kind[:-1]} is a name or a mapping of "
                f"{', '.join(REFERENCE_KEYS)}"
            )
    source = entry.get("source")
    if not isinstance(source, str) or not source:
        raise ComposeError(f"{where}.source: give the name of a {kind[:-1]} of the top-level '{kind}:', got {source!r}")
    path = target_path(kind, entry)
    if ".." in path.split("/"):
        raise ComposeError(f"{where}.target: {entry.get('target')!r} goes up ('..'): give the file's own path")
    return source, path, (_mode(entry, where), *_ids(entry, where))


def target_path(kind: str, entry: object) -> str:
    """Where a service's secret or config (a name or a mapping) goes in the container, as
    Compose puts it; unique per service (override files merge the lists by it)."""
    target = source = entry
    if isinstance(entry, Mapping):
        source, target = entry.get("source"), entry.get("target") or entry.get("source")
    if not isinstance(target, str):
        return repr(source)  # checked later, where the message can name it
    path = target if target.startswith("/") else DIRECTORY[kind] + target
    if ".." in path.split("/"):
        return path  # refused by _reference, naming it
    return "/" + "/".join(part for part in path.split("/") if part not in ("", "."))


def _mode(entry: Mapping[str, Any], where: str) -> int:
    """``mode: 0440`` (YAML reads a leading 0 as octal, as Compose does) or ``"0440"``."""
    mode = entry.get("mode")
    if mode is None:
        return DEFAULT_MODE
    if isinstance(mode, str) and re.fullmatch(r"0?o?[0-7]{1,4}", mode):
        mode = int(mode.replace("o", ""), 8)
    if not isinstance(mode, int) or isinstance(mode, bool) or not 0 <= mode <= 0o7777:
        raise ComposeError(f"{where}.mode: {mode!r} is not a file mode such as 0440 (octal)")
    return mode


def _ids(entry: Mapping[str, Any], where: str) -> tuple[int, int]:
    ids = []
    for key in ("uid", "gid"):
        value = entry.get(key, "0")
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str) or not re.fullmatch(r"[0-9]{1,10}", value) or int(value) >= 2**31:
            raise ComposeError(
                f"{where}.{key}: {value!r} is not a numeric {key} such as '1000' (names are not looked up in the image)"
            )
        ids.append(int(value))
    return ids[0], ids[1]
