"""Faults on a topology's containers: partitions between groups, healed on demand.

A fault is applied from a *fault helper*: a container of the fault image (the probe image
plus ``iptables``, ``ip6tables`` and ``tc``, copied here from this machine with their
libraries, so no registry is needed: :mod:`.fault_image`) that shares the target's network
namespace with ``NET_ADMIN``. The application's image needs nothing and is not made
privileged. Rules (:mod:`.fault_rules`) live in the target's own namespace, so they die
with it; the helpers carry the topology's labels and go with it. One helper per
container, started on first use and reused.

A partition between groups ``a`` and ``b`` puts, in the namespace of each member of
``a``, a chain pair that drops what goes to and comes from every address of ``b``'s
members, IPv4 and IPv6, on every network. ``one_way=True`` drops only what ``a`` starts
towards ``b``: the rule lets packets of connections that are already established (in
either direction) pass, so ``b`` can still open connections to ``a`` and get the replies.

A fault follows its containers: after a restart (a new namespace) and after a
``connect()`` or ``disconnect()`` (other addresses, other interfaces) it is put again, so
it covers the networks they are on now.
"""

from __future__ import annotations

import itertools
import re
import threading
from collections.abc import Callable, Iterable
from functools import partial
from typing import TYPE_CHECKING, Any

import docker
import docker.errors

from .engine import exec_in, remove_container, remove_containers_named, undone_on_failure
from .engine.gate import gate_for
from .errors import DockernetError, DriverUnavailable
from .fault_image import IP6TABLES_MISSING, TC, fault_image
from .fault_rules import (
    Settings,
    degrade_script,
    lift_script,
    link_local,
    partition_counts,
    partition_script,
    restore_script,
)
from .handles import Container, Network
from .image import provide_image
from .probes import RESIDENT

if TYPE_CHECKING:
    from .topology import Topology


class Partition:
    """Traffic between groups ``a`` and ``b`` dropped (only ``a`` -> ``b`` with
    ``one_way``); ``heal()`` lifts it. Also a context manager that heals on exit."""

    def __init__(self, faults: Faults, number: int, a: list[Container], b: list[Container], one_way: bool):
        self._faults = faults
        self.number = number
        self.a, self.b, self.one_way = a, b, one_way
        self.healed = False

    @property
    def chain(self) -> str:
        return f"DN-P{self.number}"

    def heal(self) -> None:
        """Lift this partition (others stay in force); a no-op once healed."""
        self._faults.heal(self)

    def __enter__(self) -> Partition:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.heal()

    def describe(self) -> str:
        arrow = "->" if self.one_way else "<->"
        names: Callable[[list[Container]], str] = lambda group: "[" + ", ".join(c.name for c in group) + "]"  # noqa: E731
        return f"partition {self.number}: {names(self.a)} {arrow} {names(self.b)} dropped"

    def __repr__(self) -> str:
        return f"<{self.describe()}{' (healed)' if self.healed else ''}>"


_RATE = re.compile(r"^\d+(\.\d+)?(bit|kbit|mbit|gbit|bps|kbps|mbps|gbps)$")
_TIME = re.compile(r"^\d+(\.\d+)?(us|ms|s)$")


def _check_degrade(loss: object, rate: object, delay: object, jitter: object) -> None:
    if loss is not None and (
        not isinstance(loss, (int, float)) or isinstance(loss, bool) or not 0.0 <= float(loss) <= 1.0
    ):
        raise ValueError(f"loss={loss!r} must be a fraction from 0.0 to 1.0 (0.1 drops one packet in ten)")
    if rate is not None and (not isinstance(rate, str) or not _RATE.match(rate)):
        raise ValueError(f"rate={rate!r} must be a bandwidth as tc writes it, e.g. '1mbit', '500kbit'")
    for argument, value in (("delay", delay), ("jitter", jitter)):
        if value is not None and (not isinstance(value, str) or not _TIME.match(value)):
            raise ValueError(f"{argument}={value!r} must be a duration as tc writes it, e.g. '100ms'")
    if jitter is not None and delay is None:
        raise ValueError("jitter= needs delay= (it varies the delay)")
    if loss is None and rate is None and delay is None:
        raise ValueError("degrade() needs at least one of loss=, rate=, delay=")


