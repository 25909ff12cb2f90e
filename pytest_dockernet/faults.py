"""Faults on a topology's containers: partitions between groups, healed on demand.

A fault is applied from a *fault helper*: a container of the fault image (the probe image
plus ``iptables`` and ``tc``, copied here from this machine with their libraries, so no
registry is needed) that shares the target's network namespace with ``NET_ADMIN``. The
application's image needs nothing and is not made privileged. Rules live in the target's
own namespace, so they die with it; the helpers carry the topology's labels and go with
it. One helper per container, started on first use and reused.

A partition between groups ``a`` and ``b`` puts, in the namespace of each member of
``a``, a chain pair that drops what goes to and comes from every address of ``b``'s
members. ``one_way=True`` drops only what ``a`` starts towards ``b``: the rule lets
packets of connections that are already established (in either direction) pass, so
``b`` can still open connections to ``a`` and get the replies.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import os
import re
import shutil
import subprocess
import tarfile
import threading
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import docker
import docker.errors

from .engine import exec_in, remove_container, remove_containers_named, undone_on_failure
from .errors import DockernetError, DriverUnavailable
from .gate import gate_for
from .handles import Container, Network
from .image import image_on, provide_image
from .probes import RESIDENT

if TYPE_CHECKING:
    from .topology import Topology

FAULT_REPOSITORY = "pytest-dockernet/faults"
# What the fault image needs from this machine; their shared libraries come along (ldd).
_TOOLS = ("iptables", "tc")
_LIB_DIRS = ("xtables", "tc")  # iptables' match/target modules, tc's distribution tables
# Where the image has them. By path: busybox's shell runs its own (smaller) tc applet
# before anything on PATH.
TC = "/usr/sbin/tc"


def _host_files() -> dict[str, str]:
    """``{path on this machine: path in the image}`` for the fault tools, their libraries
    and modules; DriverUnavailable naming what is missing."""
    files: dict[str, str] = {}
    for tool in _TOOLS:
        found = shutil.which(tool) or next(
            (p for p in (f"/usr/sbin/{tool}", f"/sbin/{tool}") if os.path.exists(p)), None
        )
        if found is None:
            raise DriverUnavailable(
                f"faults need {tool} on this machine to build their helper image "
                f"(Debian: apt-get install {'iptables' if tool == 'iptables' else 'iproute2'})"
            )
        real = os.path.realpath(found)
        files[real] = real.lstrip("/")
        if real != f"/usr/sbin/{tool}":
            files[f"@link:{tool}"] = real  # the tool's own name (iptables: a multi-call binary)
        try:
            ldd = subprocess.run(["ldd", real], capture_output=True, text=True, timeout=30).stdout
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise DriverUnavailable(f"faults: cannot list the libraries of {real} (ldd: {exc})") from None
        for line in ldd.splitlines():
            parts = line.split()
            path = (
                parts[2]
                if "=>" in parts and len(parts) > 3
                else parts[0]
                if parts and parts[0].startswith("/")
                else None
            )
            if path and os.path.exists(path):
                files[os.path.realpath(path)] = path.lstrip("/")
                for module_dir in _LIB_DIRS:
                    # Where the tool looks for them: the directory's real path (/usr/lib/...).
                    candidate = os.path.realpath(os.path.join(os.path.dirname(path), module_dir))
                    if os.path.isdir(candidate):
                        for name in os.listdir(candidate):
                            full = os.path.join(candidate, name)
                            if os.path.isfile(full):
                                files.setdefault(os.path.realpath(full), full.lstrip("/"))
    return files


def _fault_image(client: docker.DockerClient, probe_image: str) -> str:
    """The fault image on ``client``'s engine, built once per content (tag by digest)."""
    files = _host_files()
    digest = hashlib.sha256(probe_image.encode())
    for source in sorted(files):
        digest.update(source.encode())
        if not source.startswith("@link:"):
            digest.update(str(os.stat(source).st_size).encode())
    tag = f"{FAULT_REPOSITORY}:{digest.hexdigest()[:12]}"
    if image_on(client, tag):
        return tag
    dockerfile = f"FROM {probe_image}\nCOPY root/ /\nLABEL pytest-dockernet.image=faults\n".encode()
    context = io.BytesIO()
    with tarfile.open(fileobj=context, mode="w") as tar:
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(dockerfile)
        tar.addfile(info, io.BytesIO(dockerfile))
        for source, target in files.items():
            if source.startswith("@link:"):
                link = tarfile.TarInfo(f"root/usr/sbin/{source[len('@link:') :]}")
                link.type, link.linkname = tarfile.SYMTYPE, "/" + target.lstrip("/")
                tar.addfile(link)
            else:
                tar.add(source, arcname=f"root/{target}")
    context.seek(0)
    try:
        client.images.build(fileobj=context, custom_context=True, tag=tag, rm=True, forcerm=True)
    except docker.errors.BuildError as exc:
        log = "".join(str(step.get("stream", "")) for step in exc.build_log)[-2000:]
        raise DockernetError(f"building the fault helper image {tag} failed: {exc}\n{log}") from None
    return tag


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


