"""Networks and containers a test asks for, and their removal: usable without pytest.

with Topology(docker.from_env()) as t:
    db = t.container("db")
    api = t.container("api")
    t.assert_reachable(api, "db")
"""

from __future__ import annotations

import contextlib
import functools
import ipaddress
import itertools
import re
import threading
import warnings
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Protocol

import docker
import docker.errors
import tenacity

from . import identity as lbl
from .gate import gate_for
from .identity import RunIdentity
from .image import ensure_image, resolve_probe_image
from .probes import close_shells
from .subnets import SubnetAllocator
from .timings import Timings

DRIVERS = ("bridge", "host", "overlay")


class _Default(str):
    """A default argument that can tell whether the caller passed it."""


_VIP = _Default("vip")
DNS_MODES = ("hermetic", "host")
# Keeps a container of the probe image alive; `docker rm -f` kills it, so no signal handling.
KEEPALIVE = ["tail", "-f", "/dev/null"]
# The command of probe-image containers started without one, and of sidecars: a shell
# that reads probe scripts from stdin (see probes.Shell), then keeps the container alive
# if stdin ever closes. Probing through it costs a write, not an exec.
RESIDENT = ["sh", "-c", "sh -s; exec tail -f /dev/null"]
_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")
_topology_ids = itertools.count(1)
_LINKS_ON_BRIDGE_ONLY = (
    "links= work on the default bridge only (network_mode='bridge'); on user-defined "
    "networks use aliases: networks={net: ['alias']}"
)


def _measured(phase: str):
    """Count a factory method's wall time towards ``phase`` of the topology's timings."""

    def wrap(method):
        @functools.wraps(method)
        def measured(self, *args, **kwargs):
            with self.timings.measure(phase):
                return method(self, *args, **kwargs)

        return measured

    return wrap


class DockernetError(Exception):
    """Something the engine did or refused that the caller could not have checked up front."""


class DriverUnavailable(DockernetError):
    """The engine (or this release of pytest-dockernet) cannot make networks of a driver."""


class Hooks(Protocol):
    """What a topology reports to; pytest's ``config.hook`` is one (see :mod:`.hooks`)."""

    def pytest_dockernet_network_created(self, *, network: Network) -> None: ...
    def pytest_dockernet_container_started(self, *, container: Container) -> None: ...
    def pytest_dockernet_topology_teardown(self, *, factory: Topology) -> None: ...


class _NoHooks:
    def __getattr__(self, name: str):
        return lambda **kwargs: None


def _check_name(what: str, name: object) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(
            f"{what} {name!r} is not a valid name: use letters, digits, '_', '.' and '-', "
            "starting with a letter or digit"
        )
    return name


def _check_str_map(what: str, value: object) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise TypeError(f"{what} must be a dict of str to str, got {value!r}")
    return dict(value)


class Network:
    """A network of a topology. ``name`` is the test's logical name, ``docker_name`` the engine's."""

    def __init__(
        self,
        topology: Topology,
        name: str,
        docker_name: str,
        id: str,
        driver: str,
        subnet: str | None = None,
        gateway: str | None = None,
        internal: bool = False,
        owned: bool = True,
    ):
        self.topology = topology
        self.name = name
        self.docker_name = docker_name
        self.id = id
        self.driver = driver
        self.subnet = subnet
        self.gateway = gateway
        self.internal = internal
        self.owned = owned  # created by the topology, so removed by it
        self.pooled = False  # its subnet came from the allocator, and goes back on removal

    def ref(self, host: int) -> str:
        """How engine ``host`` names the network (another engine of the swarm knows an
        overlay by name until one of its containers joins it)."""
        return self.id if host == 0 else self.docker_name

    @property
    def containers(self) -> list[Container]:
        """The topology's containers attached to this network now."""
        return [c for c in self.topology.containers_list if self.docker_name in c.endpoints]

    def __repr__(self) -> str:
        return f"<Network {self.name} ({self.docker_name}, {self.driver}, {self.subnet or 'no subnet'})>"


class Endpoint:
    """A container's attachment to one network."""

    def __init__(self, network: Network | None, ip: str | None, aliases: list[str]):
        self.network = network
        self.ip = ip
        self.aliases = aliases


class Container:
    """A running container of a topology."""

    def __init__(
        self,
        topology: Topology,
        name: str,
        docker_name: str,
        id: str,
        image: str,
        network_mode: str | None,
        host: int = 0,
    ):
        self.topology = topology
        self.host = host  # the engine it runs on: 0 is the environment's, i the i-th of --dockernet-hosts
        self.client = topology.clients[host]
        self.name = name
        self.docker_name = docker_name
        self.id = id
        self.image = image
        self.network_mode = network_mode  # "host", "bridge", "none" or None (user-defined networks)
        self.endpoints: dict[str, Endpoint] = {}  # by Docker network name
        self.sidecar_id: str | None = None  # probe sidecar sharing its network namespace
        self.resident = False  # runs the RESIDENT shell, which probes are written to

    @property
    def networks(self) -> list[Network]:
        return [e.network for e in self.endpoints.values() if e.network is not None]

    @property
    def can_probe(self) -> bool:
        """Whether probes run in the container itself (it is the probe image) or need a sidecar."""
        return self.image == self.topology.probe_image

    def _endpoint(self, network: Network | str | None) -> Endpoint:
        if network is None:
            if len(self.endpoints) != 1:
                raise ValueError(
                    f"container {self.name!r} is on {len(self.endpoints)} networks "
                    f"({', '.join(self._network_names()) or 'none'}): pass network= to ip()"
                )
            return next(iter(self.endpoints.values()))
        for docker_name, endpoint in self.endpoints.items():
            if network in (docker_name, endpoint.network) or (
                isinstance(network, str) and endpoint.network is not None and endpoint.network.name == network
            ):
                return endpoint
        label = network.name if isinstance(network, Network) else network
        raise ValueError(
            f"container {self.name!r} is not on network {label!r}; "
            f"it is on: {', '.join(self._network_names()) or 'none'}"
        )

    def _network_names(self) -> list[str]:
        return [e.network.name if e.network else d for d, e in self.endpoints.items()]

    def ip(self, network: Network | str | None = None) -> str | None:
        """The container's IPv4 address on ``network`` (a handle or logical name); on its only
        network when omitted. None for a container in the host's network namespace."""
        if self.network_mode == "host":
            return None
        return self._endpoint(network).ip

    def exec(self, cmd: str | list[str]) -> tuple[int, str]:
        """Run ``cmd`` in the container (its image must have it): (exit code, stdout+stderr)."""
        return _exec(self.client, self.id, cmd)

    def logs(self) -> str:
        return self.client.api.logs(self.id).decode(errors="replace")

    def refresh(self) -> None:
        """Re-read the container's networks from the engine."""
        self.topology._refresh(self)

    def __repr__(self) -> str:
        where = ", ".join(f"{n}={e.ip}" for n, e in zip(self._network_names(), self.endpoints.values()))
        return f"<Container {self.name} ({self.docker_name}{'; ' + where if where else ''})>"