class Degradation:
    """What ``degrade()`` put on one container: loss, a rate cap, a delay; ``restore()``
    lifts it. Also a context manager that restores on exit."""

    def __init__(
        self, faults: Faults, container: Container, settings: Settings, to: list[Container], network: Network | None
    ):
        self._faults = faults
        self.container = container
        self.loss, self.rate = settings["loss"], settings["rate"]
        self.delay, self.jitter = settings["delay"], settings["jitter"]
        self.to, self.network = to, network
        self.restored = False

    def restore(self) -> None:
        """Lift this degradation; a no-op once restored."""
        self._faults.restore(self)

    def __enter__(self) -> Degradation:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.restore()

    def describe(self) -> str:
        parts = [f"loss {self.loss:g}" if self.loss is not None else "", f"rate {self.rate}" if self.rate else ""]
        if self.delay:
            parts.append(f"delay {self.delay}" + (f" ± {self.jitter}" if self.jitter else ""))
        where = f" on {self.network.name}" if self.network is not None else ""
        towards = f" to [{', '.join(c.name for c in self.to)}]" if self.to else ""
        return f"degrade {self.container.name}: {', '.join(p for p in parts if p)}{where}{towards}"

    def __repr__(self) -> str:
        return f"<{self.describe()}{' (restored)' if self.restored else ''}>"


