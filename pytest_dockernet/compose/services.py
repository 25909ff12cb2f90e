"""One service of a Compose file, checked key by key into a :class:`ServiceDef`: the
values ``container()`` takes, with paths made absolute against the project directory.
Every refusal names the file, the service and the key's path (the values' own checks are
in :mod:`.values`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..container_files import ContainerFile
from ..errors import ComposeError
from ..labels import PREFIX
from .build_keys import BuildDef, build_def
from .engine_keys import engine_options, label_files, volumes_from
from .env import Variables
from .replicas import replica_count
from .service_keys import (
    PLATFORM,
    dns_values,
    extra_hosts,
    ip_address,
    mac_address,
    sysctls,
    tmpfs_entry,
    ulimits,
)
from .spec_keys import check_keys, refusal
from .spec_keys import ignored as ignored_keys
from .spec_keys import supported as supported_keys
from .values import (
    Mount,
    byte_size,
    expose,
    flag,
    healthcheck,
    items,
    mapping,
    mount,
    name,
    ports,
    scalar,
    seconds,
    strings,
    text,
)

# Each key's status (supported, ignored or refused) and why: compose/spec_keys.py's table.
SUPPORTED = supported_keys("service")
IGNORED = ignored_keys("service")
CONDITIONS = ("service_started", "service_healthy", "service_completed_successfully")
NETWORK_MODES = ("host", "none", "bridge")
NETWORK_KEYS = ("aliases", "ipv4_address", "ipv6_address", "mac_address", "priority")


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
    volumes_from: dict[str, str] = field(default_factory=dict)  # {service: "ro" or "rw"}
    replicas: int = 1  # its containers (scale, deploy.replicas)
    files: dict[str, ContainerFile] = field(default_factory=dict)  # its secrets and configs, by path (secrets.py)
    # By network: what its endpoint takes beyond aliases and ipv4 ({"ipv6_address": ...}).
    endpoints: dict[str, dict[str, str]] = field(default_factory=dict)
    dns: list[str] = field(default_factory=list)
    dns_search: list[str] = field(default_factory=list)
    dns_opt: list[str] = field(default_factory=list)
    stop_timeout: int | None = None  # stop_grace_period, in whole seconds
    platform: str | None = None  # checked against the engine's (service_keys.check_on_engine)

    def requires(self) -> list[str]:
        """The services this one needs first (``depends_on``, ``links``, ``volumes_from``,
        ``network_mode``)."""
        needed = [*self.depends_on, *self.links, *self.volumes_from]
        if self.shares:
            needed.append(self.shares)
        return list(dict.fromkeys(needed))

    def requirement_of(self, other: str) -> str:
        if other in self.depends_on:
            return "depends_on"
        if other in self.links:
            return "links"
        return "volumes_from" if other in self.volumes_from else "network_mode"

    def named_volumes(self) -> list[str]:
        return [m.source for m in self.mounts if m.kind == "volume" and m.source]

    def aliases(self) -> list[str]:
        """The names it resolves by besides its service name, on every network it joins."""
        return list(dict.fromkeys(n for n in (self.container_name, self.hostname) if n and n != self.name))


def unsupported(where: str, what: str, key: str, supported: Iterable[str], section: str) -> str:
    """Why ``key`` is refused: the reason of compose/spec_keys.py's ``section`` for a key of
    the specification, a "did you mean" for any other."""
    return refusal(where, what, key, section, supported)


def check_service(
    service_name: str,
    spec: object,
    where: str,
    root: Path,
    variables: Variables,
    ignored: list[str],
    read_env_file: Callable[..., dict[str, str]],
) -> ServiceDef:
    """``spec``, the mapping of service ``service_name``, as a :class:`ServiceDef`; ``where``
    is ``"FILE: services.NAME"``, ``ignored`` collects the keys that change nothing here."""
    name(service_name, where, "service name")
    if not isinstance(spec, Mapping):
        raise ComposeError(f"{where} must be a mapping of service keys, got {spec!r}")
    check_keys("service", spec, where, f"service {service_name!r}", ignored, f"services.{service_name}")
    service = ServiceDef(service_name)
    service.image = text(spec.get("image"), f"{where}.image")
    if service.image is not None and (service.image.strip() != service.image or " " in service.image):
        raise ComposeError(f"{where}.image: {service.image!r} is not an image reference such as 'redis:7'")
    service.build = build_def(spec.get("build"), f"{where}.build", root, ignored)
    if service.image is None and service.build is None:
        raise ComposeError(f"{where}: give the service an 'image:' or a 'build:'")
    service.command = _command(spec.get("command"), f"{where}.command")
    service.entrypoint = _command(spec.get("entrypoint"), f"{where}.entrypoint")
    service.environment = _environment(spec, where, root, variables, read_env_file)
    service.ports = ports(spec.get("ports"), f"{where}.ports")
    service.expose = expose(spec.get("expose"), f"{where}.expose")
    service.networks, service.endpoints = _networks(spec.get("networks"), f"{where}.networks")
    service.network_mode = text(spec.get("network_mode"), f"{where}.network_mode")
    service.links = _links(spec.get("links"), f"{where}.links")
    service.depends_on = _depends_on(spec.get("depends_on"), f"{where}.depends_on", ignored, service_name)
    path = f"services.{service_name}.healthcheck"
    service.healthcheck = healthcheck(spec.get("healthcheck"), f"{where}.healthcheck", ignored, path)
    service.mounts = [
        mount(v, f"{where}.volumes[{i}]", root) for i, v in enumerate(items(spec.get("volumes"), f"{where}.volumes"))
    ]
    if spec.get("user") is not None:
        service.user = scalar(spec["user"], f"{where}.user")
    service.working_dir = text(spec.get("working_dir"), f"{where}.working_dir")
    for key in ("hostname", "container_name"):  # both are names the service resolves by
        if spec.get(key) is not None:
            setattr(service, key, name(spec[key], f"{where}.{key}", key.replace("_", " ")))
    service.cap_add = strings(spec.get("cap_add"), f"{where}.cap_add", "a capability name such as NET_ADMIN")
    service.privileged = flag(spec.get("privileged"), f"{where}.privileged")
    from_files = label_files(spec.get("label_file"), f"{where}.label_file", root, lambda p: read_env_file(p, variables))
    service.labels = {**_labels(from_files, f"{where}.label_file"), **_labels(spec.get("labels"), f"{where}.labels")}
    for key in ("tty", "init"):
        if key in spec:
            service.docker_options[key] = flag(spec[key], f"{where}.{key}")
    if spec.get("stop_signal") is not None:
        service.docker_options["stop_signal"] = text(spec["stop_signal"], f"{where}.stop_signal")
    service.docker_options.update(engine_options(spec, where))
    service.volumes_from = volumes_from(spec.get("volumes_from"), f"{where}.volumes_from")
    _check_network_mode(service, where)
    read_keys(service, spec, where)
    service.replicas = replica_count(spec, where, ignored, service_name)
    return service


def _command(value: object, where: str) -> str | list[str] | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, list) and value and all(isinstance(v, (str, int, float)) for v in value):
        return [str(v) for v in value]
    if value == []:
        raise ComposeError(f"{where}: an empty list; give the command, or leave the key out for the image's own")
    raise ComposeError(f"{where} must be a string or a list of strings, got {value!r}")


def _environment(
    spec: Mapping[str, Any], where: str, root: Path, variables: Variables, read_env_file: Callable[..., dict[str, str]]
) -> dict[str, str]:
    environment: dict[str, str] = {}
    for i, entry in enumerate(items(spec.get("env_file"), f"{where}.env_file")):
        at, required = f"{where}.env_file[{i}]", True
        if isinstance(entry, Mapping):
            unknown = [str(k) for k in entry if k not in ("path", "required")]
            if unknown:
                raise ComposeError(unsupported(at, "an env_file entry", unknown[0], ("path", "required"), "env_file"))
            required, entry = flag(entry.get("required"), f"{at}.required", default=True), entry.get("path")
            at += ".path"
        if not isinstance(entry, str) or not entry:
            raise ComposeError(f"{at}: each entry must be a path, got {entry!r}")
        path = (root / entry).resolve()
        if not path.is_file():
            if required:
                raise ComposeError(f"{at}: {entry!r}: no such file ({path})")
            continue
        try:
            environment.update(read_env_file(path, variables))
        except ComposeError as exc:
            raise ComposeError(f"{at}: {exc}") from None
    for key, value in mapping(spec.get("environment"), f"{where}.environment").items():
        if not isinstance(key, str) or not key or "=" in key:
            raise ComposeError(f"{where}.environment: {key!r} is not a variable name")
        if value is None:  # "- NAME" alone: from the environment, dropped when unset there
            value = variables.get(key)
            if value is None:
                continue
        environment[key] = scalar(value, f"{where}.environment.{key}")
    return environment


def _labels(value: object, where: str) -> dict[str, str]:
    labels = {}
    for key, item in mapping(value, where).items():
        if not isinstance(key, str) or not key:
            raise ComposeError(f"{where}: {key!r} is not a label name")
        if key == PREFIX or key.startswith(PREFIX + "."):
            raise ComposeError(f"{where}.{key}: labels starting with {PREFIX!r} are the plugin's own; pick another")
        labels[key] = "" if item is None else scalar(item, f"{where}.{key}")
    return labels


def _networks(value: object, where: str) -> tuple[dict[str, tuple[list[str], str | None]], dict[str, dict[str, str]]]:
    networks: dict[str, tuple[list[str], str | None]] = {}
    endpoints: dict[str, dict[str, str]] = {}
    priorities: dict[str, int] = {}
    for net, spec in mapping(value, where).items():
        at = f"{where}.{net}"
        spec = mapping(spec, at)
        for key in spec:
            if key not in NETWORK_KEYS:
                raise ComposeError(unsupported(at, "a service's network", str(key), NETWORK_KEYS, "service network"))
        aliases = [name(a, f"{at}.aliases[{i}]", "alias") for i, a in enumerate(items(spec.get("aliases"), at))]
        address = spec.get("ipv4_address")
        if address is not None:
            address = ip_address(address, f"{at}.ipv4_address", 4)
        extra = endpoints.setdefault(str(net), {})
        if spec.get("ipv6_address") is not None:
            extra["ipv6_address"] = ip_address(spec["ipv6_address"], f"{at}.ipv6_address", 6)
        if spec.get("mac_address") is not None:
            extra["mac_address"] = mac_address(spec["mac_address"], f"{at}.mac_address")
        priority = spec.get("priority")
        if priority is not None and (not isinstance(priority, int) or isinstance(priority, bool)):
            raise ComposeError(f"{at}.priority: {priority!r} is not a whole number")
        networks[str(net)] = (aliases, address)
        priorities[str(net)] = priority or 0
    # Joined in this order, as Compose joins them: the highest priority first (eth0).
    return dict(sorted(networks.items(), key=lambda item: -priorities[item[0]])), endpoints


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
    # What the engine would refuse only once the stack's first containers run.
    shared = kind in ("service", "container")
    whose = "another service's" if shared else f"the {mode} network's"
    for key, given in (("hostname", service.hostname), ("ports", service.ports), ("expose", service.expose)):
        if given and (shared or (key == "hostname" and mode == "host")):
            raise ComposeError(
                f"{where}.{key}: a service in {whose} network namespace (network_mode: {mode}) cannot set {key}"
                + (f"; set it on {target!r}" if shared and key != "hostname" else "")
            )
    if service.links and mode != "bridge":
        raise ComposeError(
            f"{where}.links: links work on the service's networks (or network_mode: bridge), not with "
            f"network_mode: {mode}"
        )


def _links(value: object, where: str) -> dict[str, str]:
    links = {}
    for i, entry in enumerate(items(value, where)):
        if not isinstance(entry, str):
            raise ComposeError(f"{where}[{i}]: {entry!r} is not 'service' or 'service:alias'")
        target, _, alias = entry.partition(":")
        links[name(target, f"{where}[{i}]", "service name")] = name(alias or target, f"{where}[{i}]", "link alias")
    return links


def _depends_on(value: object, where: str, ignored: list[str], service_name: str) -> dict[str, str]:
    depends = {}
    for other, spec in mapping(value, where).items():
        at = f"{where}.{other}"
        spec = mapping(spec, at)
        for key in spec:
            if key == "restart":
                flag(spec[key], f"{at}.restart")
                ignored.append(
                    f"services.{service_name}.depends_on.{other}.restart (the test restarts containers itself)"
                )
            elif key not in ("condition", "required"):
                raise ComposeError(f"{at}: key {key!r} is not supported: use 'condition' (and 'required')")
        condition = spec.get("condition", "service_started")
        if condition not in CONDITIONS:
            raise ComposeError(f"{at}.condition: {condition!r} is not one of {', '.join(CONDITIONS)}")
        if not flag(spec.get("required"), f"{at}.required", default=True):
            condition = "optional:" + condition  # dropped when the service is not in the file
        depends[str(other)] = condition
    return depends


def read_keys(service: ServiceDef, spec: Mapping[str, Any], where: str) -> None:
    """The keys of :data:`KEYS` of one service's ``spec`` into ``service`` (after its
    networks, network mode and mounts are read)."""
    options = service.docker_options
    if spec.get("sysctls") is not None:
        options["sysctls"] = sysctls(spec["sysctls"], f"{where}.sysctls", service.network_mode)
    if spec.get("extra_hosts") is not None:
        options["extra_hosts"] = extra_hosts(spec["extra_hosts"], f"{where}.extra_hosts")
    for key in ("dns", "dns_search", "dns_opt"):
        value = spec.get(key)
        if value is not None:
            setattr(service, key, dns_values(key, value, f"{where}.{key}"))
            if service.network_mode == "host" or service.shares or str(service.network_mode).startswith("container:"):
                raise ComposeError(
                    f"{where}.{key}: a service in another network namespace (network_mode: {service.network_mode}) "
                    "uses that namespace's resolver; the engine refuses DNS settings for it"
                )
    tmpfs = {m.target: ",".join(m.flags) for m in service.mounts if m.kind == "tmpfs"}
    service.mounts = [m for m in service.mounts if m.kind != "tmpfs"]
    for i, entry in enumerate([spec["tmpfs"]] if isinstance(spec.get("tmpfs"), str) else items(spec.get("tmpfs"), "")):
        at = f"{where}.tmpfs" if isinstance(spec.get("tmpfs"), str) else f"{where}.tmpfs[{i}]"
        target, options_text = tmpfs_entry(entry, at)
        if target in tmpfs:
            raise ComposeError(f"{at}: {target} is mounted twice (tmpfs and a volume of type tmpfs); give it once")
        tmpfs[target] = options_text
    if tmpfs:
        options["tmpfs"] = tmpfs
    if spec.get("shm_size") is not None:
        options["shm_size"] = byte_size(spec["shm_size"], f"{where}.shm_size")
    if spec.get("ulimits") is not None:
        options["ulimits"] = ulimits(spec["ulimits"], f"{where}.ulimits")
    if spec.get("stop_grace_period") is not None:
        service.stop_timeout = math.ceil(seconds(spec["stop_grace_period"], f"{where}.stop_grace_period"))
    if spec.get("mac_address") is not None:
        options["mac_address"] = mac_address(spec["mac_address"], f"{where}.mac_address")
    for net, extra in service.endpoints.items():
        mac = extra.pop("mac_address", None)
        if mac is None:
            continue
        if net != next(iter(service.networks)):
            extra["mac_address"] = mac  # needs engine API 1.44: on_engine.check_on_engine decides
        elif options.setdefault("mac_address", mac) != mac:
            raise ComposeError(
                f"{where}.networks.{net}.mac_address: {mac} differs from the service's mac_address "
                f"{options['mac_address']}; give one of them"
            )
    if spec.get("platform") is not None:
        platform = str(text(spec["platform"], f"{where}.platform"))
        if not PLATFORM.match(platform.lower()):
            raise ComposeError(f"{where}.platform: {platform!r} is not os/arch[/variant], such as linux/amd64")
        service.platform = platform
    if spec.get("runtime") is not None:
        options["runtime"] = text(spec["runtime"], f"{where}.runtime")