_Settings = dict[str, Any]  # degrade()'s loss, rate, delay and jitter
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
        self, faults: Faults, container: Container, settings: _Settings, to: list[Container], network: Network | None
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
        self._numbers = itertools.count(1)
        self._helpers: dict[str, str] = {}  # container id -> its fault helper's id
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
        a new helper, and every partition it takes part in put back."""
        with self._lock:
            old = self._helpers.pop(container.id, None)
            if old is not None:
                remove_container(container.client, old)  # it shared the old namespace
            for p in self.partitions:
                for member in p.a:
                    if member is container or container in p.b:
                        if member is not container:
                            self._lift(p, member)
                        self._apply(p, member)
            for d in self.degradations.values():
                if d.container is container or container in d.to:
                    if d.container is not container:
                        self._run(d.container, _restore_script(self._interfaces(d.container, None)))
                    self._apply_degradation(d)

    def describe(self) -> list[str]:
        return [p.describe() for p in self.partitions] + [d.describe() for d in self.degradations.values()]

    # -- degradations ------------------------------------------------------------------

    def degrade(self, container: object, settings: _Settings, to: object, network: Network | None) -> Degradation:
        (member,) = self._group(container, "container")
        _check_degrade(**settings)
        targets = [] if to is None else self._group(to, "to")
        if network is not None and (not hasattr(network, "docker_name") or network.docker_name not in member.endpoints):
            raise ValueError(f"network={network!r}: {member.name!r} is not on that network")
        if settings["delay"] is not None:
            self._require_netem(member)
        with self._lock:
            previous = self.degradations.get(member.name)
            if previous is not None:
                self.restore(previous)  # a second degrade replaces the first
            degradation = Degradation(self, member, settings, targets, network)
            try:
                self._apply_degradation(degradation)
            except BaseException:
                self._run(member, _restore_script(self._interfaces(member, None)))
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
                    self._run(d.container, _restore_script(self._interfaces(d.container, None)))
                except DockernetError:
                    if d.container.status().startswith("running"):
                        raise
                d.restored = True
                del self.degradations[d.container.name]

    def _interfaces(self, member: Container, network: Network | None) -> list[str]:
        """The interfaces of ``member``'s namespace (of ``network`` only, when given), by address."""
        code, output = self._run(member, "ip -o -4 addr show")
        wanted = None if network is None else member.endpoints[network.docker_name].ip
        found = []
        for line in output.splitlines():
            fields = line.split()
            if len(fields) > 3 and fields[1] != "lo":
                address = fields[3].split("/")[0]
                if wanted is None or address == wanted:
                    found.append(fields[1].split("@")[0])
        return found

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

    def _apply_degradation(self, d: Degradation) -> None:
        member = d.container
        interfaces = self._interfaces(member, d.network)
        if not interfaces:
            raise DockernetError(f"degrade: {member.name!r} has no network interface to degrade")
        peers = self._addresses(d.to) if d.to else [None]
        lines = [_restore_script(interfaces), "iptables -w -N DN-D-o", "iptables -w -I OUTPUT -j DN-D-o"]
        if d.loss:
            for interface in interfaces:
                for peer in peers:
                    match = f"-o {interface}" + (f" -d {peer}" if peer else "")
                    chance = f"-m statistic --mode random --probability {float(d.loss):.6f}"
                    lines.append(f"iptables -w -A DN-D-o {match} {chance} -j DROP")
        for interface in interfaces:
            if d.delay:
                netem = f"netem delay {d.delay}" + (f" {d.jitter}" if d.jitter else "")
                lines.append(f"{TC} qdisc replace dev {interface} root {netem}" + (f" rate {d.rate}" if d.rate else ""))
            elif d.rate and not d.to:
                lines.append(f"{TC} qdisc replace dev {interface} root tbf rate {d.rate} burst 32kbit latency 400ms")
            elif d.rate:
                lines += [
                    f"{TC} qdisc replace dev {interface} root handle 1: htb default 1",
                    f"{TC} class add dev {interface} parent 1: classid 1:1 htb rate 10gbit",
                    f"{TC} class add dev {interface} parent 1: classid 1:10 htb rate {d.rate}",
                ]
                lines += [
                    f"{TC} filter add dev {interface} parent 1: protocol ip prio 1 u32 "
                    f"match ip dst {peer}/32 flowid 1:10"
                    for peer in peers
                ]
        code, output = self._run(member, " && ".join(lines))
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
    def _addresses(group: Iterable[Container]) -> list[str]:
        return sorted({e.ip for c in group for e in c.endpoints.values() if e.ip})

    def _apply(self, p: Partition, member: Container) -> None:
        peers = self._addresses(p.b)
        chain = p.chain
        # What may be there already goes first (re-applied after a restart: idempotent).
        lines = [_lift_script(chain), f"iptables -w -N {chain}-o", f"iptables -w -N {chain}-i"]
        for address in peers:
            if p.one_way:
                lines.append(
                    f"iptables -w -A {chain}-o -d {address} -m conntrack --ctstate ESTABLISHED,RELATED -j RETURN"
                )
                lines.append(f"iptables -w -A {chain}-o -d {address} -j DROP")
            else:
                lines.append(f"iptables -w -A {chain}-o -d {address} -j DROP")
                lines.append(f"iptables -w -A {chain}-i -s {address} -j DROP")
        lines += [f"iptables -w -I OUTPUT -j {chain}-o", f"iptables -w -I INPUT -j {chain}-i"]
        # The engine's word that the rules are in place: the chain lists one per peer.
        lines.append(f"iptables -w -S {chain}-o | grep -c -- '-j DROP'")
        code, output = self._run(member, " && ".join(lines))
        if code != 0 or output.strip().splitlines()[-1:] != [str(len(peers))]:
            self._run(member, _lift_script(chain))
            raise DockernetError(
                f"partition {p.number}: the rules could not be put in {member.name!r}'s network namespace "
                f"(exit {code}): {output.strip()[-800:]}"
            )

    def _lift(self, p: Partition, member: Container) -> None:
        try:
            self._run(member, _lift_script(p.chain))
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
            image = _fault_image(topology.client, topology.probe_image)
            if member.host:
                topology.provide_probe_image(member.host)
                provide_image(topology.client, client, image)
        name = f"{member.docker_name}-fault{next(self._numbers)}"
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


def _restore_script(interfaces: list[str]) -> str:
    """Remove a degradation: its chain and jump, and the root qdisc of each interface."""
    return "; ".join(
        [
            "iptables -w -D OUTPUT -j DN-D-o 2>/dev/null",
            "iptables -w -F DN-D-o 2>/dev/null",
            "iptables -w -X DN-D-o 2>/dev/null",
            *(f"{TC} qdisc del dev {interface} root 2>/dev/null" for interface in interfaces),
            "true",
        ]
    )


def _lift_script(chain: str) -> str:
    """Remove a partition's chains and their jumps; nothing left if they were never made."""
    return "; ".join(
        [
            f"iptables -w -D OUTPUT -j {chain}-o 2>/dev/null",
            f"iptables -w -D INPUT -j {chain}-i 2>/dev/null",
            f"iptables -w -F {chain}-o 2>/dev/null",
            f"iptables -w -F {chain}-i 2>/dev/null",
            f"iptables -w -X {chain}-o 2>/dev/null",
            f"iptables -w -X {chain}-i 2>/dev/null",
            "true",
        ]
    )


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