class Faults:
    """The faults in force on one topology's containers, and their helpers."""

    def __init__(self, topology: Topology):
        self.topology = topology
        self.partitions: list[Partition] = []
        self.degradations: dict[str, Degradation] = {}  # by container name: one each (a new one replaces)
        self._numbers = itertools.count(1)  # partitions'
        self._helper_numbers = itertools.count(1)
        self._helpers: dict[str, str] = {}  # container id -> its fault helper's id
        self._ipv6 = False  # the helpers' image has ip6tables (known once one started)
        self._lock = threading.RLock()

    # -- partitions --------------------------------------------------------------------

    def partition(self, a: object, b: object, one_way: bool) -> Partition:
        if not isinstance(one_way, bool):
            raise TypeError(f"one_way must be True or False, got {one_way!r}")
        group_a, group_b = self._group(a, "a"), self._group(b, "b")
        both = {c.name for c in group_a} & {c.name for c in group_b}
        if both:
            raise ValueError(f"partition: {sorted(both)} in both groups: a container cannot be cut off from itself")
        with self._lock:
            partition = Partition(self, next(self._numbers), group_a, group_b, one_way)
            applied: list[Container] = []
            try:
                for member in group_a:
                    self._apply(partition, member)
                    applied.append(member)
            except BaseException:
                for member in applied:
                    self._lift(partition, member)
                raise
            self.partitions.append(partition)
            return partition

    def heal(self, partition: Partition | None = None) -> None:
        """Lift ``partition``, or every partition in force."""
        with self._lock:
            targets = list(self.partitions) if partition is None else [partition]
            for p in targets:
                if p.healed:
                    continue
                if p not in self.partitions:
                    raise ValueError(f"{p!r} is not a partition of this topology")
                for member in p.a:
                    self._lift(p, member)
                p.healed = True
                self.partitions.remove(p)

    def reapply(self, container: Container) -> None:
        """After ``container`` restarted (a new network namespace, maybe a new address):
        a new helper, and every fault it takes part in put back."""
        with self._lock:
            old = self._helpers.pop(container.id, None)
            if old is not None:
                remove_container(container.client, old)  # it shared the old namespace
            self._put_again(container)

    def follow(self, container: Container, undo: Callable[[], None] | None = None) -> None:
        """After ``container`` joined or left a network: every fault it takes part in put
        again, so that it covers the networks it is on now. When that fails, ``undo()``
        (the join) and the faults put back as they were, then the error."""
        with self._lock:
            try:
                self._put_again(container)
            except BaseException:
                if undo is not None:
                    undo()
                    try:
                        self._put_again(container)
                    except DockernetError:
                        pass  # the first error says what is wrong
                raise

    def _put_again(self, container: Container) -> None:
        for p in self.partitions:
            if container in p.b:
                for member in p.a:
                    self._put(member, partial(self._apply, p, member))  # the rules name b's addresses
            elif container in p.a:
                self._put(container, partial(self._apply, p, container))
        for d in self.degradations.values():
            if d.container is container or container in d.to:
                self._put(d.container, partial(self._apply_degradation, d))

    @staticmethod
    def _put(member: Container, apply: Callable[[], None]) -> None:
        try:
            apply()
        except DriverUnavailable:
            raise
        except DockernetError:
            if member.status().startswith("running"):
                raise  # a stopped member gets its faults when it starts again (reapply)

    def describe(self) -> list[str]:
        return [p.describe() for p in self.partitions] + [d.describe() for d in self.degradations.values()]

    # -- degradations ------------------------------------------------------------------

    def degrade(self, container: object, settings: Settings, to: object, network: Network | None) -> Degradation:
        (member,) = self._group(container, "container")
        _check_degrade(**settings)
        targets = [] if to is None else self._group(to, "to")
        if network is not None and (not hasattr(network, "docker_name") or network.docker_name not in member.endpoints):
            raise ValueError(f"network={network!r}: {member.name!r} is not on that network")
        if to is not None and settings["delay"] is not None:
            # Before netem is looked for: the answer does not depend on the kernel.
            raise ValueError(
                "delay= with to= is not supported: netem would delay everything the container sends, "
                "not only what goes to those peers; drop to= (delay= on all its traffic, or on one network "
                "with network=), or use loss= or rate= with to="
            )
        if settings["delay"] is not None:
            self._require_netem(member)
        with self._lock:
            previous = self.degradations.get(member.name)
            if previous is not None:
                self.restore(previous)  # a second degrade replaces the first
            degradation = Degradation(self, member, settings, targets, network)
            try:
                self._apply_degradation(degradation, new=True)
            except BaseException:
                self._run(member, restore_script(self._interfaces(member, None)[0]))
                raise
            self.degradations[member.name] = degradation
            return degradation

    def restore(self, degradation: Degradation | None = None) -> None:
        """Lift ``degradation``, or every degradation in force."""
        with self._lock:
            targets = list(self.degradations.values()) if degradation is None else [degradation]
            for d in targets:
                if d.restored:
                    continue
                if self.degradations.get(d.container.name) is not d:
                    raise ValueError(f"{d!r} is not a degradation in force in this topology")
                try:
                    self._run(d.container, restore_script(self._interfaces(d.container, None)[0]))
                except DockernetError:
                    if d.container.status().startswith("running"):
                        raise
                d.restored = True
                del self.degradations[d.container.name]

    def _interfaces(self, member: Container, network: Network | None) -> tuple[list[str], list[str], bool]:
        """The interfaces of ``member``'s namespace; those of ``network`` (by its IPv4
        address; all when None); whether those have IPv6 (an IPv6 network's)."""
        code, output = self._run(member, "ip -o addr show")
        wanted: str | None = ""
        if network is not None:
            endpoint = member.endpoints.get(network.docker_name)
            wanted = endpoint.ip if endpoint is not None else None  # left: none of them
        every: list[str] = []
        chosen: list[str] = []
        ipv6: set[str] = set()
        for line in output.splitlines():
            fields = line.split()
            if len(fields) > 3 and fields[1] != "lo":
                interface, family, address = fields[1].split("@")[0], fields[2], fields[3].split("/")[0]
                every += [] if interface in every else [interface]
                if family == "inet" and (wanted == "" or address == wanted) and interface not in chosen:
                    chosen.append(interface)
                if family == "inet6":
                    ipv6.add(interface)
        return every, chosen, any(i in ipv6 for i in chosen)

    def _require_netem(self, member: Container) -> None:
        code, output = self._run(member, f"{TC} qdisc add dev lo root netem delay 1ms && {TC} qdisc del dev lo root")
        if code != 0:
            # A kernel feature this machine lacks: a skip even under --dockernet-require
            # (netem is on its list of allowed skips), as for swarm's IPVS.
            self.topology.capability_missing(
                f"delay= needs the kernel's netem queueing discipline (sch_netem), which this machine lacks: "
                f"{output.strip()[-200:]}",
                explicit=False,
            )

    def _require_ipv6(self, member: Container, doing: str, why: str) -> None:
        """Refuse, before anything is applied, a fault that would leave IPv6 uncovered."""
        self._helper(member)
        if not self._ipv6:
            raise DriverUnavailable(f"{doing}: {why}, which needs ip6tables: {IP6TABLES_MISSING}; nothing was applied")

    def _apply_degradation(self, d: Degradation, new: bool = False) -> None:
        """Put ``d`` on its container's interfaces now (those of its network, while on it)."""
        member = d.container
        every, chosen, has_ipv6 = self._interfaces(member, d.network)
        if not chosen:
            if new:
                raise DockernetError(f"degrade: {member.name!r} has no network interface to degrade")
            self._run(member, restore_script(every))  # off its network: nothing to cover there now
            return
        peers = self._addresses(d.to) if d.to else None
        ipv6 = bool(d.loss) and (bool(peers[1]) if peers is not None else has_ipv6)
        if ipv6:
            towards = f"to {', '.join(peers[1])}" if peers is not None else f"on {', '.join(chosen)}"
            self._require_ipv6(member, f"degrade {member.name!r}", f"loss= applies to IPv6 traffic {towards}")
        settings = {"loss": d.loss, "rate": d.rate, "delay": d.delay, "jitter": d.jitter}
        code, output = self._run(member, degrade_script(settings, every, chosen, peers, ipv6))
        if code != 0:
            raise DockernetError(
                f"degrade {member.name!r}: the rules could not be applied (exit {code}): {output.strip()[-800:]}"
            )

    def _group(self, side: object, argument: str) -> list[Container]:
        members = (
            [side] if isinstance(side, Container) else list(side) if isinstance(side, (list, tuple, set)) else None
        )
        if not members:
            raise TypeError(f"{argument} must be a container or a non-empty list of containers, got {side!r}")
        for member in members:
            if not isinstance(member, Container):
                raise TypeError(f"{argument}: expected containers from dockernet.container(), got {member!r}")
            if member.topology is not self.topology:
                raise ValueError(f"{argument}: container {member.name!r} belongs to another dockernet factory")
            if member.network_mode == "host":
                raise ValueError(
                    f"{argument}: {member.name!r} runs in the host's network namespace; "
                    "a partition there would cut the host itself off"
                )
        return members

    @staticmethod
    def _addresses(group: Iterable[Container]) -> tuple[list[str], list[str]]:
        """The IPv4 and IPv6 addresses of ``group`` on every network. IPv6 from the engine
        (the handles know IPv4 only), with the link-local address of each IPv6 endpoint."""
        ipv4: set[str] = set()
        ipv6: set[str] = set()
        for container in group:
            ipv4.update(e.ip for e in container.endpoints.values() if e.ip)
            try:
                info = container.client.api.inspect_container(container.id)
            except docker.errors.NotFound:
                continue
            for endpoint in (info["NetworkSettings"].get("Networks") or {}).values():
                if endpoint.get("GlobalIPv6Address"):
                    local = link_local(endpoint.get("MacAddress") or "")
                    ipv6.update([endpoint["GlobalIPv6Address"], *([local] if local else [])])
        return sorted(ipv4), sorted(ipv6)

    def _apply(self, p: Partition, member: Container) -> None:
        peers4, peers6 = self._addresses(p.b)
        if peers6:
            self._require_ipv6(
                member, f"partition {p.number}", f"[{', '.join(c.name for c in p.b)}] have IPv6 addresses"
            )
        code, output = self._run(member, partition_script(p.chain, peers4, peers6, p.one_way))
        expected = partition_counts(peers4, peers6)
        if code != 0 or output.strip().splitlines()[-len(expected) :] != expected:
            self._run(member, lift_script(p.chain))
            raise DockernetError(
                f"partition {p.number}: the rules could not be put in {member.name!r}'s network namespace "
                f"(exit {code}): {output.strip()[-800:]}"
            )

    def _lift(self, p: Partition, member: Container) -> None:
        try:
            self._run(member, lift_script(p.chain))
        except DockernetError:
            if member.status() != "removed" and member.status().startswith("running"):
                raise  # a stopped member's rules went with its namespace

    def _run(self, member: Container, script: str) -> tuple[int, str]:
        helper = self._helper(member)
        try:
            return exec_in(member.client, helper, ["sh", "-c", script])
        except docker.errors.APIError as exc:
            raise DockernetError(
                f"the fault helper of {member.name!r} cannot run ({exc.explanation or exc}): "
                f"is {member.name!r} still running? it is {member.status()}"
            ) from None

    def _helper(self, member: Container) -> str:
        with self._lock:
            if member.id not in self._helpers:
                self._helpers[member.id] = self._start_helper(member)
            return self._helpers[member.id]

    def _start_helper(self, member: Container) -> str:
        topology = self.topology
        member.reusable = False  # its network namespace gets rules: not for another test
        client = member.client
        with topology.timings.measure("image"):
            built = fault_image(topology.client, topology.probe_image)
            image, self._ipv6 = built.tag, built.ipv6
            if member.host:
                topology.provide_probe_image(member.host)
                provide_image(topology.client, client, image)
        name = f"{member.docker_name}-fault{next(self._helper_numbers)}"
        with undone_on_failure(
            f"starting the fault helper of {member.name!r}",
            lambda: remove_containers_named(client, name, topology.filters()),
        ):
            with gate_for(client).building():
                created = client.api.create_container(
                    image,
                    command=RESIDENT,
                    stdin_open=True,
                    name=name,
                    labels=topology.labels_for("fault-helper", member.name),
                    host_config=client.api.create_host_config(
                        network_mode=f"container:{member.id}", cap_add=["NET_ADMIN", "NET_RAW"]
                    ),
                    detach=True,
                )
                client.api.start(created["Id"])
        topology.timings.count("fault helpers")
        helper_id: str = created["Id"]
        return helper_id