class Topology:
    """A factory of networks and containers that removes everything it made on ``close()``.

    Every resource is labelled with the owner's run identity and this topology's id, so
    removal sweeps by label: a call interrupted half-way leaves nothing that ``close()``
    (or a later run's prune, if this process dies) does not find.
    """

    def __init__(
        self,
        client: docker.DockerClient,
        *,
        identity: RunIdentity | None = None,
        image: str | None = None,
        default_driver: str = "bridge",
        dns: str = "hermetic",
        allocator: SubnetAllocator | None = None,
        hooks: Hooks | None = None,
        label: str = "",
        timings: Timings | None = None,
        engines: Sequence[docker.DockerClient] = (),
        run_facts: dict[str, Any] | None = None,
        unavailable: Callable[[str, bool], None] | None = None,
    ):
        if default_driver not in DRIVERS:
            raise ValueError(f"default_driver={default_driver!r} is not one of {', '.join(DRIVERS)}")
        if dns not in DNS_MODES:
            raise ValueError(f"dns={dns!r} is not one of {', '.join(DNS_MODES)}")
        self.client = client
        # Engine 0 (``client``) and the further engines of its swarm (--dockernet-hosts).
        self.clients: list[docker.DockerClient] = [client, *engines]
        # What a run finds out once and shares between its topologies (whether swarm
        # VIPs work, which engines have the probe image).
        self.run_facts: dict[str, Any] = {} if run_facts is None else run_facts
        # Called instead of raising DriverUnavailable when a capability is missing:
        # (reason, whether the test asked for it explicitly). The plugin skips or fails.
        self.unavailable = unavailable
        self.identity = identity or RunIdentity()
        self._image = image
        self.default_driver = default_driver
        self.dns = dns
        self.allocator = allocator
        self.hooks: Hooks = hooks or _NoHooks()
        self.label = label  # e.g. the test's node id: shown in messages
        self.timings = timings or Timings()
        self.id = f"{self.identity.run_id}-{next(_topology_ids)}"
        self.failed = False  # set by the pytest plugin when a test using it failed
        self.closed = False
        # Holds something a later topology may ask for by value (a published host port, a
        # chosen subnet, the host's network namespace): removed before close() returns.
        self.host_bound = False
        self._removed = False
        self._lock = threading.RLock()
        self._networks: dict[str, Network] = {}
        self._containers: dict[str, Container] = {}
        self._implicit: dict[str, Network] = {}  # "bridge", "host": the engine's own networks
        self._services: dict[str, Any] = {}  # swarm.Service by logical name
        self._used_engines: set[int] = {0}
        self._shells: dict[str, Any] = {}  # probes.Shell by container id, attached on first use

    # -- bookkeeping -------------------------------------------------------------------

    @property
    def probe_image(self) -> str:
        if self._image is None:
            self._image = resolve_probe_image(self.client).name
        return self._image

    @property
    def networks_list(self) -> list[Network]:
        return list(self._networks.values())

    @property
    def containers_list(self) -> list[Container]:
        return list(self._containers.values())

    def get_network(self, name: str) -> Network:
        return self._networks[name]

    def get_container(self, name: str) -> Container:
        return self._containers[name]

    def _labels(self, role: str, name: str, extra: Mapping[str, str] = ()) -> dict[str, str]:
        return {**dict(extra), **self.identity.labels(), lbl.TOPOLOGY: self.id, lbl.ROLE: role, lbl.NAME: name}

    def _docker_name(self, name: str) -> str:
        return f"dn-{self.id}-{name}"

    def _filters(self) -> dict[str, Any]:
        return {"label": f"{lbl.TOPOLOGY}={self.id}"}

    def require_swarm(self, what: str = "driver='overlay'", *, explicit: bool = True) -> None:
        """Engine 0 must be a swarm manager; else DriverUnavailable (or the plugin's skip)."""
        facts = self.run_facts
        if "swarm" not in facts:
            swarm = self.client.info().get("Swarm") or {}
            facts["swarm"] = swarm.get("LocalNodeState") == "active" and bool(swarm.get("ControlAvailable"))
            facts["swarm state"] = swarm.get("LocalNodeState") or "unknown"
        if not facts["swarm"]:
            state = facts["swarm state"]
            why = (
                "engine 0 is a swarm worker, and overlay networks are made on a manager"
                if state == "active"
                else f"engine 0 is not in a swarm (state {state!r})"
            )
            self._unavailable(
                f"{what} needs swarm mode: {why}. Pass --dockernet-swarm auto (ini dockernet_swarm = auto) "
                "to make a single-node swarm for the run, or --dockernet-lab N for a multi-engine lab",
                explicit,
            )

    def _unavailable(self, reason: str, explicit: bool) -> None:
        if self.unavailable is not None:
            self.unavailable(reason, explicit)
        raise DriverUnavailable(reason)

    def _check_open(self) -> None:
        if self.closed:
            raise DockernetError(f"topology {self.label or self.id} is closed (its scope has ended)")

    # -- networks ----------------------------------------------------------------------

    @_measured("set-up")
    def network(
        self,
        name: str,
        *,
        driver: str | None = None,
        internal: bool = False,
        subnet: str | None = None,
        gateway: str | None = None,
        ipv6: bool = False,
        options: Mapping[str, str] | None = None,
        labels: Mapping[str, str] | None = None,
        encrypted: bool = False,
    ) -> Network:
        """Create a network; ``name`` is logical, the engine's name is unique per run.

        ``driver="overlay"`` makes an attachable overlay network of engine 0's swarm
        (``encrypted`` turns on IPsec for its data plane): standalone containers on any
        engine of the swarm, and services, join it.
        """
        self._check_open()
        _check_name("network name", name)
        driver = self.default_driver if driver is None else driver
        if driver not in DRIVERS:
            raise ValueError(f"driver={driver!r} is not supported: use one of {', '.join(DRIVERS)}")
        if not isinstance(encrypted, bool):
            raise TypeError(f"encrypted must be True or False, got {encrypted!r}")
        if encrypted and driver != "overlay":
            raise ValueError(f"encrypted=True is for overlay networks, not driver={driver!r}")
        options = _check_str_map("options", options)
        labels = _check_str_map("labels", labels)
        ipam_subnet = self._check_subnet(subnet, gateway)
        with self._lock:
            if name in self._networks:
                raise ValueError(f"network name {name!r} is already used in this topology: pick another name")
            self._networks[name] = None  # type: ignore[assignment]  # reserved while it is made
        try:
            if driver == "host":
                network = self._host_network(name)
            else:
                if driver == "overlay":
                    self.require_swarm()
                    if encrypted:
                        options = {**options, "encrypted": ""}
                with self.timings.measure("overlay networks") if driver == "overlay" else contextlib.nullcontext():
                    network = self._create_network(name, driver, internal, ipam_subnet, gateway, ipv6, options, labels)
        except BaseException:
            with self._lock:
                del self._networks[name]
            raise
        with self._lock:
            self._networks[name] = network
        if network.owned:
            self.hooks.pytest_dockernet_network_created(network=network)
        return network

    @staticmethod
    def _check_subnet(subnet: str | None, gateway: str | None) -> ipaddress.IPv4Network | None:
        if subnet is None:
            if gateway is not None:
                raise ValueError(f"gateway={gateway!r} needs subnet= as well (the gateway must lie in it)")
            return None
        try:
            net = ipaddress.IPv4Network(subnet, strict=True)
        except ValueError as exc:
            raise ValueError(f"subnet={subnet!r} is not a valid IPv4 network such as 10.99.0.0/24: {exc}") from None
        if gateway is not None:
            try:
                gw = ipaddress.IPv4Address(gateway)
            except ValueError:
                raise ValueError(f"gateway={gateway!r} is not an IPv4 address") from None
            if gw not in net or gw in (net.network_address, net.broadcast_address):
                raise ValueError(f"gateway={gateway!r} is not a host address of subnet={subnet!r}")
        return net

    def _host_network(self, name: str) -> Network:
        return Network(self, name, "host", self._implicit_network("host").id, "host", owned=False)

    def _implicit_network(self, docker_name: str) -> Network:
        if docker_name not in self._implicit:
            info = self.client.api.inspect_network(docker_name)
            config = (info.get("IPAM") or {}).get("Config") or [{}]
            self._implicit[docker_name] = Network(
                self,
                docker_name,
                docker_name,
                info["Id"],
                info["Driver"],
                config[0].get("Subnet"),
                config[0].get("Gateway"),
                owned=False,
            )
        return self._implicit[docker_name]

    def _create_network(self, name, driver, internal, subnet, gateway, ipv6, options, labels) -> Network:
        docker_name = self._docker_name(name)
        api = self.client.api
        if self.allocator is None:
            self.allocator = SubnetAllocator(taken=engine_subnets(self.client))

        chosen: list[str] = []

        def create(ipv4: ipaddress.IPv4Network) -> dict:
            # Docker takes the first host address when no gateway is given; naming it here
            # means the handle knows its gateway without inspecting the network.
            chosen[:] = [str(ipv4), gateway or str(ipv4.network_address + 1)]
            pools = [docker.types.IPAMPool(subnet=chosen[0], gateway=chosen[1])]
            if ipv6:
                v6 = self.allocator.ipv6_for(ipv4)
                pools.append(docker.types.IPAMPool(subnet=str(v6)))
            with gate_for(self.client).building():
                return api.create_network(
                    docker_name,
                    driver=driver,
                    options=options or None,
                    ipam=docker.types.IPAMConfig(pool_configs=pools),
                    check_duplicate=True,
                    internal=internal,
                    labels=self._labels("network", name, labels),
                    enable_ipv6=ipv6,
                    **({"attachable": True, "scope": "swarm"} if driver == "overlay" else {}),
                )

        try:
            if subnet is not None:
                self.allocator.mark_taken(str(subnet))
                result = create(subnet)
            else:
                result = self._create_in_pool(create)
        except docker.errors.APIError as exc:
            self._remove_networks_named(docker_name)
            raise DockernetError(f"creating network {name!r} failed: {exc.explanation or exc}") from None
        except BaseException:
            self._remove_networks_named(docker_name)
            raise
        network = Network(self, name, docker_name, result["Id"], driver, chosen[0], chosen[1], internal)
        network.pooled = subnet is None
        if driver == "overlay":
            self.timings.count("overlay networks")
        if subnet is not None:
            self.host_bound = True  # a later topology may ask for the same subnet
        self.timings.count("networks")
        return network

    def _create_in_pool(self, create) -> dict:
        for candidate in self.allocator.candidates():
            try:
                return create(candidate)
            except docker.errors.APIError as exc:
                if "overlap" not in str(exc).lower():
                    self.allocator.release(candidate)
                    raise
                self.allocator.reject(candidate)  # another process took it first
        raise DockernetError(self.allocator.exhausted_message())

    def _remove_networks_named(self, docker_name: str) -> None:
        """Undo a half-made network (an interrupted create may still have made it)."""
        for net in self.client.api.networks(names=[docker_name], filters=self._filters()):
            self._remove_network(net["Id"])

    # -- containers --------------------------------------------------------------------

    @_measured("set-up")
    def container(
        self,
        name: str,
        *,
        image: str | None = None,
        command: str | list[str] | None = None,
        networks: Iterable[Network] | Mapping[Network, Any] | None = None,
        environment: Mapping[str, str] | list[str] | None = None,
        ports: Mapping[str, Any] | None = None,
        links: Mapping[str, str] | None = None,
        network_mode: str | None = None,
        cap_add: list[str] | None = None,
        privileged: bool = False,
        host: int = 0,
    ) -> Container:
        """Create and start a container; returns once it is running.

        ``networks`` is a list of networks or ``{network: [aliases]}`` /
        ``{network: {"aliases": [...], "ipv4_address": "..."}}``; omitted, the container
        joins the topology's ``"default"`` network. Its logical ``name`` resolves on every
        user-defined network it joins. ``host=i`` runs it on engine ``i`` (0 is the
        environment's engine, 1... those of ``--dockernet-hosts``); a container on another
        engine joins overlay networks only.
        """
        self._check_open()
        _check_name("container name", name)
        host = self._check_host(host)
        attachments = self._attachments(networks)
        if host and (
            network_mode is not None or not attachments or any(n.driver != "overlay" for n, _, _ in attachments)
        ):
            raise ValueError(
                f"host={host}: a container on another engine can only join overlay networks: "
                "pass networks=[dockernet.network(name, driver='overlay')]"
            )
        network_mode = self._network_mode(network_mode, attachments, links)
        link_pairs = self._links(links, network_mode)
        if cap_add is not None and (isinstance(cap_add, str) or not all(isinstance(c, str) for c in cap_add)):
            raise TypeError(f"cap_add must be a list of capability names, got {cap_add!r}")
        with self._lock:
            if name in self._containers:
                raise ValueError(f"container name {name!r} is already used in this topology: pick another name")
            self._containers[name] = None  # type: ignore[assignment]  # reserved while it starts
        try:
            resident = image is None and command is None
            if ports or network_mode == "host":
                self.host_bound = True
            if image is None:
                image = self.probe_image
                self._probe_image_on(host)
                if resident:
                    command = RESIDENT
            else:
                ensure_image(self.clients[host], image)
            self._used_engines.add(host)
            if network_mode is None and not attachments:
                attachments = [(self._default_network(), [], None)]
            container = self._start(
                name,
                image,
                command,
                attachments,
                environment,
                ports,
                link_pairs,
                network_mode,
                cap_add,
                privileged,
                resident,
                host,
            )
        except BaseException:
            with self._lock:
                del self._containers[name]
            raise
        with self._lock:
            self._containers[name] = container
        self.hooks.pytest_dockernet_container_started(container=container)
        return container

    @_measured("set-up")
    def containers(self, specs: Mapping[str, Mapping[str, Any] | None]) -> dict[str, Container]:
        """Create and start several containers at once: ``{name: {container() keyword
        arguments}}``. Returns them by name once all are running.

        Containers with ``links=`` start after the others (they may link to them). If any
        fails, the others of the batch are removed too and the first error is raised.
        """
        self._check_open()
        if not isinstance(specs, Mapping) or not specs:
            raise TypeError(f"containers() takes a non-empty dict {{name: {{container() arguments}}}}, got {specs!r}")
        for name, spec in specs.items():
            if spec is not None and not isinstance(spec, Mapping):
                raise TypeError(f"containers()[{name!r}] must be a dict of container() arguments, got {spec!r}")
        specs = {name: dict(spec or {}) for name, spec in specs.items()}
        if any(
            s.get("networks") is None and s.get("network_mode") is None and not s.get("links") for s in specs.values()
        ):
            self._default_network()  # once, before the threads that would race to make it
        make = Topology.container.__wrapped__  # the batch's wall time is measured, not each thread's
        started: dict[str, Container] = {}
        errors: list[BaseException] = []
        waves = [[n for n, s in specs.items() if not s.get("links")], [n for n, s in specs.items() if s.get("links")]]
        with ThreadPoolExecutor(max_workers=min(8, len(specs))) as pool:
            for wave in waves:
                futures = {name: pool.submit(make, self, name, **specs[name]) for name in wave}
                for name, future in futures.items():
                    try:
                        started[name] = future.result()
                    except BaseException as exc:  # noqa: BLE001 - re-raised below, after the clean-up
                        errors.append(exc)
                if errors:
                    break
        if errors:
            for container in started.values():
                self._forget(container)
            raise errors[0]
        return {name: started[name] for name in specs}

    def _forget(self, container: Container) -> None:
        """Remove a container (and its sidecar) the topology made, as if it never had."""
        for container_id in filter(None, (container.sidecar_id, container.id)):
            _remove_container(container.client, container_id)
        with self._lock:
            self._containers.pop(container.name, None)

    def _attachments(self, networks) -> list[tuple[Network, list[str], str | None]]:
        if networks is None:
            return []
        if isinstance(networks, Network):
            networks = [networks]
        items = networks.items() if isinstance(networks, Mapping) else ((n, None) for n in networks)
        result = []
        for network, spec in items:
            self._check_own(network, "networks")
            aliases, address = [], None
            if isinstance(spec, Mapping):
                unknown = set(spec) - {"aliases", "ipv4_address"}
                if unknown:
                    raise ValueError(
                        f"networks[{network.name!r}] has unknown keys {sorted(unknown)}: "
                        "use 'aliases' and 'ipv4_address'"
                    )
                aliases, address = list(spec.get("aliases") or []), spec.get("ipv4_address")
            elif spec is not None:
                if isinstance(spec, str):
                    raise TypeError(f"networks[{network.name!r}]: give aliases as a list, e.g. [{spec!r}]")
                aliases = list(spec)
            for alias in aliases:
                _check_name(f"alias on network {network.name!r}", alias)
            if address is not None:
                try:
                    ok = ipaddress.IPv4Address(address) in ipaddress.IPv4Network(network.subnet)
                except (ValueError, TypeError):
                    ok = False
                if not ok:
                    raise ValueError(
                        f"networks[{network.name!r}]: ipv4_address={address!r} is not an address "
                        f"of that network's subnet {network.subnet}"
                    )
            result.append((network, aliases, address))
        return result

    def _check_own(self, network: object, argument: str) -> None:
        if not isinstance(network, Network):
            raise TypeError(f"{argument}: expected a Network from dockernet.network(), got {network!r}")
        if network.topology is not self:
            raise ValueError(
                f"{argument}: network {network.name!r} belongs to another dockernet factory "
                f"({network.topology.label or network.topology.id}); create it with this one, "
                "or use that factory for the container too"
            )
        if self._networks.get(network.name) is not network:
            raise ValueError(f"{argument}: network {network.name!r} is not (or no longer) part of this topology")

    def _network_mode(self, network_mode, attachments, links) -> str | None:
        hosts = [n for n, _, _ in attachments if n.driver == "host"]
        if hosts:
            if len(attachments) > 1 or network_mode not in (None, "host"):
                raise ValueError(
                    "networks: a container on the host network cannot join other networks "
                    "(it shares the host's network namespace)"
                )
            attachments.clear()
            return "host"
        if network_mode is None:
            if links and attachments:
                raise ValueError(_LINKS_ON_BRIDGE_ONLY)
            return "bridge" if links else None
        if network_mode not in ("host", "bridge", "none"):
            raise ValueError(f"network_mode={network_mode!r} is not one of 'host', 'bridge', 'none'")
        if attachments:
            raise ValueError(f"network_mode={network_mode!r} and networks= exclude each other: pass one of them")
        return network_mode

    def _links(self, links, network_mode) -> list[tuple[str, str]]:
        if not links:
            return []
        if network_mode != "bridge":
            raise ValueError(_LINKS_ON_BRIDGE_ONLY)
        warnings.warn(
            "links= uses Docker's legacy --link on the default bridge; put the containers on a "
            "user-defined network (dockernet.network()) and use aliases instead",
            DeprecationWarning,
            stacklevel=3,
        )
        pairs = []
        for target, alias in _check_str_map("links", links).items():
            other = self._containers.get(target)
            if other is None:
                raise ValueError(f"links: no container named {target!r} in this topology")
            if other.network_mode != "bridge":
                raise ValueError(
                    f"links: {target!r} is not on the default bridge (start it with network_mode='bridge')"
                )
            pairs.append((other.docker_name, _check_name("link alias", alias)))
        return pairs

    def _default_network(self) -> Network:
        with self._lock:
            existing = self._networks.get("default")
        return existing or self.network("default")

    def _start(
        self,
        name,
        image,
        command,
        attachments,
        environment,
        ports,
        link_pairs,
        network_mode,
        cap_add,
        privileged,
        resident=False,
        host=0,
    ) -> Container:
        client = self.clients[host]
        api = client.api
        docker_name = self._docker_name(name)
        dns: dict[str, Any] = {}
        if self.dns == "hermetic" and network_mode in (None, "bridge"):
            # ndots:1 makes the embedded DNS answer unknown single-label names itself instead
            # of forwarding them; the loopback server means a dotted name that nobody here
            # provides is never sent to the host's resolvers either (it times out locally).
            dns = {"dns": ["127.0.0.1"], "dns_opt": ["ndots:1"], "dns_search": ["."]}
        host_config = api.create_host_config(
            network_mode=network_mode or attachments[0][0].docker_name,
            port_bindings=dict(ports) if ports else None,
            links=link_pairs or None,
            cap_add=cap_add,
            privileged=privileged,
            **dns,
        )
        networking_config = None
        if attachments:
            net, aliases, address = attachments[0]
            networking_config = api.create_networking_config(
                {net.docker_name: api.create_endpoint_config(aliases=[name, *aliases], ipv4_address=address)}
            )
        container_id = None
        try:
            with gate_for(client).building():
                created = api.create_container(
                    image,
                    command=command,
                    name=docker_name,
                    hostname=name if network_mode != "host" else None,
                    environment=environment,
                    ports=_exposed_ports(ports),
                    labels=self._labels("container", name),
                    host_config=host_config,
                    networking_config=networking_config,
                    detach=True,
                    stdin_open=resident,
                )
                container_id = created["Id"]
                for net, aliases, address in attachments[1:]:
                    api.connect_container_to_network(
                        container_id, net.ref(host), aliases=[name, *aliases], ipv4_address=address
                    )
                api.start(container_id)
            container = Container(self, name, docker_name, container_id, image, network_mode, host)
            container.resident = resident
            state = self._refresh(container)
            if not state.get("Running"):
                raise DockernetError(
                    f"container {name!r} ({image}) exited at once with code {state.get('ExitCode')}; "
                    f"its output:\n{container.logs().strip() or '(none)'}"
                )
            for net, aliases, _ in attachments:
                container.endpoints[net.docker_name].aliases = [name, *aliases]
            self.timings.count("containers")
            return container
        except docker.errors.APIError as exc:
            self._remove_containers_named(docker_name, client)
            raise DockernetError(f"starting container {name!r} failed: {exc.explanation or exc}") from None
        except BaseException:
            self._remove_containers_named(docker_name, client)
            raise

    def _remove_containers_named(self, docker_name: str, client: docker.DockerClient | None = None) -> None:
        """Undo a half-made container (an interrupted create may still have made it)."""
        client = client or self.client
        filters = {**self._filters(), "name": f"^/{docker_name}$"}
        for c in client.api.containers(all=True, filters=filters):
            _remove_container(client, c["Id"])

    def _check_host(self, host: object) -> int:
        if not isinstance(host, int) or isinstance(host, bool) or not 0 <= host < len(self.clients):
            others = len(self.clients) - 1
            where = (
                f"engines 0 to {others} (0 is the environment's engine)"
                if others
                else "only engine 0: name further engines with --dockernet-hosts or start a lab with --dockernet-lab N"
            )
            raise ValueError(f"host={host!r} is not an engine of this run: there are {where}")
        return host

    def _probe_image_on(self, host: int) -> None:
        """Copy the probe image to engine ``host`` once per run (save/load: no registry needed)."""
        if host == 0:
            return
        copied = self.run_facts.setdefault("probe image on", set())
        if host in copied:
            return
        from .lab import copy_image

        image = self.probe_image
        try:
            self.clients[host].api.inspect_image(image)
        except docker.errors.ImageNotFound:
            try:
                self.clients[host].images.pull(image)
            except docker.errors.APIError:
                with self.timings.measure("image"):
                    copy_image(self.client, self.clients[host], image)
        copied.add(host)

    def _refresh(self, container: Container) -> dict:
        info = container.client.api.inspect_container(container.id)
        by_id = {n.id: n for n in self._networks.values() if n is not None}
        by_name = {n.docker_name: n for n in self._networks.values() if n is not None}
        old = container.endpoints
        container.endpoints = {}
        if container.network_mode != "host":
            for docker_name, ep in (info["NetworkSettings"].get("Networks") or {}).items():
                network = by_id.get(ep.get("NetworkID")) or by_name.get(docker_name)
                if network is None and docker_name in ("bridge",):
                    network = self._implicit_network(docker_name)
                aliases = (
                    old[docker_name].aliases
                    if docker_name in old
                    else [a for a in ep.get("Aliases") or [] if not container.id.startswith(a)]
                )
                container.endpoints[docker_name] = Endpoint(network, ep.get("IPAddress") or None, aliases)
        return info["State"]

    def connect(self, container: Container, network: Network, *, aliases: list[str] | None = None) -> None:
        """Attach a running container to a network (its logical name resolves there too)."""
        self._check_open()
        self._check_container(container, "container")
        self._check_own(network, "network")
        aliases = [_check_name("alias", a) for a in aliases or []]
        try:
            with gate_for(container.client).building():
                container.client.api.connect_container_to_network(
                    container.id, network.ref(container.host), aliases=[container.name, *aliases]
                )
        except docker.errors.APIError as exc:
            raise DockernetError(
                f"connecting {container.name!r} to {network.name!r} failed: {exc.explanation or exc}"
            ) from None
        self._refresh(container)
        container.endpoints[network.docker_name].aliases = [container.name, *aliases]

    def disconnect(self, container: Container, network: Network) -> None:
        self._check_open()
        self._check_container(container, "container")
        self._check_own(network, "network")
        try:
            container.client.api.disconnect_container_from_network(container.id, network.ref(container.host))
        except docker.errors.APIError as exc:
            raise DockernetError(
                f"disconnecting {container.name!r} from {network.name!r} failed: {exc.explanation or exc}"
            ) from None
        self._refresh(container)

    def _check_container(self, container: object, argument: str) -> Container:
        if not isinstance(container, Container):
            raise TypeError(f"{argument}: expected a Container from dockernet.container(), got {container!r}")
        if container.topology is not self:
            raise ValueError(f"{argument}: container {container.name!r} belongs to another dockernet factory")
        return container

    # -- swarm services ----------------------------------------------------------------

    @_measured("set-up")
    def service(
        self,
        name: str,
        *,
        image: str | None = None,
        command: str | list[str] | None = None,
        networks: Iterable[Network] | None = None,
        replicas: int = 1,
        endpoint_mode: str = _VIP,
        constraints: Iterable[str] | None = None,
        timeout: float = 60.0,
    ):
        """Create a swarm service on overlay ``networks``; returns once all ``replicas`` run.

        Its logical ``name`` resolves on those networks to the service's virtual IP
        (``endpoint_mode="vip"``) or to its tasks' addresses (``"dnsrr"``), and
        ``tasks.<name>`` to every task's address. ``constraints`` place the tasks
        (``["node.role==manager"]``, ``["node.hostname==dnlab1"]``). Without ``image``,
        the probe image runs, idle, so tasks can be probed like any container.
        """
        from .swarm import create_service

        self._check_open()
        return create_service(
            self,
            name,
            image=image,
            command=command,
            networks=networks,
            replicas=replicas,
            endpoint_mode=endpoint_mode,
            constraints=constraints,
            timeout=timeout,
        )

    def get_service(self, name: str):
        return self._services[name]

    def _engine_of_node(self, node_id: str) -> int:
        from .swarm import node_engines

        nodes = self.run_facts.get("nodes") or {}
        if node_id not in nodes:
            nodes = self.run_facts["nodes"] = node_engines(self.clients)
        if node_id not in nodes:
            raise DockernetError(
                f"a task runs on swarm node {node_id}, which is none of this run's engines: "
                "name every engine of the swarm with --dockernet-hosts"
            )
        return nodes[node_id]

    # -- probes and assertions (the helpers of pytest_dockernet.assertions) -------------

    def assert_reachable(self, src, dst, *, port=None, timeout=5.0):
        __tracebackhide__ = True
        from .assertions import assert_reachable

        assert_reachable(src, dst, port=port, timeout=timeout)

    def assert_unreachable(self, src, dst, *, port=None, timeout=2.0):
        __tracebackhide__ = True
        from .assertions import assert_unreachable

        assert_unreachable(src, dst, port=port, timeout=timeout)

    def assert_resolves(self, src, name, *, to=None, timeout=5.0):
        __tracebackhide__ = True
        from .assertions import assert_resolves

        assert_resolves(src, name, to=to, timeout=timeout)

    def assert_not_resolves(self, src, name, *, timeout=2.0):
        __tracebackhide__ = True
        from .assertions import assert_not_resolves

        assert_not_resolves(src, name, timeout=timeout)

    def assert_isolated(self, a, b, *, timeout=1.0):
        __tracebackhide__ = True
        from .assertions import assert_isolated

        assert_isolated(a, b, timeout=timeout)

    def reachability(self, sources, targets, *, port=None, timeout=1.0):
        from .assertions import reachability

        return reachability(sources, targets, port=port, timeout=timeout)

    # -- teardown ----------------------------------------------------------------------

    def describe(self) -> str:
        """The topology as failure messages show it."""
        lines = [f"topology {self.label or self.id}:", "  networks:"]
        nets = [n for n in self._networks.values() if n is not None]
        if not nets:
            lines.append("    (none)")
        for n in nets:
            extra = f"  gateway {n.gateway}" if n.gateway else ""
            extra += "  internal" if n.internal else ""
            lines.append(f"    {n.name}  [{n.docker_name}]  {n.driver}  {n.subnet or '-'}{extra}")
        lines.append("  containers:")
        containers = [c for c in self._containers.values() if c is not None]
        if not containers:
            lines.append("    (none)")
        for c in containers:
            mode = f"  network_mode={c.network_mode}" if c.network_mode else ""
            on = f"  on engine {c.host}" if c.host else ""
            lines.append(f"    {c.name}  [{c.docker_name}]  {c.image}{mode}{on}")
            for docker_name, e in c.endpoints.items():
                net = e.network.name if e.network else docker_name
                lines.append(f"      on {net}: {e.ip or '-'}  aliases: {', '.join(e.aliases) or '-'}")
        services = [v for v in self._services.values() if v is not None]
        if services:
            lines.append("  services:")
            for v in services:
                lines.append(f"    {v.name}  [{v.docker_name}]  {v.image}  endpoint_mode={v.endpoint_mode}")
        return "\n".join(lines)

    def removal_command(self) -> str:
        f = f"label={lbl.TOPOLOGY}={self.id}"
        return f"docker rm -f $(docker ps -aq --filter {f}); docker network rm $(docker network ls -q --filter {f})"

    @_measured("teardown")
    def close(self, *, keep: bool = False, later: Remover | None = None) -> None:
        """Remove every container (forced, with anonymous volumes), then every network.

        With ``keep`` nothing is removed (see :meth:`removal_command`). With ``later``,
        the removal runs in that :class:`Remover`'s thread while the caller goes on,
        unless the topology is :attr:`host_bound`. Calling it again finishes a removal
        that was interrupted (Ctrl-C, SIGTERM) and is otherwise a no-op.
        """
        if not self.closed:
            self.closed = True
            try:
                self.hooks.pytest_dockernet_topology_teardown(factory=self)
            except BaseException:
                self._remove()
                raise
        close_shells(self)
        if keep:
            return
        if later is not None and not self.host_bound:
            later.submit(self)
        else:
            self._remove()

    def _remove(self) -> None:
        if self._removed:
            return
        with self.timings.measure("teardown"):
            filters = self._filters()
            if self._services:
                remove_services(self.client, filters)
                engines = range(len(self.clients))  # their tasks ran anywhere
            else:
                engines = self._used_engines
            # Engine 0 last: the overlay networks it holds wait for the others' endpoints.
            for host in sorted(engines, reverse=True):
                # Another engine's copy of an overlay network goes with its last container;
                # the network itself is the manager's (engine 0's) to remove.
                remove_labelled(self.clients[host], filters, networks=host == 0)
        self._removed = True
        for network in self._networks.values():
            if network is not None and network.pooled:
                self.allocator.release(ipaddress.IPv4Network(network.subnet))

    def __enter__(self) -> Topology:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def _remove_network(self, network_id: str) -> None:
        _remove_network(self.client, network_id)

    def __repr__(self) -> str:
        return f"<Topology {self.label or self.id}: {len(self._networks)} networks, {len(self._containers)} containers>"


