"""One service of a Compose file, checked key by key into a :class:`ServiceDef`: the
values ``container()`` takes, with paths made absolute against the project directory.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .compose_env import Variables
from .errors import ComposeError

SUPPORTED = (
    "image build command entrypoint environment env_file ports expose networks network_mode links depends_on "
    "healthcheck volumes user working_dir hostname container_name cap_add privileged labels tty init stop_signal"
).split()
# Accepted, and listed in a warning: they change neither networking nor start-up here.
IGNORED = {
    "restart": "the test decides when containers stop and start",
    "logging": "logs stay with the engine's default driver, for the failure report",
    "deploy": "only deploy.resources is accepted",
    "stop_grace_period": "teardown removes containers at once",
    "stdin_open": "stdin stays closed; tty: true keeps a shell running",
    "pull_policy": "images are pulled when missing",
    "mem_limit": "resource limits are not applied",
    "mem_reservation": "resource limits are not applied",
    "memswap_limit": "resource limits are not applied",
    "cpus": "resource limits are not applied",
    "cpu_shares": "resource limits are not applied",
    "cpuset": "resource limits are not applied",
    "pids_limit": "resource limits are not applied",
    "shm_size": "resource limits are not applied",
    "ulimits": "resource limits are not applied",
    "oom_score_adj": "resource limits are not applied",
    "develop": "file watching is for docker compose watch",
}
CONDITIONS = ("service_started", "service_healthy", "service_completed_successfully")
NETWORK_MODES = ("host", "none", "bridge")
# [[host_ip:]host_port:]container_port[/protocol], ports or ranges ("8000-8002")
_PORT = re.compile(
    r"^(?:(?:(?P<ip>\[[0-9a-fA-F:]+\]|[0-9.]+):)?(?P<host>\d*(?:-\d+)?):)?"
    r"(?P<target>\d+(?:-\d+)?)(?:/(?P<proto>tcp|udp|sctp))?$"
)
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(us|ms|s|m|h)")
_SECONDS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclass
class BuildDef:
    context: Path
    dockerfile: str | None = None
    args: dict[str, str] = field(default_factory=dict)


@dataclass
class Mount:
    kind: str  # "bind", "volume" (named) or "anonymous"
    source: str | None
    target: str
    read_only: bool = False


@dataclass
class ServiceDef:
    """A service as ``compose()`` starts it; ``networks`` is ``{network: (aliases, ipv4)}``,
    ``depends_on`` ``{service: condition}``, ``links`` ``{service: alias}``."""

    name: str
    image: str | None = None
    build: BuildDef | None = None
    command: str | list[str] | None = None
    entrypoint: str | list[str] | None = None
    environment: dict[str, str] = field(default_factory=dict)
    ports: dict[str, Any] = field(default_factory=dict)
    expose: list[str] = field(default_factory=list)
    networks: dict[str, tuple[list[str], str | None]] = field(default_factory=dict)
    network_mode: str | None = None  # "host", "none", "bridge", "service:NAME", "container:NAME"
    shares: str | None = None  # the service whose network namespace it joins
    links: dict[str, str] = field(default_factory=dict)
    depends_on: dict[str, str] = field(default_factory=dict)
    healthcheck: dict[str, Any] | None = None
    mounts: list[Mount] = field(default_factory=list)
    user: str | None = None
    working_dir: str | None = None
    hostname: str | None = None
    container_name: str | None = None
    cap_add: list[str] = field(default_factory=list)
    privileged: bool = False
    labels: dict[str, str] = field(default_factory=dict)
    docker_options: dict[str, Any] = field(default_factory=dict)

    def requires(self) -> list[str]:
        """The services this one needs first (``depends_on``, ``links``, ``network_mode``)."""
        needed = [*self.depends_on, *self.links]
        if self.shares:
            needed.append(self.shares)
        return list(dict.fromkeys(needed))

    def requirement_of(self, other: str) -> str:
        if other in self.depends_on:
            return "depends_on"
        return "links" if other in self.links else "network_mode"

    def named_volumes(self) -> list[str]:
        return [m.source for m in self.mounts if m.kind == "volume" and m.source]

    def aliases(self) -> list[str]:
        """The names it resolves by besides its service name, on every network it joins."""
        return list(dict.fromkeys(n for n in (self.container_name, self.hostname) if n and n != self.name))


def unsupported(where: str, what: str, key: str, supported: Iterable[str]) -> str:
    close = difflib.get_close_matches(key, list(supported), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return (
        f"{where}: key {key!r} of {what} is not supported by pytest-dockernet's compose(){hint}; "
        f"supported: {', '.join(supported)}"
    )


def check_service(
    name: str,
    spec: object,
    where: str,
    root: Path,
    variables: Variables,
    ignored: list[str],
    read_env_file: Callable[..., dict[str, str]],
) -> ServiceDef:
    if not _NAME.match(name):
        raise ComposeError(f"{where}: {name!r} is not a service name (letters, digits, '_', '.', '-')")
    if not isinstance(spec, Mapping):
        raise ComposeError(f"{where} must be a mapping of service keys, got {spec!r}")
    for key in spec:
        if key in IGNORED:
            if key == "deploy" and set(_map(spec[key], f"{where}.deploy")) - {"resources"}:
                extra = sorted(set(spec[key]) - {"resources"})
                raise ComposeError(f"{where}.deploy: {extra} not supported (deploy.resources is accepted and ignored)")
            ignored.append(f"services.{name}.{key} ({IGNORED[key]})")
        elif key not in SUPPORTED and not str(key).startswith("x-"):
            raise ComposeError(unsupported(where, f"service {name!r}", str(key), SUPPORTED))
    service = ServiceDef(name)
    service.image = _text(spec, "image", where)
    service.build = _build(spec.get("build"), f"{where}.build", root)
    if service.image is None and service.build is None:
        raise ComposeError(f"{where}: give the service an 'image:' or a 'build:'")
    service.command = _command(spec, "command", where)
    service.entrypoint = _command(spec, "entrypoint", where)
    service.environment = _environment(spec, where, root, variables, read_env_file)
    service.ports = _ports(spec.get("ports"), f"{where}.ports")
    service.expose = [str(p) for p in _list(spec.get("expose"), f"{where}.expose")]
    service.networks = _networks(spec.get("networks"), f"{where}.networks")
    service.network_mode = _text(spec, "network_mode", where)
    _check_network_mode(service, where)
    service.links = _links(spec.get("links"), f"{where}.links")
    service.depends_on = _depends_on(spec.get("depends_on"), f"{where}.depends_on", ignored, name)
    service.healthcheck = _healthcheck(spec.get("healthcheck"), f"{where}.healthcheck")
    service.mounts = [_mount(v, f"{where}.volumes", root) for v in _list(spec.get("volumes"), f"{where}.volumes")]
    for key in ("user", "working_dir", "hostname", "container_name"):
        value = spec.get(key)
        setattr(service, key, None if value is None else str(value) if key == "user" else _text(spec, key, where))
    if service.container_name is not None and not _NAME.match(service.container_name):
        raise ComposeError(f"{where}.container_name: {service.container_name!r} is not a container name")
    service.cap_add = [str(c) for c in _list(spec.get("cap_add"), f"{where}.cap_add")]
    service.privileged = _bool(spec, "privileged", where)
    service.labels = {
        str(k): "" if v is None else str(v) for k, v in _map(spec.get("labels"), f"{where}.labels").items()
    }
    for key in ("tty", "init"):
        if key in spec:
            service.docker_options[key] = _bool(spec, key, where)
    if spec.get("stop_signal") is not None:
        service.docker_options["stop_signal"] = _text(spec, "stop_signal", where)
    return service


def _text(spec: Mapping[str, Any], key: str, where: str) -> str | None:
    value = spec.get(key)
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value:
        raise ComposeError(f"{where}.{key} must be a non-empty string, got {value!r}")
    return value


def _bool(spec: Mapping[str, Any], key: str, where: str) -> bool:
    value = spec.get(key, False)
    if not isinstance(value, bool):
        raise ComposeError(f"{where}.{key} must be true or false, got {value!r}")
    return value


def _list(value: object, where: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ComposeError(f"{where} must be a list, got {value!r}")
    return value


def _map(value: object, where: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ComposeError(f"{where} must be a mapping, got {value!r}")
    return value


def _command(spec: Mapping[str, Any], key: str, where: str) -> str | list[str] | None:
    value = spec.get(key)
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(v, (str, int, float)) for v in value):
        return [str(v) for v in value]
    raise ComposeError(f"{where}.{key} must be a string or a list of strings, got {value!r}")


def _build(value: object, where: str, root: Path) -> BuildDef | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = {"context": value}
    spec = _map(value, where)
    for key in spec:
        if key not in ("context", "dockerfile", "args"):
            raise ComposeError(unsupported(where, "build", str(key), ("context", "dockerfile", "args")))
    context = (root / str(spec.get("context", "."))).resolve()
    if not context.is_dir():
        raise ComposeError(f"{where}.context: {context} is not a directory")
    args = spec.get("args") or {}
    if isinstance(args, list):
        args = dict(item.partition("=")[::2] for item in args)
    args = {str(k): "" if v is None else str(v) for k, v in _map(args, f"{where}.args").items()}
    dockerfile = spec.get("dockerfile")
    return BuildDef(context, None if dockerfile is None else str(dockerfile), args)


def _environment(
    spec: Mapping[str, Any], where: str, root: Path, variables: Variables, read_env_file: Callable[..., dict[str, str]]
) -> dict[str, str]:
    environment: dict[str, str] = {}
    for entry in _list(spec.get("env_file"), f"{where}.env_file"):
        required = True
        if isinstance(entry, Mapping):
            required, entry = entry.get("required", True), entry.get("path")
        if not isinstance(entry, str):
            raise ComposeError(f"{where}.env_file: each entry must be a path, got {entry!r}")
        path = (root / entry).resolve()
        if not path.is_file():
            if required:
                raise ComposeError(f"{where}.env_file: {entry!r}: no such file ({path})")
            continue
        environment.update(read_env_file(path, variables))
    for key, value in _map(spec.get("environment"), f"{where}.environment").items():
        if value is None:  # "- NAME" alone: from the environment, dropped when unset there
            value = variables.get(str(key))
            if value is None:
                continue
        elif isinstance(value, bool):
            value = "true" if value else "false"
        environment[str(key)] = str(value)
    return environment


def _port_range(text: str, where: str) -> list[int]:
    first, _, last = text.partition("-")
    start, end = int(first), int(last or first)
    if not 0 < start <= end < 65536:
        raise ComposeError(f"{where}: {text!r} is not a port or a range of ports (1-65535)")
    return list(range(start, end + 1))


def _ports(value: object, where: str) -> dict[str, Any]:
    """``{"80/tcp": binding}`` for container(): every published port gets a free host port
    (on the file's host address, if any), so runs of one file never collide."""
    bindings: dict[str, list[Any]] = {}
    for entry in _list(value, where):
        if isinstance(entry, Mapping):
            extra = set(entry) - {"target", "published", "host_ip", "protocol", "mode", "name", "app_protocol"}
            if extra or entry.get("target") is None:
                raise ComposeError(f"{where}: {dict(entry)!r} needs 'target' (and only the Compose port keys)")
            targets = _port_range(str(entry["target"]), where)
            proto, ip = entry.get("protocol", "tcp"), entry.get("host_ip")
        else:
            match = _PORT.match(str(entry))
            if match is None:
                raise ComposeError(f"{where}: {entry!r} is not [[host_ip:]host_port:]container_port[/protocol]")
            targets, proto, ip = _port_range(match["target"], where), match["proto"] or "tcp", match["ip"]
        for target in targets:
            binding = (ip.strip("[]"),) if ip else None
            bindings.setdefault(f"{target}/{proto}", []).append(binding)
    return {key: found[0] if len(found) == 1 else found for key, found in bindings.items()}


def _networks(value: object, where: str) -> dict[str, tuple[list[str], str | None]]:
    networks = {}
    for net, spec in _map(value, where).items():
        spec = _map(spec, f"{where}.{net}")
        for key in spec:
            if key not in ("aliases", "ipv4_address", "priority"):
                keys = ("aliases", "ipv4_address", "priority")
                raise ComposeError(unsupported(f"{where}.{net}", "a service's network", str(key), keys))
        aliases = [str(a) for a in _list(spec.get("aliases"), f"{where}.{net}.aliases")]
        address = spec.get("ipv4_address")
        networks[str(net)] = (aliases, None if address is None else str(address))
    return networks


def _check_network_mode(service: ServiceDef, where: str) -> None:
    mode = service.network_mode
    if mode is None:
        return
    kind, _, target = mode.partition(":")
    if kind in ("service", "container") and target:
        service.shares = target if kind == "service" else None  # container:NAME is resolved by the file
    elif mode not in NETWORK_MODES:
        raise ComposeError(
            f"{where}.network_mode: {mode!r} is not one of 'host', 'none', 'bridge', 'service:NAME', 'container:NAME'"
        )
    if service.networks:
        raise ComposeError(f"{where}: network_mode and networks cannot both be set (as under Compose)")


def _links(value: object, where: str) -> dict[str, str]:
    links = {}
    for entry in _list(value, where):
        target, _, alias = str(entry).partition(":")
        links[target] = alias or target
    return links


def _depends_on(value: object, where: str, ignored: list[str], name: str) -> dict[str, str]:
    depends = {}
    for other, spec in _map(value, where).items():
        spec = _map(spec, f"{where}.{other}")
        for key in spec:
            if key == "restart":
                ignored.append(f"services.{name}.depends_on.{other}.restart (the test restarts containers itself)")
            elif key not in ("condition", "required"):
                raise ComposeError(f"{where}.{other}: key {key!r} is not supported: use 'condition' (and 'required')")
        condition = spec.get("condition", "service_started")
        if condition not in CONDITIONS:
            raise ComposeError(f"{where}.{other}: condition {condition!r} is not one of {', '.join(CONDITIONS)}")
        if spec.get("required", True) is False:
            condition = "optional:" + condition  # dropped when the service is not in the file
        depends[str(other)] = condition
    return depends


def seconds(value: object, where: str) -> float:
    """A Compose duration (``"1m30s"``, ``"500ms"``, or a number of seconds) in seconds."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    text = str(value).strip()
    parts = _DURATION_PART.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ComposeError(f"{where}: {value!r} is not a duration such as '10s', '1m30s' or '500ms'")
    return sum(float(number) * _SECONDS[unit] for number, unit in parts)


def _healthcheck(value: object, where: str) -> dict[str, Any] | None:
    if value is None:
        return None
    spec = _map(value, where)
    keys = ("test", "interval", "timeout", "retries", "start_period", "start_interval", "disable")
    for key in spec:
        if key not in keys:
            raise ComposeError(unsupported(where, "healthcheck", str(key), keys))
    if spec.get("disable"):
        return {"test": ["NONE"]}
    test = spec.get("test")
    if test is None:
        raise ComposeError(f"{where}: give the healthcheck a 'test' (or 'disable: true')")
    if not isinstance(test, (str, list)):
        raise ComposeError(f"{where}.test must be a string or a list, got {test!r}")
    checked: dict[str, Any] = {"test": test}
    for key in ("interval", "timeout", "start_period"):  # start_interval needs API 1.44
        if spec.get(key) is not None:
            checked[key] = seconds(spec[key], f"{where}.{key}")
    if spec.get("retries") is not None:
        checked["retries"] = spec["retries"]
    return checked


def _mount(value: object, where: str, root: Path) -> Mount:
    if isinstance(value, Mapping):
        kind = value.get("type", "volume")
        target, source = value.get("target"), value.get("source")
        read_only = bool(value.get("read_only", False))
        if kind not in ("bind", "volume") or not isinstance(target, str):
            raise ComposeError(f"{where}: {dict(value)!r}: give 'target' and a type of 'bind' or 'volume'")
    elif isinstance(value, str):
        parts = value.split(":")
        if len(parts) > 3:
            raise ComposeError(f"{where}: {value!r} is not 'source:/path/inside[:mode]'")
        if len(parts) == 1:
            return Mount("anonymous", None, parts[0])
        source, target = parts[0], parts[1]
        read_only = len(parts) == 3 and "ro" in parts[2].split(",")
        kind = "bind" if source.startswith((".", "/", "~")) else "volume"
    else:
        raise ComposeError(f"{where}: each entry is 'source:/path/inside[:mode]' or a mapping, got {value!r}")
    if not target.startswith("/"):
        raise ComposeError(f"{where}: {value!r}: the path inside the container must be absolute")
    if kind == "bind":
        if not source:
            raise ComposeError(f"{where}: {value!r}: a bind mount needs its 'source' path")
        source = str((root / Path(str(source)).expanduser()).resolve())
    elif not source:
        return Mount("anonymous", None, target)
    return Mount(kind, str(source), target, read_only)
