"""What ``container()`` was asked for, checked before anything is made: the
:class:`ContainerSpec` as given, and the :class:`Launch` decided from it (image, command,
networks with their aliases and addresses, network mode, links, ports, volumes,
healthcheck, labels, docker options).
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple, cast

from .checks import (
    check_bool,
    check_command,
    check_engine,
    check_environment,
    check_image,
    check_name,
    check_names,
    check_str_list,
    check_str_map,
    check_timeout,
    exposed_ports,
)
from .container_files import ContainerFile, check_files
from .container_options import (
    DockerOptions,
    Hosts,
    Resolver,
    Volumes,
    check_docker_options,
    check_healthcheck,
    check_labels,
    check_resolver,
    check_text,
    check_volumes,
)
from .context import POOL_NEUTRAL
from .handles import Container, Network, check_grace
from .probes import RESIDENT
from .readiness import Readiness, check_ready
from .registry import Registry

if TYPE_CHECKING:
    from .context import Context
    from .engine.port import Engine
    from .networks import Networks

NETWORK_MODES = ("host", "bridge", "none")  # and "container:NAME" (another container's namespace)
_LINKS_WHERE = (
    "links= work on the default bridge (network_mode='bridge') and on user-defined networks, "
    "not with network_mode={mode!r}"
)


@dataclass
class ContainerSpec:
    """The arguments of ``Topology.container()``, as given (the options' forms: see
    :mod:`pytest_dockernet.container_options`). A field given a value of its own keeps the
    container out of the warm pool, unless marked POOL_NEUTRAL (see warm_pool.poolable)."""

    name: str = field(metadata=POOL_NEUTRAL)
    image: str | None = None
    command: str | list[str] | None = None
    # The pool's container joins these under its name and aliases (only bridges the topology made).
    networks: Iterable[Network] | Mapping[Network, Any] | None = field(default=None, metadata=POOL_NEUTRAL)
    environment: Mapping[str, str] | list[str] | None = None
    ports: Mapping[int | str, Any] | None = None
    expose: Iterable[int | str] | None = None
    links: Mapping[str, str] | None = None
    network_mode: str | None = None
    cap_add: list[str] | None = None
    privileged: bool = False
    host: int = 0  # the engine
    entrypoint: str | list[str] | None = None
    user: str | None = None
    working_dir: str | None = None
    hostname: str | None = None
    volumes: Mapping[str, Any] | list[str] | None = None
    healthcheck: Mapping[str, Any] | None = None
    labels: Mapping[str, str] | None = None
    ready: Any = field(default="running", metadata=POOL_NEUTRAL)  # the pool asks its strategy (Readiness.poolable)
    ready_timeout: float = field(default=60.0, metadata=POOL_NEUTRAL)  # a pooled one runs already
    docker_options: Mapping[str, Any] | None = None
    files: Mapping[str, Any] | None = None  # put in before the start (container_files): never pooled
    dns: list[str] | None = None  # resolver settings, on top of hermetic DNS (container_options.Resolver)
    dns_search: list[str] | None = None
    dns_opt: list[str] | None = None
    stop_timeout: float | None = None  # seconds stop() and restart() wait before SIGKILL

    @classmethod
    def of(cls, name: str, arguments: Mapping[str, Any], where: str) -> ContainerSpec:
        """A spec from keyword arguments, naming any unknown one."""
        known = {f.name for f in dataclasses.fields(cls)} - {"name"}
        unknown = sorted(set(arguments) - known)
        if unknown:
            raise TypeError(f"{where}: unknown arguments {unknown}; container() takes {', '.join(sorted(known))}")
        return cls(name, **arguments)


_MAC = re.compile(r"^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$")


def check_ipv6_address(network: Network, address: object) -> None:
    """``ipv6_address``: a host address of the network's IPv6 subnet, not its gateway."""
    where = f"networks[{network.name!r}]: ipv6_address={address!r}"
    if not network.subnet6:
        raise ValueError(f"{where}: network {network.name!r} has no IPv6 subnet (make it with ipv6=True)")
    subnet = ipaddress.IPv6Network(network.subnet6)
    try:
        ip = ipaddress.IPv6Address(address if isinstance(address, str) else "")
    except ValueError:
        raise ValueError(f"{where} is not an IPv6 address such as 'fd00:9::5'") from None
    if ip not in subnet:
        raise ValueError(f"{where} is not an address of that network's IPv6 subnet {network.subnet6}")
    if ip in (subnet.network_address, subnet.network_address + 1):
        raise ValueError(f"{where} is the subnet's own or its gateway's address: pick another host address")