class Remover:
    """Removes closed topologies in a background thread, so that one test's teardown
    overlaps the next test's set-up.

    At most ``backlog`` removals wait at any time (``submit`` blocks for the oldest
    beyond that), so a long run never piles up networks. :meth:`wait` finishes them all
    and returns the topologies whose removal failed, with the error.
    """

    def __init__(self, backlog: int = 2):
        if backlog < 1:
            raise ValueError(f"backlog={backlog!r} must be at least 1")
        self.backlog = backlog
        self._pool: ThreadPoolExecutor | None = None
        self._pending: deque[tuple[Topology, Future]] = deque()
        self._failed: list[tuple[Topology, BaseException]] = []
        self._lock = threading.Lock()

    def submit(self, topology: Topology) -> None:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dockernet-teardown")
            self._pending.append((topology, self._pool.submit(topology._remove)))
        while len(self._pending) > self.backlog:
            self._settle_oldest()

    @property
    def pending(self) -> list[Topology]:
        return [t for t, future in list(self._pending) if not future.done()]

    def _settle_oldest(self) -> None:
        with self._lock:
            if not self._pending:
                return
            topology, future = self._pending.popleft()
        try:
            future.result()
        except Exception as exc:  # noqa: BLE001 - reported by wait()
            self._failed.append((topology, exc))

    def wait(self) -> list[tuple[Topology, BaseException]]:
        """Finish every pending removal; the ones that failed, once each."""
        while self._pending:
            self._settle_oldest()
        failed, self._failed = self._failed, []
        return failed