DEGRADE_KEYS = ("loss", "rate", "delay", "jitter", "to", "network")


def apply_marked(topologies: list[Topology], partition: object, degrade: object) -> list[Partition | Degradation]:
    """The faults of ``@pytest.mark.dockernet(partition=..., degrade=...)``, applied to the
    containers of ``topologies`` (the test's own first) found by logical name.

    ``partition`` is a list of groups (each a list of names, or one name): every group is
    cut off from every other. ``degrade`` maps a name to ``degrade()``'s keyword arguments
    (``to`` a list of names, ``network`` a network's logical name). ValueError naming what
    is wrong, before anything is applied.
    """

    def find(name: object, where: str) -> Container:
        for topology in topologies:
            found = next((c for c in topology.containers_list if c is not None and c.name == name), None)
            if found is not None:
                return found
        made = sorted({c.name for t in topologies for c in t.containers_list if c is not None})
        raise ValueError(
            f"{where}: no container named {name!r} among those the test's dockernet fixtures made "
            f"({', '.join(made) or 'none'})"
        )

    groups: list[list[Container]] = []
    if partition is not None:
        if not isinstance(partition, (list, tuple)) or len(partition) < 2:
            raise ValueError(f"partition={partition!r} must be a list of two or more groups, e.g. [['web'], ['db']]")
        for group in partition:
            names = [group] if isinstance(group, str) else group
            if not isinstance(names, (list, tuple)) or not names:
                raise ValueError(f"partition: each group is a name or a non-empty list of names, got {group!r}")
            groups.append([find(name, "partition") for name in names])
    degradations: list[tuple[Container, dict[str, Any]]] = []
    if degrade is not None:
        if not isinstance(degrade, dict):
            raise ValueError(f"degrade={degrade!r} must be a dict {{name: {{'loss': 0.1, ...}}}}")
        for name, settings in degrade.items():
            container = find(name, "degrade")
            if not isinstance(settings, dict):
                raise ValueError(f"degrade[{name!r}] must be a dict of degrade() arguments, got {settings!r}")
            unknown = sorted(set(settings) - set(DEGRADE_KEYS))
            if unknown:
                raise ValueError(f"degrade[{name!r}] has unknown keys {unknown}: use {', '.join(DEGRADE_KEYS)}")
            arguments = dict(settings)
            if arguments.get("to") is not None:
                to = arguments["to"]
                arguments["to"] = [find(n, f"degrade[{name!r}]['to']") for n in ([to] if isinstance(to, str) else to)]
            if arguments.get("network") is not None:
                try:
                    arguments["network"] = container.topology.get_network(arguments["network"])
                except KeyError:
                    raise ValueError(f"degrade[{name!r}]: no network named {arguments['network']!r}") from None
            degradations.append((container, arguments))
    applied: list[Partition | Degradation] = []
    for i, a in enumerate(groups):
        for b in groups[i + 1 :]:
            topology = a[0].topology
            if any(c.topology is not topology for c in a + b):
                raise ValueError("partition: the containers of one partition must come from one dockernet fixture")
            applied.append(topology.partition(a, b))
    for container, arguments in degradations:
        applied.append(container.topology.degrade(container, **arguments))
    return applied