class Attachment(NamedTuple):
    network: Network
    aliases: list[str]
    address: str | None
    extra: Mapping[str, str] = {}  # more of its endpoint config: ipv6_address, mac_address (API 1.44)


@dataclass
class Launch:
    """A checked spec, with what was decided for it: what ``Containers.create`` makes."""

    spec: ContainerSpec
    image: str
    command: str | list[str] | None
    attachments: list[Attachment]
    network_mode: str | None
    link_pairs: list[tuple[str, str]]  # legacy links on the default bridge
    endpoint_links: dict[str, list[tuple[str, str]]]  # by network: links scoped to a user-defined network
    resident: bool  # runs the resident probe shell
    exposed: list[int | tuple[int, str]] | None  # the ports, as create_container takes them
    volumes: Volumes
    healthcheck: dict[str, Any] | None
    labels: dict[str, str]
    docker: DockerOptions  # docker_options, split into create and host-config arguments
    ready: Readiness  # when it is ready
    files: dict[str, ContainerFile] = field(default_factory=dict)  # put into it between create and start
    resolver: Resolver = field(default_factory=Resolver)  # dns, dns_search, dns_opt as given


class SpecChecker:
    """Checks the specs of one topology's containers against its networks and containers."""

    def __init__(self, context: Context, networks: Networks, registry: Registry[Container]):
        self.context, self.networks, self.registry = context, networks, registry

    def check(self, spec: ContainerSpec) -> Launch:
        check_name("container name", spec.name)
        engine = check_engine(spec.host, len(self.context.engines))
        attachments = self._attachments(spec.networks)
        if engine and (
            spec.network_mode is not None or not attachments or any(a.network.driver != "overlay" for a in attachments)
        ):
            raise ValueError(
                f"host={engine}: a container on another engine can only join overlay networks: "
                "pass networks=[dockernet.network(name, driver='overlay')]"
            )
        network_mode = self._network_mode(spec.network_mode, attachments, spec.links)
        link_pairs, endpoint_links = self._links(spec.links, network_mode, attachments)
        check_str_list("cap_add", spec.cap_add, "capability names")
        check_bool("privileged", spec.privileged)
        image = check_image(spec.image)
        command = check_command(spec.command)
        entrypoint = check_command(spec.entrypoint, "entrypoint")
        spec.environment = check_environment(spec.environment)
        exposed = exposed_ports(spec.ports)
        if spec.expose is not None:
            if isinstance(spec.expose, (str, int)) or not isinstance(spec.expose, Iterable):
                raise TypeError(f"expose must be a list of ports such as [8080, '53/udp'], got {spec.expose!r}")
            exposed = [*(exposed or []), *(exposed_ports(dict.fromkeys(spec.expose)) or [])]
        for argument in ("user", "working_dir", "hostname"):
            check_text(argument, getattr(spec, argument))
        shared = network_mode is not None and network_mode.startswith("container:")
        if spec.hostname is not None and (network_mode == "host" or shared):
            whose = "the host's" if network_mode == "host" else "another container's"
            raise ValueError(
                f"hostname= cannot be set for a container in {whose} network namespace (network_mode={network_mode!r})"
            )
        if shared and network_mode is not None and spec.ports:
            raise ValueError(
                f"ports= cannot be published by a container in another's network namespace (network_mode="
                f"{network_mode!r}): publish them on {network_mode.partition(':')[2]!r}"
            )
        volumes = check_volumes(spec.volumes)
        healthcheck = check_healthcheck(spec.healthcheck)
        labels = check_labels(spec.labels)
        ready = check_ready(spec.ready)
        check_timeout(spec.ready_timeout, "ready_timeout")
        docker_options = check_docker_options(spec.docker_options, self.context.engines[engine])
        files = check_files(spec.files, volumes.paths, docker_options.host_config)
        self._endpoint_options(attachments, docker_options, self.context.engines[engine])
        subnets = [
            Hosts(subnet, gateway)
            for network in self.context.networks
            for subnet, gateway in ((network.subnet, network.gateway), (network.subnet6, None))
            if subnet
        ]
        hermetic = self.context.settings.dns == "hermetic"
        resolver = check_resolver(spec.dns, spec.dns_search, spec.dns_opt, network_mode, hermetic, subnets)
        if spec.stop_timeout is not None:
            spec.stop_timeout = check_grace(spec.stop_timeout, "stop_timeout")
        resident = image is None and command is None and entrypoint is None
        return Launch(
            spec,
            image or "",  # the probe image is resolved when the container is made
            RESIDENT if resident else command,
            attachments,
            network_mode,
            link_pairs,
            endpoint_links,
            resident,
            exposed,
            volumes,
            healthcheck,
            labels,
            docker_options,
            ready,
            files,
            resolver,
        )

    def _attachments(self, networks: object) -> list[Attachment]:
        if networks is None:
            return []
        if isinstance(networks, Network):
            networks = [networks]
        items = (
            networks.items() if isinstance(networks, Mapping) else ((n, None) for n in cast("Iterable[Any]", networks))
        )
        result = []
        for network, spec in items:
            self.networks.check_own(network, "networks")
            aliases: object
            address: str | None
            aliases, address, extra = [], None, {}
            if isinstance(spec, Mapping):
                unknown = set(spec) - {"aliases", "ipv4_address", "ipv6_address", "mac_address"}
                if unknown:
                    raise ValueError(
                        f"networks[{network.name!r}] has unknown keys {sorted(unknown)}: "
                        "use 'aliases', 'ipv4_address', 'ipv6_address' and 'mac_address'"
                    )
                aliases, address = spec.get("aliases"), spec.get("ipv4_address")
                extra = {k: spec[k] for k in ("ipv6_address", "mac_address") if spec.get(k) is not None}
            elif isinstance(spec, str):
                raise TypeError(f"networks[{network.name!r}]: give aliases as a list, e.g. [{spec!r}]")
            else:
                aliases = spec
            aliases = check_names(f"networks[{network.name!r}] aliases", aliases, f"alias on network {network.name!r}")
            if address is not None:
                self._check_address(network, address)
            if "ipv6_address" in extra:
                check_ipv6_address(network, extra["ipv6_address"])
            result.append(Attachment(network, aliases, address, extra))
        return result

    def _endpoint_options(self, attachments: list[Attachment], docker: DockerOptions, engine: Engine) -> None:
        """A MAC address on the first network is the container's (engine API 1.41 has no
        other place for it: the address of the endpoint it is created on); on another
        network it needs the endpoint's own (API 1.44)."""
        for i, attachment in enumerate(attachments):
            mac = attachment.extra.get("mac_address")
            if mac is None:
                continue
            where = f"networks[{attachment.network.name!r}]: mac_address={mac!r}"
            if not isinstance(mac, str) or not _MAC.match(mac):
                raise ValueError(f"{where} is not a MAC address such as '02:42:0a:09:00:05'")
            if i == 0:
                if docker.create.setdefault("mac_address", mac) != mac:
                    raise ValueError(f"{where} differs from docker_options['mac_address']: give one of them")
                attachments[0] = attachment._replace(
                    extra={k: v for k, v in attachment.extra.items() if k != "mac_address"}
                )
                continue
            info = self.context.capabilities.of(engine).info
            if not info.api_at_least(1, 44):
                raise ValueError(
                    f"{where}: a MAC address on a container's second network needs engine API 1.44; this engine "
                    f"speaks {info.api_version}: give it on the first network"
                )

    @staticmethod
    def _check_address(network: Network, address: object) -> None:
        where = f"networks[{network.name!r}]: ipv4_address={address!r}"
        ip: ipaddress.IPv4Address | None
        subnet: ipaddress.IPv4Network | None
        try:
            ip, subnet = ipaddress.IPv4Address(address), ipaddress.IPv4Network(network.subnet)
        except (ValueError, TypeError, ipaddress.AddressValueError):
            ip = subnet = None
        if ip is None or subnet is None or ip not in subnet:
            raise ValueError(f"{where} is not an address of that network's subnet {network.subnet}")
        taken = {subnet.network_address: "the network's own", subnet.broadcast_address: "its broadcast"}
        if network.gateway:
            taken[ipaddress.IPv4Address(network.gateway)] = "its gateway's"
        if ip in taken:
            raise ValueError(f"{where} is {taken[ip]} address: pick a host address other than the gateway")

    def _network_mode(self, network_mode: str | None, attachments: list[Attachment], links: object) -> str | None:
        if any(a.network.driver == "host" for a in attachments):
            if len(attachments) > 1 or network_mode not in (None, "host"):
                raise ValueError(
                    "networks: a container on the host network cannot join other networks "
                    "(it shares the host's network namespace)"
                )
            attachments.clear()
            return "host"
        if network_mode is None:
            return "bridge" if links and not attachments else None
        if not isinstance(network_mode, str) or (
            network_mode not in NETWORK_MODES and not network_mode.startswith("container:")
        ):
            raise ValueError(f"network_mode={network_mode!r} is not one of 'host', 'bridge', 'none', 'container:NAME'")
        if attachments:
            raise ValueError(f"network_mode={network_mode!r} and networks= exclude each other: pass one of them")
        if network_mode.startswith("container:"):
            target = network_mode.partition(":")[2]
            if self.registry.find(target) is None:
                raise ValueError(
                    f"network_mode={network_mode!r}: no container named {target!r} in this topology "
                    "(start it first: the container joins that one's network namespace)"
                )
        return network_mode

    def _links(
        self, links: Mapping[str, str] | None, network_mode: str | None, attachments: list[Attachment]
    ) -> tuple[list[tuple[str, str]], dict[str, list[tuple[str, str]]]]:
        """Legacy links (the default bridge), or links scoped to the user-defined networks
        the container shares with each target: there the alias resolves for this
        container only, as ``docker run --network N --link target:alias`` does."""
        if not links:
            return [], {}
        if attachments:
            scoped: dict[str, list[tuple[str, str]]] = {}
            for target, alias in check_str_map("links", links).items():
                other = self.registry.find(target)
                if other is None:
                    raise ValueError(f"links: no container named {target!r} in this topology")
                shared = [a.network for a in attachments if a.network.docker_name in other.endpoints]
                if not shared:
                    raise ValueError(
                        f"links: {target!r} shares no network with this container: attach both to one network"
                    )
                for network in shared:
                    scoped.setdefault(network.docker_name, []).append(
                        (other.docker_name, check_name("link alias", alias))
                    )
            return [], scoped
        if network_mode != "bridge":
            raise ValueError(_LINKS_WHERE.format(mode=network_mode))
        warnings.warn(
            "links= uses Docker's legacy --link on the default bridge; put the containers on a "
            "user-defined network (dockernet.network()) and use aliases instead",
            DeprecationWarning,
            stacklevel=6,  # the caller of Topology.container(): _links, _check, start, container, measured
        )
        pairs = []
        for target, alias in check_str_map("links", links).items():
            other = self.registry.find(target)
            if other is None:
                raise ValueError(f"links: no container named {target!r} in this topology")
            if other.network_mode != "bridge":
                raise ValueError(
                    f"links: {target!r} is not on the default bridge (start it with network_mode='bridge')"
                )
            pairs.append((other.docker_name, check_name("link alias", alias)))
        return pairs, {}
