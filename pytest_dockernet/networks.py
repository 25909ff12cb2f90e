"""Making a topology's networks: checked arguments, a subnet from the subnet allocator
(moving on when another process took it first), an overlay on the swarm, the engine's own
``host`` and ``bridge`` networks, an empty network of the warm pool's, and undoing a create
that failed half-way.
"""

from __future__ import annotations

import contextlib
import ipaddress
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from .checks import check_bool, check_name, check_str_map, check_subnet
from .context import POOL_NEUTRAL
from .engine import engine_subnets, remove_network, remove_networks_named, undone_on_failure
from .engine.errors import APIError
from .engine.gate import gate_for
from .errors import DockernetError
from .handles import Network, check_owned
from .labels import ROLE, SESSION
from .parked import end
from .reaper import Judge, prune
from .registry import Registry
from .retry import poll
from .subnets import SubnetAllocator
from .swarm import require_swarm
from .warm_pool import NETWORK_ROLE

if TYPE_CHECKING:
    from .context import Context
    from .warm_pool import WarmPool

DRIVERS = ("bridge", "host", "overlay")
SUBNET_WAIT = 120.0  # seconds a network waits for another live run to let go of its chosen subnet


@dataclass
class Holders:
    """The engine's networks on a subnet overlapping one asked for, by whose they are."""

    own: list[str] = field(default_factory=list)  # this run's, by engine name
    live: list[str] = field(default_factory=list)  # another live run's: "NAME (run ID)"
    pooled: list[str] = field(default_factory=list)  # another live run's warm pool's: held until it ends
    dead: dict[str, list[str]] = field(default_factory=dict)  # a dead run's, by run id
    foreign: list[str] = field(default_factory=list)  # not the plugin's: "NAME (SUBNETS)"


@dataclass
class NetworkSpec:
    """The arguments of ``Topology.network()``, as given. Any field not marked POOL_NEUTRAL
    keeps the network out of the warm pool when given (see warm_pool.asks_nothing)."""

    name: str = field(metadata=POOL_NEUTRAL)
    driver: str | None = field(default=None, metadata=POOL_NEUTRAL)  # the pool's are bridges: checked as resolved
    internal: bool = False
    subnet: str | None = None
    gateway: str | None = None
    ipv6: bool = False
    options: Mapping[str, str] | None = None
    labels: Mapping[str, str] | None = None
    encrypted: bool = False
    ipv6_subnet: str | None = None  # with ipv6=True; else the /64 paired with its IPv4 subnet