def _exposed_ports(ports: Mapping[Any, Any] | None) -> list | None:
    """``{"8080/tcp": ..., 53: ...}`` keys as the SDK's create_container wants them."""
    if not ports:
        return None
    exposed = []
    for key in ports:
        port, _, proto = str(key).partition("/")
        try:
            exposed.append((int(port), proto) if proto else int(port))
        except ValueError:
            raise ValueError(f"ports: {key!r} is not a container port such as 8080 or '8080/tcp'") from None
    return exposed


def _exec(client: docker.DockerClient, container_id: str, cmd: str | list[str]) -> tuple[int, str]:
    api = client.api
    exec_id = api.exec_create(container_id, cmd, stdout=True, stderr=True)["Id"]
    output = api.exec_start(exec_id)
    code = api.exec_inspect(exec_id)["ExitCode"]
    return code, output.decode(errors="replace")


def engine_subnets(client: docker.DockerClient) -> list[str]:
    """Every subnet the engine's networks use now (one API call)."""
    return [
        config["Subnet"]
        for network in client.api.networks()
        for config in (network.get("IPAM") or {}).get("Config") or []
        if config.get("Subnet")
    ]


def _remove_container(client: docker.DockerClient, container_id: str) -> None:
    try:
        client.api.remove_container(container_id, force=True, v=True)
    except docker.errors.NotFound:
        pass
    except docker.errors.APIError as exc:
        if "already in progress" not in str(exc):
            raise


