"""A Compose file's structure as Compose resolves it, on plain values before any key is
checked: each file read (YAML, ``!reset``/``!override`` paths, variables, list forms as
mappings), its ``include:`` projects imported (each with its own project directory and
``.env``), its services' ``extends`` resolved (in the file or another, relative paths of
another file made absolute against its directory), then the files merged in order (an
override file's ``!reset``/``!override`` paths cleared from what it overrides first).

``profiles`` (which services a call brings up) are chosen here too (:func:`enabled`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ComposeError
from .env import Variables, interpolate, read_env_file
from .secrets import target_path
from .yaml import read_yaml

# What an included project brings into the model, and the keys its file may have.
RESOURCES = ("services", "networks", "volumes", "secrets", "configs")
INCLUDED_TOP = (*RESOURCES, "name", "version", "include")
INCLUDE_KEYS = ("path", "project_directory", "env_file")
EXTENDS_KEYS = ("service", "file")
PROFILE = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]*")
Replaced = tuple[object, ...]  # the key path of a value an override file resets or replaces


@dataclass(frozen=True)
class Project:
    """Where one project's files find their relative paths and variables; ``chain`` is
    the files that include it (an include cycle is refused)."""

    directory: Path
    variables: Variables
    chain: tuple[Path, ...] = ()


def read_files(files: Iterable[Path], project: Project) -> dict[str, Any]:
    """The files of one project merged in order, as Compose merges them."""
    merged: dict[str, Any] = {}
    extender = _Extender(project.variables)
    for file in files:
        replaced: list[Replaced] = []
        document = normalised(interpolate(read_document(file, replaced), project.variables, str(file)), file)
        document = _include(document, file, project)
        document = extender.resolve(document, file, replaced)
        merged = merge(without(merged, replaced), document)
    return merged


def read_document(file: Path, replaced: list[Replaced] | None = None) -> dict[str, Any]:
    document = read_yaml(file, replaced)
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise ComposeError(f"{file}: a Compose file is a mapping with 'services:', got {type(document).__name__}")
    return document


def without(value: Any, paths: Iterable[Replaced]) -> Any:
    """``value`` without the keys at ``paths`` (copied along each path, never changed in place)."""
    for path in paths:
        value = _drop(value, path)
    return value


def _drop(value: Any, path: Replaced) -> Any:
    if not path or not isinstance(value, Mapping) or path[0] not in value:
        return value
    copy = dict(value)
    if len(path) == 1:
        del copy[path[0]]
    else:
        copy[path[0]] = _drop(value[path[0]], path[1:])
    return copy


# -- merging -------------------------------------------------------------------------------

# Sequences of a service that an override appends to (without repeats), as Compose does;
# other sequences (command, entrypoint, healthcheck.test, ipam.config) are replaced.
APPENDED = ("ports", "expose", "cap_add", "links", "env_file", "volumes", "dns", "dns_search", "dns_opt", "tmpfs",
            "extra_hosts", "label_file", "secrets", "configs")  # fmt: skip


def merge(base: Any, override: Any, key: str = "") -> Any:
    if override is None and base is not None:  # "key:" with nothing keeps the base's (!reset clears it)
        return base
    if isinstance(base, Mapping) and isinstance(override, Mapping):
        merged = dict(base)
        for k, v in override.items():
            merged[k] = merge(base[k], v, k) if k in base else v
        return merged
    if key in APPENDED and isinstance(base, list) and isinstance(override, list):
        if key == "volumes":  # unique by the path inside the container
            targets = {_volume_target(v) for v in override}
            return [v for v in base if _volume_target(v) not in targets] + override
        if key in ("secrets", "configs"):  # unique by the path inside the container
            paths = {target_path(key, v) for v in override}
            return [v for v in base if target_path(key, v) not in paths] + override
        return base + [item for item in override if item not in base]
    return override


def _volume_target(volume: object) -> object:
    if isinstance(volume, Mapping):
        return volume.get("target")
    if isinstance(volume, str):
        parts = volume.split(":")
        return parts[1] if len(parts) > 1 else parts[0]
    return volume


def normalised(document: dict[str, Any], file: Path) -> dict[str, Any]:
    """Lists that Compose merges by key, as dicts (environment, labels, sysctls, networks,
    depends_on); everything else as written."""
    services = document.get("services")
    if isinstance(services, Mapping):
        document = dict(document)
        document["services"] = {
            name: _normalised_service(spec, f"{file}: services.{name}") if isinstance(spec, Mapping) else spec
            for name, spec in services.items()
        }
    return document


def _normalised_service(spec: Mapping[str, Any], where: str) -> dict[str, Any]:
    spec = dict(spec)
    for key in ("environment", "labels", "sysctls"):
        if isinstance(spec.get(key), list):
            spec[key] = dict(pair(item, f"{where}.{key}[{i}]") for i, item in enumerate(spec[key]))
    for key, value in (("networks", None), ("depends_on", {"condition": "service_started"})):
        if isinstance(spec.get(key), list):
            spec[key] = {_listed(item, f"{where}.{key}[{i}]", key): value for i, item in enumerate(spec[key])}
    for key in ("env_file", "label_file"):
        if isinstance(spec.get(key), str):
            spec[key] = [spec[key]]
    if isinstance(spec.get("expose"), list):
        spec["expose"] = [str(port) if isinstance(port, int) else port for port in spec["expose"]]
    if isinstance(spec.get("build"), str):
        spec["build"] = {"context": spec["build"]}
    if isinstance(spec.get("build"), Mapping) and isinstance(spec["build"].get("args"), list):
        args = spec["build"]["args"]
        spec["build"] = {
            **spec["build"],
            "args": dict(pair(a, f"{where}.build.args[{i}]") for i, a in enumerate(args)),
        }
    return spec


def _listed(item: object, where: str, key: str) -> str:
    """A name in the list form of ``networks`` or ``depends_on``."""
    if isinstance(item, str) and item:
        return item
    what = "network" if key == "networks" else "service"
    raise ComposeError(
        f"{where}: {item!r} is not a {what} name; in the list form each entry is a name (for "
        f"{'aliases or ipv4_address' if key == 'networks' else 'a condition'}, write {key} as a mapping: "
        f"{key}: {{NAME: {{...}}}})"
    )


def pair(item: object, where: str) -> tuple[str, Any]:
    """``KEY=value`` (``KEY`` alone: None), as the list forms of environment and labels hold it."""
    if not isinstance(item, str):
        raise ComposeError(f"{where}: each entry must be a 'KEY=value' string, got {item!r}")
    key, sep, value = item.partition("=")
    if not key:
        raise ComposeError(f"{where}: {item!r} has no name before its '='")
    return key, (value if sep else None)


# -- relative paths of another directory -----------------------------------------------------


def absolute(document: Mapping[str, Any], directory: Path) -> dict[str, Any]:
    """``document``'s relative paths made absolute against ``directory``, where Compose
    resolves them: build contexts, env and label files, bind mounts' sources, and the
    top-level secrets' and configs' files."""
    document = dict(document)
    services = document.get("services")
    if isinstance(services, Mapping):
        document["services"] = {
            name: _absolute_service(spec, directory) if isinstance(spec, Mapping) else spec
            for name, spec in services.items()
        }
    for key in ("secrets", "configs"):
        if isinstance(document.get(key), Mapping):
            document[key] = {
                name: {**spec, "file": _path(spec["file"], directory)}
                if isinstance(spec, Mapping) and isinstance(spec.get("file"), str)
                else spec
                for name, spec in document[key].items()
            }
    return document


def _absolute_service(spec: Mapping[str, Any], directory: Path) -> dict[str, Any]:
    spec = dict(spec)
    build = spec.get("build")
    if isinstance(build, Mapping):
        context = build.get("context", ".")
        if isinstance(context, str) and not re.match(r"^[a-z]+://|^git@|^github\.com/", context):
            spec["build"] = {**build, "context": _path(context, directory)}
    for key in ("env_file", "label_file"):
        if isinstance(spec.get(key), list):
            spec[key] = [
                {**entry, "path": _path(entry["path"], directory)}
                if isinstance(entry, Mapping) and isinstance(entry.get("path"), str)
                else _path(entry, directory)
                if isinstance(entry, str)
                else entry
                for entry in spec[key]
            ]
    if isinstance(spec.get("volumes"), list):
        spec["volumes"] = [_absolute_volume(volume, directory) for volume in spec["volumes"]]
    return spec


def _absolute_volume(volume: object, directory: Path) -> object:
    if isinstance(volume, str):
        source, sep, rest = volume.partition(":")
        if sep and source.startswith("."):  # a bind mount's host path (a name is a volume)
            return f"{_path(source, directory)}:{rest}"
    elif isinstance(volume, Mapping) and volume.get("type") == "bind" and isinstance(volume.get("source"), str):
        return {**volume, "source": _path(volume["source"], directory)}
    return volume


def _path(path: str, directory: Path) -> str:
    if not path or path.startswith("~") or os.path.isabs(path):
        return path
    return os.path.normpath(directory / path)


# -- include ----------------------------------------------------------------------------------


def _include(document: dict[str, Any], file: Path, project: Project) -> dict[str, Any]:
    """``document`` with the resources of the projects its ``include:`` names."""
    if "include" not in document:
        return document
    entries = document.pop("include")
    where = f"{file}: include"
    if entries is None:
        return document
    if not isinstance(entries, list):
        raise ComposeError(f"{where} must be a list of paths (or of mappings with 'path'), got {entries!r}")
    imported: dict[str, dict[str, Any]] = {}
    sources: dict[tuple[str, str], str] = {}  # (resource, name): the include that brought it
    for i, entry in enumerate(entries):
        at = f"{where}[{i}]"
        files, sub = _included_project(entry, at, file, project)
        resources = absolute(read_files(files, sub), sub.directory)
        for key in resources:
            if key not in INCLUDED_TOP and not str(key).startswith("x-"):
                raise ComposeError(
                    f"{files[0]}: key {key!r} at the top level of an included file is not supported (included "
                    f"from {at}); an included file brings in {', '.join(RESOURCES)}"
                )
        for key in RESOURCES:
            for name, spec in (resources.get(key) or {}).items():
                here = (document.get(key) or {}).get(name) if isinstance(document.get(key), Mapping) else None
                earlier = imported.get(key, {}).get(name)
                if (here is not None and here != spec) or (earlier is not None and earlier != spec):
                    other = "this file" if here is not None else sources[(key, name)]
                    raise ComposeError(
                        f"{at}: {key}.{name} of {files[0]} is defined in {other} too: Compose refuses a "
                        f"resource defined twice through include; rename one, or change the included one with "
                        f"an override file in the include's path ('path: [{files[0].name}, override.yaml]')"
                    )
                imported.setdefault(key, {})[name] = spec
                sources[(key, name)] = f"include[{i}] ({files[0]})"
    for key, specs in imported.items():
        own = document.get(key) if isinstance(document.get(key), Mapping) else {}
        document[key] = {**specs, **(own or {})}  # included ones first: the include is written first
    return document


def _included_project(entry: object, at: str, file: Path, project: Project) -> tuple[list[Path], Project]:
    if isinstance(entry, str):
        entry = {"path": entry}
    if not isinstance(entry, Mapping):
        raise ComposeError(f"{at}: each entry is a path or a mapping with 'path', got {entry!r}")
    for key in entry:
        if key not in INCLUDE_KEYS:
            raise ComposeError(f"{at}: key {key!r} is not one of {', '.join(INCLUDE_KEYS)}")
    paths = _strings(entry.get("path"), f"{at}.path", required=True)
    files = []
    for j, path in enumerate(paths):
        resolved = (project.directory / path).resolve()
        if not resolved.is_file():
            raise ComposeError(f"{at}.path" + (f"[{j}]" if len(paths) > 1 else "") + f": {path!r}: no such file "
                               f"({resolved})")  # fmt: skip
        files.append(resolved)
    chain = (*project.chain, file)
    if files[0] in chain:
        cycle = " includes ".join(str(f) for f in (*chain[chain.index(files[0]) :], files[0]))
        raise ComposeError(f"{at}: an include cycle: {cycle}")
    directory = files[0].parent
    if entry.get("project_directory") is not None:
        given = _strings(entry["project_directory"], f"{at}.project_directory", required=True, single=True)[0]
        directory = (project.directory / given).resolve()
        if not directory.is_dir():
            raise ComposeError(f"{at}.project_directory: {given!r} is not a directory ({directory})")
    env_files = [(project.directory / f).resolve() for f in _strings(entry.get("env_file"), f"{at}.env_file")]
    for env_file in env_files:
        if not env_file.is_file():
            raise ComposeError(f"{at}.env_file: no such file ({env_file})")
    if not env_files and (directory / ".env").is_file():
        env_files = [directory / ".env"]
    # The including project's variables win: the included .env only fills in what they lack.
    values: dict[str, str] = {}
    for env_file in env_files:
        values.update(read_env_file(env_file, Variables([values, *project.variables.layers])))
    return files, Project(directory, Variables([*project.variables.layers, values]), chain)


def _strings(value: object, where: str, required: bool = False, single: bool = False) -> list[str]:
    if value is None and not required:
        return []
    if isinstance(value, str) and value:
        return [value]
    if not single and isinstance(value, list) and value and all(isinstance(v, str) and v for v in value):
        return value
    shape = "a path" if single else "a path or a list of paths"
    raise ComposeError(f"{where} must be {shape}, got {value!r}")


# -- extends ---------------------------------------------------------------------------------


class _Extender:
    """Services' ``extends`` resolved, each service once; other files read once."""

    def __init__(self, variables: Variables):
        self.variables = variables
        self.others: dict[Path, dict[str, Any]] = {}  # another file's services, paths made absolute
        self.done: dict[tuple[Path, str], Any] = {}
        self.replaced: dict[Path, list[Replaced]] = {}  # a file's !reset/!override paths

    def resolve(self, document: dict[str, Any], file: Path, replaced: list[Replaced]) -> dict[str, Any]:
        services = document.get("services")
        if not isinstance(services, Mapping) or not any(
            isinstance(spec, Mapping) and "extends" in spec for spec in services.values()
        ):
            return document
        self.replaced[file] = replaced
        resolved = {name: self.service(file, str(name), services, ()) for name in services}
        return {**document, "services": resolved}

    def service(self, file: Path, name: str, services: Mapping[str, Any], trail: tuple[tuple[Path, str], ...]) -> Any:
        spec = services[name]
        if not isinstance(spec, Mapping) or "extends" not in spec:
            return spec
        if (file, name) in self.done:
            return self.done[(file, name)]
        if (file, name) in trail:
            chain = [*trail[trail.index((file, name)) :], (file, name)]
            raise ComposeError(
                f"{file}: services.{name}.extends: services extend each other in a cycle: "
                + " -> ".join(f"{service} ({path})" for path, service in chain)
            )
        where = f"{file}: services.{name}.extends"
        ref, other = _reference(spec["extends"], where)
        base_file, base_services = file, services
        if other is not None:
            base_file = (file.parent / other).resolve()
            if not base_file.is_file():
                raise ComposeError(f"{where}.file: {other!r}: no such file ({base_file})")
            base_services = self._services_of(base_file, where)
        if ref not in base_services:
            inside = "this file" if other is None else str(base_file)
            raise ComposeError(
                f"{where}.service: service {ref!r} is not defined in {inside}"
                + (f"; it has {', '.join(map(str, base_services))}" if base_services else "")
            )
        base = self.service(base_file, ref, base_services, (*trail, (file, name)))
        if base is None:  # "base:" with nothing: a service of no keys
            base = {}
        if not isinstance(base, Mapping):
            raise ComposeError(f"{base_file}: services.{ref} must be a mapping of service keys, got {base!r}")
        # The extending file's !reset/!override of this service clear the base's keys too.
        prefix = ("services", name)
        base = without(base, [path[2:] for path in self.replaced.get(file, ()) if path[:2] == prefix and len(path) > 2])
        merged = merge(base, {k: v for k, v in spec.items() if k != "extends"})
        self.done[(file, name)] = merged
        return merged

    def _services_of(self, file: Path, where: str) -> dict[str, Any]:
        if file not in self.others:
            document = normalised(interpolate(read_document(file), self.variables, str(file)), file)
            services = document.get("services")
            if not isinstance(services, Mapping):
                raise ComposeError(f"{where}.file: {file} has no 'services:' mapping to extend a service from")
            self.others[file] = absolute({"services": services}, file.parent)["services"]
        return self.others[file]