class Networks:
    """The networks of one topology, by logical name."""

    def __init__(self, context: Context, allocator: SubnetAllocator | None):
        self.context = context
        self.registry: Registry[Network] = context.networks
        context.allocator = allocator  # the subnet allocator, kept there: made on first use when the caller has none
        self._implicit: dict[str, Network] = {}  # "bridge", "host": the engine's own networks
        self._returned: set[str] = set()  # the warm pool's networks given back (or removed)
        context.find_network = self.find

    @property
    def warm_pool(self) -> WarmPool | None:
        pool: WarmPool | None = self.context.warm_pool
        return pool

    @property
    def allocator(self) -> SubnetAllocator | None:
        return cast("SubnetAllocator | None", self.context.allocator)

    def create(self, spec: NetworkSpec) -> Network:
        """Create one network (see Topology.network)."""
        context, name, encrypted = self.context, spec.name, spec.encrypted
        check_name("network name", name)
        driver = context.settings.default_driver if spec.driver is None else spec.driver
        if driver not in DRIVERS:
            raise ValueError(f"driver={driver!r} is not supported: use one of {', '.join(DRIVERS)}")
        check_bool("encrypted", encrypted)
        check_bool("internal", spec.internal)
        check_bool("ipv6", spec.ipv6)
        if encrypted and driver != "overlay":
            raise ValueError(f"encrypted=True is for overlay networks, not driver={driver!r}")
        options = check_str_map("options", spec.options)
        labels = check_str_map("labels", spec.labels)
        ipam_subnet = check_subnet(spec.subnet, spec.gateway)
        subnet6 = check_ipv6_subnet(spec.ipv6_subnet, spec.ipv6)

        def make() -> Network:
            if driver == "host":
                return Network(context, name, "host", self.implicit("host").id, "host", owned=False)
            opts = options
            if spec.internal:
                context.need("internal-dns")
            if spec.ipv6:
                context.need("ipv6")
            if driver == "overlay":
                require_swarm(context)
                if encrypted:
                    opts = {**options, "encrypted": ""}
            pool = self.warm_pool
            pool = pool if pool is not None and pool.fits_network(spec, driver) else None
            if pool is not None:
                waiting = pool.take_network(context, name)
                if waiting is not None:
                    context.timings.count("networks")
                    return waiting
            overlay = context.timings.measure("overlay networks") if driver == "overlay" else contextlib.nullcontext()
            with overlay:
                args = (name, driver, spec.internal, ipam_subnet, spec.gateway, spec.ipv6, opts, labels)
                return self._create(*args, pool=pool, subnet6=subnet6)

        network = self.registry.add(name, make)
        if network.owned:
            context.hooks.pytest_dockernet_network_created(network=network)
        made = f"{network.driver} {network.subnet or ''}{' internal' * network.internal}"
        context.timeline.add(f"network {name} {'made' if network.owned else 'used'}: {made}")
        return network

    def default(self) -> Network:
        """The topology's ``"default"`` network, made on first use."""
        existing = self.registry.find("default")
        return existing or self.create(NetworkSpec("default"))

    def implicit(self, docker_name: str) -> Network:
        """A handle of one of the engine's own networks (``bridge``, ``host``), not removed."""
        if docker_name not in self._implicit:
            info = self.context.engine.inspect_network(docker_name)
            config = (info.get("IPAM") or {}).get("Config") or [{}]
            self._implicit[docker_name] = Network(
                self.context,
                docker_name,
                docker_name,
                info["Id"],
                info["Driver"],
                config[0].get("Subnet"),
                config[0].get("Gateway"),
                owned=False,
            )
        return self._implicit[docker_name]

    def find(self, docker_name: str, network_id: str | None = None) -> Network | None:
        """The handle of the network the engine calls ``docker_name`` (or has ``network_id``)."""
        networks = list(self.registry)
        for network in networks:
            if network_id is not None and network.id == network_id:
                return network
        for network in networks:
            if network.docker_name == docker_name:
                return network
        return self.implicit(docker_name) if docker_name == "bridge" else None

    def check_own(self, network: object, argument: str) -> Network:
        """``network`` must be a live network of this topology; else an error naming ``argument``."""
        if not isinstance(network, Network):
            raise TypeError(f"{argument}: expected a Network from dockernet.network(), got {network!r}")
        check_owned(network, self.context, argument)
        if self.registry.find(network.name) is not network:
            raise ValueError(f"{argument}: network {network.name!r} is not (or no longer) part of this topology")
        return network

    def discard(self, network: object) -> None:
        """Remove one network the topology made now (its subnet goes back to the allocator)."""
        network = self.check_own(network, "discard()")
        end(self.context)  # a parked topology's containers handed out with it leave it first
        pool = self.warm_pool
        if network.warm and pool is not None:
            pool.drop_network(network)
        elif network.warm:
            remove_network(self.context.engine, network.id)
            self._give_back_subnet(network)
        elif network.owned:
            remove_network(self.context.engine, network.id)
            if self.allocator is not None and network.subnet is not None:
                subnet = ipaddress.IPv4Network(network.subnet)
                (self.allocator.release if network.allocated else self.allocator.unhold)(subnet)
        self.registry.discard(network.name)

    def return_warm(self) -> None:
        """Give the warm pool back the networks it gave (or made for) this topology, once
        their containers are gone; without a pool, remove them."""
        for network in [n for n in self.registry if n.warm and n.id not in self._returned]:
            self._returned.add(network.id)  # once: a second remove() finds nothing to return
            pool = self.warm_pool
            if pool is not None:
                pool.give_back_network(network)
            else:
                remove_network(self.context.engine, network.id)
                self._give_back_subnet(network)

    def _give_back_subnet(self, network: Network) -> None:
        if self.allocator is not None and network.subnet is not None:
            self.allocator.release(ipaddress.IPv4Network(network.subnet))

    def release_subnets(self) -> None:
        """Give the allocator back the subnets of the removed networks (the warm pool's keep theirs)."""
        for network in self.registry:
            if self.allocator is None or not network.owned or network.subnet is None or network.warm:
                continue
            subnet = ipaddress.IPv4Network(network.subnet)
            if network.allocated:
                self.allocator.release(subnet)
            else:
                self.allocator.unhold(subnet)

    def _create(
        self,
        name: str,
        driver: str,
        internal: bool,
        subnet: ipaddress.IPv4Network | None,
        gateway: str | None,
        ipv6: bool,
        options: dict[str, str],
        labels: dict[str, str],
        pool: WarmPool | None = None,
        subnet6: str | None = None,
    ) -> Network:
        context = self.context
        engine = context.engine
        if pool is None:
            docker_name, all_labels = context.docker_name_for(name), context.labels_for("network", name, labels)
        else:  # one of the warm pool's, which later tests may have
            docker_name, all_labels = pool.new_network()
        filters = context.filters() if pool is None else pool.filters()
        allocator = self.allocator
        if allocator is None:
            allocator = self.context.allocator = SubnetAllocator(taken=engine_subnets(engine))
        chosen: list[str] = []

        def create(ipv4: ipaddress.IPv4Network) -> dict[str, str]:
            # Docker takes the first host address when no gateway is given; naming it here
            # means the handle knows its gateway without inspecting the network.
            chosen[:] = [str(ipv4), gateway or str(ipv4.network_address + 1)]
            configs = [{"Subnet": chosen[0], "Gateway": chosen[1]}]
            if ipv6:
                chosen.append(subnet6 or str(allocator.ipv6_for(ipv4)))
                configs.append({"Subnet": chosen[2]})
            swarm_scoped: dict[str, Any] = {"attachable": True, "scope": "swarm"} if driver == "overlay" else {}
            with gate_for(engine).building():
                return engine.create_network(
                    docker_name,
                    driver=driver,
                    options=options or None,
                    ipam={"Driver": "default", "Config": configs},  # the API's IPAM object
                    check_duplicate=True,
                    internal=internal,
                    labels=all_labels,
                    enable_ipv6=ipv6,
                    **swarm_scoped,
                )

        def undo() -> None:
            remove_networks_named(engine, docker_name, filters)
            if subnet is not None:
                allocator.unhold(subnet)

        with undone_on_failure(f"creating network {name!r}", undo):
            if subnet is not None:
                allocator.hold(subnet)  # until the network is removed, and not a moment more
                result = self._create_fixed(create, subnet, name)
            else:
                result = self._create_allocated(create)
        network = Network(context, name, docker_name, result["Id"], driver, chosen[0], chosen[1], internal)
        network.allocated, network.warm = subnet is None, pool is not None
        network.subnet6 = chosen[2] if ipv6 else None
        if pool is not None:
            pool.lend(network)
        if driver == "overlay":
            context.timings.count("overlay networks")
        if subnet is not None:
            context.host_bound = True  # a later topology may ask for the same subnet
        context.timings.count("networks")
        return network

    def _create_fixed(
        self, create: Callable[[ipaddress.IPv4Network], dict[str, str]], subnet: ipaddress.IPv4Network, name: str
    ) -> dict[str, str]:
        """A network on the subnet the test chose. What holds the subnet decides: this run's
        warm pool lets go of its empty networks on it (one still on its way back from a test
        is waited for); another live run of the plugin is waited for until it lets go (the
        same Compose file in two runs at once, two xdist workers); a dead run's network (a
        run killed after this one's start-up prune, e.g. a crashed xdist worker) is pruned
        with what else that run left. Anything else is an error naming the holder."""
        pool = self.warm_pool
        if pool is not None:
            pool.make_room(subnet)
        last = Holders()
        prunes: list[int] = []
        misses: list[int] = []

        def attempt() -> dict[str, str] | None:
            nonlocal last
            try:
                return create(subnet)
            except APIError as exc:
                if not subnet_taken(exc):
                    raise
                refused = exc.explanation or str(exc)
            last = self._holders(subnet)
            if last.dead:
                prunes.append(1)
                failed = self._prune(last.dead)
                if failed or len(prunes) > 3:  # the engine would not, or it keeps coming back
                    raise DockernetError(self._dead_message(name, subnet, last, failed))
                return None
            if last.own:
                if pool is not None and pool.make_room(subnet):
                    return None
                raise DockernetError(self._own_message(name, subnet, last))
            if last.pooled:  # kept by that run's warm pool until it ends: no use waiting
                raise DockernetError(self._pooled_message(name, subnet, last))
            if not last.live:
                # Nobody of the plugin's holds it: someone else's network, or ours just removed
                # (its removal races the look). A few looks tell the two apart.
                misses.append(1)
                if len(misses) > 4:
                    holder = f"overlaps {', '.join(last.foreign)}, not made by pytest-dockernet" if last.foreign else ""
                    raise DockernetError(
                        f"creating network {name!r} failed: subnet {subnet} {holder or refused}: "
                        "give this network another subnet"
                    )
            return None

        result, _ = poll(attempt, lambda r: r is not None, timeout=SUBNET_WAIT, interval=0.25)
        if result is not None:
            return result
        if last.own:  # a network of this run's on its way back that never came
            raise DockernetError(self._own_message(name, subnet, last))
        allocator = self.allocator
        shared = (
            f"; {subnet} overlaps the subnet pool {allocator.range}, from which every run of the plugin takes "
            "its networks: a subnet outside it is never held by one"
            if allocator is not None and allocator.range.overlaps(subnet)
            else ""
        )
        raise DockernetError(
            f"creating network {name!r} failed: subnet {subnet} is still held after {SUBNET_WAIT:g} s by "
            f"{', '.join(last.live)}, of a run that is alive (its lease runs): end that run or give this network "
            f"another subnet{shared}. What a run that is gone left is removed by `pytest --dockernet-prune`"
        )

    def _own_message(self, name: str, subnet: ipaddress.IPv4Network, holders: Holders) -> str:
        mine = {n.docker_name: n.name for n in self.registry}
        names = [f"{mine[n]!r} ({n})" if n in mine else n for n in holders.own]
        return (
            f"creating network {name!r} failed: subnet {subnet} overlaps {', '.join(names)} of this run "
            "(this topology's, or another's such as a module or session fixture's): give it another subnet"
        )

    def _pooled_message(self, name: str, subnet: ipaddress.IPv4Network, holders: Holders) -> str:
        allocator = self.allocator
        outside = f" outside the plugin's subnet pool {allocator.range}" if allocator is not None else ""
        return (
            f"creating network {name!r} failed: subnet {subnet} overlaps {', '.join(holders.pooled)}, kept by the "
            "warm pool of another run that is alive (an xdist worker's, say) until that run ends: give this network "
            f"a subnet{outside}, or run with --dockernet-pool 0"
        )

    @staticmethod
    def _dead_message(name: str, subnet: ipaddress.IPv4Network, holders: Holders, failed: list[str]) -> str:
        held = "; ".join(f"{', '.join(nets)} of run {run}" for run, nets in holders.dead.items())
        why = f"the engine refused: {'; '.join(failed)}" if failed else "it is still there after pruning it"
        return (
            f"creating network {name!r} failed: subnet {subnet} is held by {held}, which ended without removing it, "
            f"and {why}; `pytest --dockernet-prune` removes what dead runs left"
        )

    def _holders(self, subnet: ipaddress.IPv4Network) -> Holders:
        """The networks on the engine whose subnets overlap ``subnet``, by whose they are."""
        context, holders = self.context, Holders()
        me, judge = context.identity, None
        for info in context.engine.networks():
            configs = (info.get("IPAM") or {}).get("Config") or []
            nets = [ipaddress.ip_network(c["Subnet"], strict=False) for c in configs if c.get("Subnet")]
            if not any(n.version == 4 and n.overlaps(subnet) for n in nets):
                continue
            labels = info.get("Labels") or {}
            run = labels.get(SESSION)
            if run is None:
                holders.foreign.append(f"{info['Name']} ({', '.join(str(n) for n in nets if n.version == 4)})")
            elif run == me.run_id:
                holders.own.append(info["Name"])
            else:
                judge = judge or Judge(context.engine, me)  # the engine's leases, read once
                if judge.dead(labels):
                    holders.dead.setdefault(run, []).append(info["Name"])
                elif labels.get(ROLE) == NETWORK_ROLE:
                    holders.pooled.append(f"{info['Name']} (run {run})")
                else:
                    holders.live.append(f"{info['Name']} (run {run})")
        return holders

    def _prune(self, dead: dict[str, list[str]]) -> list[str]:
        """Prune these dead runs; what the engine refused to remove of theirs."""
        return prune(self.context.engine, self.context.identity, runs=set(dead)).failed

    def _create_allocated(self, create: Callable[[ipaddress.IPv4Network], dict[str, str]]) -> dict[str, str]:
        """A network on the next free subnet of the allocator's range."""
        allocator = self.allocator
        assert allocator is not None
        for candidate in allocator.candidates():
            try:
                return create(candidate)
            except APIError as exc:
                if not subnet_taken(exc):
                    allocator.release(candidate)
                    raise
                allocator.reject(candidate)  # another process took it first
        raise DockernetError(allocator.exhausted_message())


def subnet_taken(exc: APIError) -> bool:
    """Whether the engine refused a subnet because something has it: Docker says "Pool
    overlaps with other one on this address space"; Podman (netavark) "subnet ... is already
    used on the host or by another config" (a host route: its own bridge, another engine's)."""
    text = str(exc).lower()
    return "overlap" in text or "already used on the host" in text


def check_ipv6_subnet(subnet: object, ipv6: bool) -> str | None:
    """``ipv6_subnet``: an IPv6 network (``fd00:9::/64``) of a network made with ``ipv6=True``."""
    if subnet is None:
        return None
    if not ipv6:
        raise ValueError(f"ipv6_subnet={subnet!r} needs ipv6=True as well")
    try:
        network = ipaddress.IPv6Network(subnet if isinstance(subnet, str) else "", strict=True)
    except ValueError as exc:
        raise ValueError(f"ipv6_subnet={subnet!r} is not an IPv6 network such as 'fd00:9::/64': {exc}") from None
    if network.prefixlen > 124:
        raise ValueError(f"ipv6_subnet={subnet!r} is too small: a network needs a gateway and hosts, /124 at the least")
    return str(network)