@tenacity.retry(
    retry=tenacity.retry_if_exception(
        lambda e: (
            isinstance(e, docker.errors.APIError)
            and not isinstance(e, docker.errors.NotFound)
            and ("active endpoints" in str(e) or "in use by task" in str(e))
        )
    ),
    stop=tenacity.stop_after_delay(10),
    wait=tenacity.wait_fixed(0.2),
    reraise=True,
)
def _remove_network_retrying(client: docker.DockerClient, network_id: str) -> None:
    client.api.remove_network(network_id)


def _remove_network(client: docker.DockerClient, network_id: str) -> None:
    with gate_for(client).removing():
        _remove_network_ungated(client, network_id)


def _remove_network_ungated(client: docker.DockerClient, network_id: str) -> None:
    try:
        _remove_network_retrying(client, network_id)
    except docker.errors.NotFound:
        pass
    except docker.errors.APIError as exc:
        if "active endpoints" not in str(exc):
            raise
        # Something outside the topology (e.g. a container made with the raw SDK) holds on.
        for container_id in client.api.inspect_network(network_id).get("Containers") or {}:
            try:
                client.api.disconnect_container_from_network(container_id, network_id, force=True)
            except docker.errors.APIError:
                pass
        _remove_network_retrying(client, network_id)


def remove_services(client: docker.DockerClient, filters: dict[str, Any]) -> list[str]:
    """Remove the swarm services matching ``filters`` (none where the engine is no manager)."""
    try:
        services = client.api.services(filters=filters)
    except docker.errors.APIError:
        return []  # not a swarm manager: it has no services
    for service in services:
        try:
            client.api.remove_service(service["ID"])
        except docker.errors.NotFound:
            pass
    return [s["Spec"]["Name"] for s in services]


def remove_labelled(
    client: docker.DockerClient, filters: dict[str, Any], *, networks: bool = True
) -> tuple[list[str], list[str]]:
    """Remove the containers, then (unless told not to) the networks, matching ``filters``;
    (container names, network names)."""
    containers = client.api.containers(all=True, filters=filters)
    if containers:
        with ThreadPoolExecutor(max_workers=min(8, len(containers))) as pool:
            list(pool.map(lambda c: _remove_container(client, c["Id"]), containers))
    found = client.api.networks(filters=filters) if networks else []
    if found:
        with ThreadPoolExecutor(max_workers=min(8, len(found))) as pool:
            list(pool.map(lambda n: _remove_network(client, n["Id"]), found))
    return [c["Names"][0].lstrip("/") for c in containers], [n["Name"] for n in found]
