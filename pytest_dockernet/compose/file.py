"""Reading a Compose file for ``compose()``: YAML, variables, override files merged as
Compose merges them (with ``include``, ``extends`` and ``!reset``/``!override``: see
:mod:`.structure`), the services ``profiles`` select, and every key checked. The result is
a :class:`ComposeModel` of plain values; nothing here talks to an engine.

The checks are our own rather than the Compose specification's JSON schema: the schema
accepts every Compose key, while ``compose()`` must refuse the ones that would change
networking or start-up and that it does not carry out, naming the key and its service.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..checks import check_subnet
from ..errors import ComposeError
from .env import Variables, read_env_file
from .secrets import add_files
from .service_keys import check_ipv6_address, ipv6_config
from .services import ServiceDef, check_service, unsupported
from .spec_keys import ignored as ignored_keys
from .structure import Project, active_profiles, enabled, pair, profiles_of, read_files
from .structure import merge as merge  # where it was: tests and readers of this module use it
from .values import entries, scalar
from .values import name as checked_name

TOP_KEYS = ("name", "services", "networks", "volumes", "secrets", "configs")
TOP_IGNORED = ("version",)  # obsolete in Compose v2; said nothing about networking
NETWORK_KEYS = tuple("driver internal attachable enable_ipv4 enable_ipv6 ipam driver_opts labels external".split())
NETWORK_IGNORED = ignored_keys("network")
VOLUME_KEYS = ("driver", "driver_opts", "labels", "external")
VOLUME_IGNORED = ignored_keys("volume")  # but an external volume's name is the engine's volume it is
NETWORK_DRIVERS = ("bridge", "overlay")


@dataclass
class NetworkDef:
    name: str
    driver: str = "bridge"
    internal: bool = False
    ipv6: bool = False
    subnet: str | None = None
    gateway: str | None = None
    subnet6: str | None = None  # an IPv6 entry of ipam.config (with enable_ipv6)
    options: dict[str, str] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)


@dataclass
class VolumeDef:
    name: str
    external: bool = False
    driver: str | None = None
    options: dict[str, str] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    engine_name: str | None = None  # an external volume's name on the engine (its name:), if not the file's


@dataclass
class ComposeModel:
    """A Compose file (with its overrides) as ``compose()`` brings it up."""

    name: str
    project_dir: Path
    files: list[Path]
    services: dict[str, ServiceDef]
    networks: dict[str, NetworkDef]
    volumes: dict[str, VolumeDef]
    ignored: list[str]  # "services.web.restart", ...: accepted keys that change nothing here
    profiles: list[str] = field(default_factory=list)  # the active ones
    disabled: dict[str, list[str]] = field(default_factory=dict)  # services left out: their profiles

    def needed(self, services: Iterable[str] | None) -> list[str]:
        """``services`` and everything they depend on (all services for None), in file order."""
        if services is None:
            return list(self.services)
        wanted: set[str] = set()
        todo = list(services)
        while todo:
            name = todo.pop()
            if name not in wanted:
                wanted.add(name)
                todo.extend(self.services[name].requires())
        return [name for name in self.services if name in wanted]


def load(
    path: str | os.PathLike[str],
    override: Iterable[str | os.PathLike[str]] | str | os.PathLike[str] = (),
    env: Mapping[str, str] | None = None,
    project_dir: str | os.PathLike[str] | None = None,
    *,
    profiles: Iterable[str] | None = None,
    services: Iterable[str] | None = None,
) -> ComposeModel:
    """Read, substitute, merge and check a Compose file and its overrides (see ``compose()``);
    ``services`` (the names a call brings up) start whatever their ``profiles``."""
    files = [_check_path("path", path)]
    if isinstance(override, (str, os.PathLike)):
        override = [override]
    files += [_check_path("override", item) for item in override]
    if env is not None and (
        not isinstance(env, Mapping) or not all(isinstance(k, str) and isinstance(v, str) for k, v in env.items())
    ):
        raise TypeError(f"env must be a dict of str to str, got {env!r}")
    root = files[0].parent if project_dir is None else _check_dir(project_dir)
    layers: list[Mapping[str, str]] = [dict(env or {}), os.environ]
    dotenv = root / ".env"
    if dotenv.is_file():
        layers.append(read_env_file(dotenv, Variables(layers)))
    variables = Variables(layers)
    active = active_profiles(profiles, variables)
    merged = read_files(files, Project(root, variables))
    return _model(merged, files, root, variables, active, service_names(services) or [])


def service_names(services: object) -> list[str] | None:
    """``services=``: None, or a list of names."""
    if services is None:
        return None
    if isinstance(services, str) or not isinstance(services, Iterable):
        raise TypeError(f"compose(): services must be a list of service names, got {services!r}")
    names = list(services)
    if not all(isinstance(s, str) for s in names):
        raise TypeError(f"compose(): services must be a list of service names, got {services!r}")
    return names


def _check_path(argument: str, value: object) -> Path:
    if not isinstance(value, (str, os.PathLike)):
        raise TypeError(f"compose(): {argument} must be a path to a Compose file, got {value!r}")
    path = Path(value).resolve()
    if not path.is_file():
        raise ComposeError(f"compose(): {argument}={str(value)!r}: no such file ({path})")
    return path


def _check_dir(value: object) -> Path:
    if not isinstance(value, (str, os.PathLike)) or not Path(value).is_dir():
        raise ComposeError(f"compose(): project_dir={value!r} is not a directory")
    return Path(value).resolve()


def _model(merged: dict[str, Any], files: list[Path], root: Path, variables: Variables, active: list[str],
           explicit: list[str]) -> ComposeModel:  # fmt: skip
    where = str(files[0])
    ignored: list[str] = []
    for key in merged:
        if key in TOP_IGNORED or key.startswith("x-"):
            continue
        if key not in TOP_KEYS:
            raise ComposeError(unsupported(where, "top level", key, TOP_KEYS, "top"))
    name = merged.get("name", root.name)
    if not isinstance(name, str) or not name:
        raise ComposeError(f"{where}: name must be a non-empty string, got {name!r}")
    services_spec = entries(merged.get("services"), f"{where}: services")
    if not services_spec:
        raise ComposeError(f"{where}: the file defines no services (a 'services:' mapping is needed)")
    networks = {
        checked_name(net, f"{where}: networks", "network name"): _network(
            net, spec, f"{where}: networks.{net}", ignored
        )
        for net, spec in entries(merged.get("networks"), f"{where}: networks").items()
    }
    volumes = {
        checked_name(vol, f"{where}: volumes", "volume name"): _volume(vol, spec, f"{where}: volumes.{vol}", ignored)
        for vol, spec in entries(merged.get("volumes"), f"{where}: volumes").items()
    }
    # A service its profiles leave out is not checked (as under Compose: it is not in the model).
    profiles = {s: profiles_of(spec, f"{where}: services.{s}") for s, spec in services_spec.items()}
    on, active = enabled(profiles, active, explicit)
    services = {}
    for service in on:
        spec = services_spec[service]  # its profiles are read: what the service keys are checked without
        spec = {k: v for k, v in spec.items() if k != "profiles"} if isinstance(spec, Mapping) else spec
        services[service] = check_service(
            service, spec, f"{where}: services.{service}", root, variables, ignored, read_env_file
        )
    disabled = {s: profiles[s] for s in services_spec if s not in services}
    _check_enabled(where, services, disabled, active)
    add_files(merged, services, where, root, variables, ignored)
    _check_references(where, services, networks, volumes)
    return ComposeModel(name, root, files, services, networks, volumes, ignored, active, disabled)


def _check_enabled(where: str, services: dict[str, ServiceDef], disabled: dict[str, list[str]],
                   active: list[str]) -> None:  # fmt: skip
    """No service that starts needs one that its profiles leave out (Compose refuses it too)."""
    for service in services.values():
        for other in service.requires():
            if other in disabled and not service.depends_on.get(other, "").startswith("optional:"):
                raise ComposeError(
                    f"{where}: services.{service.name}.{service.requirement_of(other)}: service {other!r} is not "
                    f"enabled: its profiles ({', '.join(disabled[other])}) are not active "
                    f"({'active: ' + ', '.join(active) if active else 'none is active'}); activate one with "
                    f"profiles=[...] or COMPOSE_PROFILES, or name {other!r} in services=[...]"
                )


def _known(spec: Mapping[str, Any], where: str, what: str, keys: Iterable[str], ignored_keys: Mapping[str, str],
           ignored: list[str], path: str, section: str) -> None:  # fmt: skip
    for key in spec:
        if key in ignored_keys:
            ignored.append(f"{path}.{key} ({ignored_keys[key]})")
        elif key not in keys and not str(key).startswith("x-"):
            raise ComposeError(unsupported(where, what, str(key), keys, section))


def _network(name: str, spec: object, where: str, ignored: list[str]) -> NetworkDef:
    spec = entries(spec, where)
    _known(spec, where, f"network {name!r}", NETWORK_KEYS, NETWORK_IGNORED, ignored, f"networks.{name}", "network")
    if spec.get("external"):
        raise ComposeError(
            f"{where}: external: true is not supported: a test's networks are its own, made and removed "
            "by the test; drop 'external' (for this test, e.g. in an override file) so the network is made here"
        )
    driver = spec.get("driver", "bridge")
    if driver not in NETWORK_DRIVERS:
        raise ComposeError(f"{where}: driver {driver!r} is not supported: use one of {', '.join(NETWORK_DRIVERS)}")
    network = NetworkDef(name, driver)
    if spec.get("enable_ipv4", True) is not True:
        raise ComposeError(
            f"{where}.enable_ipv4: {spec['enable_ipv4']!r}: a test's networks always have IPv4 (an IPv6-only "
            "network needs Docker Engine 28): drop the key, or set it true"
        )
    for key, attr in (("internal", "internal"), ("enable_ipv6", "ipv6"), ("attachable", None)):
        value = spec.get(key, False)
        if not isinstance(value, bool):
            raise ComposeError(f"{where}: {key} must be true or false, got {value!r}")
        if attr:
            setattr(network, attr, value)
    network.options = _strings(spec.get("driver_opts"), f"{where}.driver_opts")
    network.labels = _labels(spec.get("labels"), f"{where}.labels")
    ipam = entries(spec.get("ipam"), f"{where}.ipam")
    for key in ipam:
        if key not in ("config", "driver"):
            raise ComposeError(unsupported(f"{where}.ipam", "ipam", key, ("config", "driver"), "ipam"))
    if ipam.get("driver", "default") != "default":
        raise ComposeError(f"{where}.ipam: driver {ipam['driver']!r} is not supported: only 'default'")
    configs, network.subnet6 = ipv6_config(ipam.get("config") or [], f"{where}.ipam.config", network.ipv6)
    if not isinstance(configs, list) or len(configs) > 1:
        raise ComposeError(
            f"{where}.ipam.config: give at most one IPv4 entry (one IPv4 subnet per network; with enable_ipv6 one "
            f"IPv6 subnet too, else the plugin's), got {configs!r}"
        )
    for config in configs:
        config = entries(config, f"{where}.ipam.config[0]")
        for key in config:
            if key not in ("subnet", "gateway"):
                raise ComposeError(
                    unsupported(f"{where}.ipam.config[0]", "ipam.config", key, ("subnet", "gateway"), "ipam config")
                )
        network.subnet, network.gateway = config.get("subnet"), config.get("gateway")
        if network.gateway is not None and network.subnet is None:
            raise ComposeError(f"{where}.ipam.config[0]: a gateway needs its subnet")
        try:
            check_subnet(network.subnet, network.gateway)
        except (TypeError, ValueError) as exc:
            raise ComposeError(f"{where}.ipam.config[0]: {exc}") from None
    return network


def _volume(name: str, spec: object, where: str, ignored: list[str]) -> VolumeDef:
    spec = entries(spec, where)
    external = spec.get("external", False)
    if not isinstance(external, bool):
        raise ComposeError(f"{where}: external must be true or false, got {external!r}")
    # An external volume's name is the engine's volume it is: taken, not ignored.
    keys, skipped = ((*VOLUME_KEYS, "name"), {}) if external else (VOLUME_KEYS, VOLUME_IGNORED)
    _known(spec, where, f"volume {name!r}", keys, skipped, ignored, f"volumes.{name}", "volume")
    driver = spec.get("driver")
    if driver is not None and not isinstance(driver, str):
        raise ComposeError(f"{where}: driver must be a string, got {driver!r}")
    options = _strings(spec.get("driver_opts"), f"{where}.driver_opts")
    volume = VolumeDef(name, external, driver, options, _labels(spec.get("labels"), f"{where}.labels"))
    if external and spec.get("name") is not None:
        volume.engine_name = checked_name(spec["name"], f"{where}.name", "volume name")
    return volume


def _strings(value: object, where: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ComposeError(f"{where} must be a mapping of names to values, got {value!r}")
    return {str(k): "" if v is None else scalar(v, f"{where}.{k}") for k, v in value.items()}


def _labels(value: object, where: str) -> dict[str, str]:
    if isinstance(value, list):
        value = dict(pair(item, where) for item in value)
    return {k: ("" if v is None else v) for k, v in _strings(value, where).items()}


def _check_references(
    where: str, services: dict[str, ServiceDef], networks: dict[str, NetworkDef], volumes: dict[str, VolumeDef]
) -> None:
    """Every name a service uses is defined, no two services claim one name or address,
    no two networks one subnet; ``depends_on`` has no cycle."""
    uses_default = False
    claimed: dict[tuple[str, str], str] = {}  # (network or "", address or name): the service
    for service in services.values():
        at = f"{where}: services.{service.name}"
        wanted = [("container_name", "", service.container_name)]
        wanted += [(f"networks.{net}.ipv4_address", net, address) for net, (_, address) in service.networks.items()]
        for key, net, value in wanted:
            other = claimed.setdefault((net, value), service.name) if value else service.name
            if other != service.name:
                raise ComposeError(f"{at}.{key}: {value!r} is services.{other}'s already: give each service its own")
        for other, condition in list(service.depends_on.items()):
            if condition.startswith("optional:"):  # required: false
                if other in services:
                    service.depends_on[other] = condition.partition(":")[2]
                else:
                    del service.depends_on[other]
        if service.network_mode is not None and service.network_mode.startswith("container:"):
            target = service.network_mode.partition(":")[2]
            owner = next((s.name for s in services.values() if target in (s.container_name, s.name)), None)
            if owner is None:
                raise ComposeError(
                    f"{at}.network_mode: {service.network_mode!r}: no service of this file is named or has "
                    f"container_name {target!r} (a test's containers are its own: use 'service:NAME')"
                )
            service.shares = owner
        if not service.networks and service.network_mode is None:
            uses_default = True
        for net, (_, address) in service.networks.items():
            if net == "default":
                uses_default = True
            elif net not in networks:
                raise ComposeError(f"{at}.networks: network {net!r} is not defined under the top-level 'networks:'")
            if address is not None:
                _check_address(f"{at}.networks.{net}.ipv4_address", address, networks.get(net))
            check_ipv6_address(at, service.name, net, service.endpoints.get(net, {}), networks.get(net), claimed)
        for other in service.requires():
            if other not in services:
                raise ComposeError(
                    f"{at}.{service.requirement_of(other)}: service {other!r} is not defined in the file"
                )
        for volume in service.named_volumes():
            if volume not in volumes:
                raise ComposeError(f"{at}.volumes: volume {volume!r} is not defined under the top-level 'volumes:'")
    if uses_default and "default" not in networks:
        networks["default"] = NetworkDef("default")
    subnets = [(net.name, ipaddress.IPv4Network(net.subnet)) for net in networks.values() if net.subnet]
    for i, (name, subnet) in enumerate(subnets):
        for other, earlier in subnets[:i]:
            if subnet.overlaps(earlier):
                raise ComposeError(
                    f"{where}: networks.{name}.ipam.config[0]: subnet {subnet} overlaps networks.{other}'s {earlier}: "
                    "give each network a subnet of its own"
                )
    _check_cycles(where, services)


def _check_address(where: str, address: str, network: NetworkDef | None) -> None:
    """A fixed address needs the network's own subnet (as the engine says), and must be a
    host address of it other than the gateway (the first host address unless given)."""
    if network is None or network.subnet is None:
        raise ComposeError(
            f"{where}: {address!r}: a fixed address needs a subnet of the network's own: give the network "
            "ipam: {config: [{subnet: ...}]}"
        )
    ip, subnet = ipaddress.IPv4Address(address), ipaddress.IPv4Network(network.subnet)
    gateway = ipaddress.IPv4Address(network.gateway) if network.gateway else subnet.network_address + 1
    taken = {
        subnet.network_address: "the network's own",
        subnet.broadcast_address: "its broadcast",
        gateway: "its gateway's",
    }
    if ip not in subnet:
        raise ComposeError(f"{where}: {address!r} is not in the network's subnet {network.subnet}")
    if ip in taken:
        raise ComposeError(
            f"{where}: {address!r} is {taken[ip]} address in {network.subnet}: pick another host address"
        )


def _check_cycles(where: str, services: dict[str, ServiceDef]) -> None:
    done: set[str] = set()

    def visit(name: str, path: list[str]) -> None:
        if name in path:
            cycle = path[path.index(name) :] + [name]
            raise ComposeError(f"{where}: services depend on each other in a cycle: {' -> '.join(cycle)}")
        if name in done:
            return
        for other in services[name].requires():
            visit(other, [*path, name])
        done.add(name)

    for name in services:
        visit(name, [])