def _reference(value: object, where: str) -> tuple[str, str | None]:
    """``extends``: the base service's name, and its file (None: this file)."""
    if isinstance(value, str) and value:
        return value, None
    if isinstance(value, Mapping):
        for key in value:
            if key not in EXTENDS_KEYS:
                raise ComposeError(f"{where}: key {key!r} is not one of service, file")
        service, file = value.get("service"), value.get("file")
        if not isinstance(service, str) or not service:
            raise ComposeError(f"{where}.service: give the name of the service to extend, got {service!r}")
        if file is not None and (not isinstance(file, str) or not file):
            raise ComposeError(f"{where}.file must be a path to a Compose file, got {file!r}")
        return service, file
    raise ComposeError(f"{where}: a service name, or a mapping with 'service' (and 'file'), got {value!r}")


# -- profiles -------------------------------------------------------------------------------


def profiles_of(spec: object, where: str) -> list[str]:
    """A service's ``profiles``: names such as ``debug``."""
    value = spec.get("profiles") if isinstance(spec, Mapping) else None
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(p, str) and PROFILE.fullmatch(p) for p in value):
        raise ComposeError(
            f"{where}.profiles must be a list of profile names (letters, digits, '_', '.', '-'), got {value!r}"
        )
    return value


def active_profiles(argument: object, variables: Variables) -> list[str]:
    """``profiles=`` when given, else ``COMPOSE_PROFILES`` (comma-separated) from the variables."""
    if argument is None:
        given = variables.get("COMPOSE_PROFILES") or ""
        return [p.strip() for p in given.split(",") if p.strip()]
    if isinstance(argument, str) or not isinstance(argument, Iterable):
        raise TypeError(f"compose(): profiles must be a list of profile names, got {argument!r}")
    names = list(argument)
    for name in names:
        if not isinstance(name, str):
            raise TypeError(f"compose(): profiles must be a list of profile names, got {argument!r}")
        if name != "*" and not PROFILE.fullmatch(name):
            raise ValueError(
                f"compose(): profiles={names!r}: {name!r} is not a profile name (letters, digits, '_', '.', '-'; "
                "'*' for all)"
            )
    return names


def enabled(
    profiles: Mapping[str, list[str]], active: list[str], explicit: Iterable[str]
) -> tuple[list[str], list[str]]:
    """The services that start: those without profiles, those with an active one, and
    those named (whose profiles then count as active, as under ``docker compose up NAME``);
    and the profiles active in the end."""
    on = list(active)
    for name in explicit:
        on += [p for p in profiles.get(name, ()) if p not in on]
    return [name for name, own in profiles.items() if not own or "*" in on or set(on).intersection(own)], on
