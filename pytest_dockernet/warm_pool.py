"""The warm pool: containers that asked for nothing of their own, used again by later tests.

Starting a container costs 330-400 ms on Docker 20.10; joining a network about 42 ms and
leaving one about 59 ms. So a ``container()`` call that asks for nothing of its own (the
probe image with its resident shell, on bridge networks the topology made, see
:func:`poolable`) gets a running container of an earlier test when one waits in the pool
(:class:`WarmStarts`, in front of the topology's container factory):
it is renamed to the name the topology gives it and joins the test's networks with its
logical name and aliases. When none waits, one is started as usual, marked as the pool's.
When its topology ends, a pooled container in which nothing but the plugin's own probes
ran (:attr:`Container.reusable`: no ``exec()``, stop, pause, restart, kill or fault)
leaves its networks and waits for the next test, up to ``size`` of them; any other is
removed. Networks likewise: a ``network()`` call with no options of its own gets an
empty network an earlier test left, and such a network goes back to the pool once its
topology's other containers are removed (removing a network costs about 190 ms, and no
network or container can be set up meanwhile, see :mod:`.engine.gate`). A topology that is one
network of the pool's with only the pool's containers on it may instead wait whole, its
containers still joined, for a later test of the same shape (:mod:`.parked`). The pool makes
nothing ahead of need: a run never starts more containers or makes more networks than it would
without it.

What stays true of a pooled container: it resolves by its logical name, its aliases and
its engine name on every network it joins, and by nothing of an earlier test; ``ip()``,
``exec()``, probes and its resident shell work as for any other; ``logs()`` shows its own
test's output only. What differs: its hostname is the pool's (``dn-<run>-pool-N``), not
its logical name, and so are its labels (a killed run's are pruned like everything else);
its interfaces are not named from ``eth0`` on (the engine numbers a container's
interfaces on from its last one: ``eth3``, ``eth4``, ...; :meth:`Container.interface`
names the one of a network); a pooled network's engine name is the pool's
(``dn-<run>-pool-netN``). ``--dockernet-pool 0`` turns the pool off;
``--dockernet-keep`` does too (a kept container must stay as its test left it).
``--dockernet-keep-warm SECONDS`` lets what waits at the end outlive the run, for the
next run to adopt (see :mod:`.keep_warm`).
"""

from __future__ import annotations

import dataclasses
import ipaddress
import itertools
import re
import threading
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar, cast

from .context import POOL_NEUTRAL
from .engine import remove_container, remove_network
from .engine.errors import APIError, NotFound
from .engine.gate import gate_for
from .errors import ProbeFailed
from .handles import Container, Network
from .labels import NAME, ROLE, TOPOLOGY, RunIdentity
from .parked import Parking, Provisional, Unit, idle_shell_only
from .probes import run as run_probe
from .timings import POOL_AGAIN, POOL_NETWORKS_AGAIN

if TYPE_CHECKING:
    from .context import Context
    from .engine.port import Engine
    from .keep_warm import Keeper as WarmKeeper
    from .subnets import SubnetAllocator

POOLED_ROLE = "pooled"
NETWORK_ROLE = "pooled network"


class Joining(Protocol):
    """A network a container joins, with its aliases there (a container_specs.Attachment)."""

    @property
    def network(self) -> Network: ...
    @property
    def aliases(self) -> list[str]: ...
    @property
    def address(self) -> str | None: ...


class Launching(Protocol):
    """What the pool reads of a checked ``container()`` call (a container_specs.Launch)."""

    @property
    def spec(self) -> Any: ...  # a ContainerSpec
    @property
    def resident(self) -> bool: ...
    @property
    def network_mode(self) -> str | None: ...
    @property
    def attachments(self) -> Sequence[Joining]: ...
    @property
    def ready(self) -> Any: ...  # a readiness.Readiness


L = TypeVar("L", bound=Launching)
# Whose a container started by the factory is, when not the topology's: its hostname, its
# labels, and the filter its undo removes it by (the pool's).
Keeper = tuple[str, dict[str, str], dict[str, str]]


def asks_nothing(spec: Any) -> bool:
    """Whether every field of ``spec`` (a ContainerSpec or NetworkSpec) is at its default,
    apart from those marked POOL_NEUTRAL: a field added later keeps what sets it out of the
    pool until it is marked. An empty value (``{}``, ``[]``) of a field whose default is
    empty asks for nothing either."""
    for field in dataclasses.fields(spec):
        if all(field.metadata.get(key) == value for key, value in POOL_NEUTRAL.items()):
            continue
        if field.default is not dataclasses.MISSING:
            default = field.default
        elif field.default_factory is not dataclasses.MISSING:
            default = field.default_factory()
        else:
            return False  # a required field the pool was not told it may ignore
        value = getattr(spec, field.name)
        if not (value is default or value == default or (not value and not default)):
            return False
    return True


def poolable(spec: Any, launch: Launching) -> bool:
    """Whether ``container()`` would make for ``spec`` just what the pool holds."""
    return (
        asks_nothing(spec)
        and launch.ready.poolable
        and launch.resident
        and launch.network_mode is None
        and bool(launch.attachments)
        and all(a.network.driver == "bridge" and a.network.owned for a in launch.attachments)
    )


class WarmStarts(Generic[L]):
    """The warm pool in front of one topology's container factory: a launch the pool fits
    gets a waiting container, or one the factory starts as the pool's; any other is the
    factory's alone. And the way back: a pooled container returns to the pool when its
    topology ends or drops it (its labels are the pool's, so removal by label misses it)."""

    def __init__(self, context: Context, create: Callable[[L, Keeper | None], Container]):
        self.context, self.create = context, create

    def start(self, launch: L) -> Container:
        context, name = self.context, launch.spec.name
        pool: WarmPool | None = context.warm_pool
        provisional: Provisional | None = context.provisional
        if provisional is not None:  # a parked unit's network was handed out: its containers are claimed or evicted
            provisional.settle([launch])
            taken = provisional.take(launch)
            if taken is not None:
                context.timings.count("containers")
                pool.shape(taken, launch.attachments)  # type: ignore[union-attr]  # a provisional is a pool's
                return taken
        if pool is None or not pool.fits(context, launch.spec, launch):
            return self.create(launch, None)
        taken = pool.take(context, name, launch.attachments)
        if taken is not None:
            context.timings.count("containers")
            pool.shape(taken, launch.attachments)
            return taken
        hostname, labels = pool.new(name)
        container = self.create(launch, (hostname, labels, pool.filters()))
        pool.started(container, hostname)
        pool.shape(container, launch.attachments)
        return container

    def give_back(self, container: Container) -> None:
        container.pooled = False  # once: a second close() finds nothing to return
        self.context.shells.discard(container.id)
        pool: WarmPool = self.context.warm_pool  # only a pool hands out pooled ones
        pool.give_back(container)


class WarmPool(Parking):
    """The pooled containers of one pytest process: handed out, and waiting (up to ``size``)."""

    def __init__(
        self,
        engine: Engine,
        identity: RunIdentity,
        size: int,
        image: str,
        dns: str,
        allocator: SubnetAllocator | None = None,
        keeper: WarmKeeper | None = None,
    ):
        self.engine, self.identity, self.allocator = engine, identity, allocator  # engine 0 only
        self.size, self.image, self.dns = size, image, dns
        # With keep-warm (see keep_warm.py) what the pool makes is its keeper's from the start.
        self.keeper = keeper
        self.labels = identity.labels() if keeper is None else keeper.labels()
        self.id = f"{identity.run_id if keeper is None else keeper.id}-pool"
        self._numbers = itertools.count(1)
        self._idle: deque[tuple[str, str]] = deque()  # (id, name) of those waiting, oldest first
        self._names: dict[str, str] = {}  # every pooled container's id: its name while it waits
        self._networks: deque[Network] = deque()  # empty networks waiting, as their last topology had them
        self._lent: dict[str, Network] = {}  # networks handed out (or made) for a topology, by id
        self._parked: deque[Unit] = deque()  # topologies waiting whole, oldest first (see parked.py)
        self._shapes: dict[str, list[tuple[str, list[str], str | None]]] = {}  # see Parking
        self._lock = threading.Lock()
        self._busy = 0  # returns under way (close() waits for them)
        self._settled = threading.Condition(self._lock)
        self.closed = False
        # Set before the run's last test ends (per process: an xdist worker's own last test):
        # nothing is parked, and its containers and networks stay as they are, removed with the
        # pool's at the end, since leaving a network (about 60 ms each) for a test that never
        # comes is waste; unless a keeper takes them for the next run (keep-warm).
        self.ending = False
        self.parks = True
        if keeper is not None and keeper.adopted:
            self._adopt(keeper)

    @property
    def idle(self) -> int:
        """How many containers wait to be handed out now (idle, or parked with their topology)."""
        with self._lock:
            return self._held()

    def fits(self, context: Context, spec: Any, launch: Launching) -> bool:
        return (
            not self.closed
            and spec.host == 0
            and context.settings.dns == self.dns
            and context.probe_image == self.image
            and poolable(spec, launch)
            and context.has("warm-pool-joins")  # else the pool is off on this engine: no skip, a start
        )

    def new(self, name: str) -> tuple[str, dict[str, str]]:
        """For a pooled container started now: its hostname (also its name while it waits)
        and its labels."""
        number = next(self._numbers)
        hostname = f"dn-{self.id}-{number}"
        labels = {**self.labels, TOPOLOGY: self.id, ROLE: POOLED_ROLE, NAME: f"{name}-{number}"}
        return hostname, labels

    def started(self, container: Container, hostname: str) -> None:
        container.pooled = True
        with self._lock:
            self._names[container.id] = hostname

    def take(self, context: Context, name: str, attachments: Sequence[Joining]) -> Container | None:
        """A waiting container for ``context``'s topology, on ``attachments`` under ``name``;
        None when none waits or the hand-over failed (then ``container()`` starts one). When
        none waits but a topology is parked, the oldest is broken up for it."""
        while True:
            with self._lock:
                if self.closed or not (self._idle or self._parked):
                    return None
                unit = None if self._idle else self._parked.popleft()
            if unit is not None:
                self._break(unit)
                continue
            with self._lock:
                if not self._idle:
                    continue
                container_id, _ = self._idle.popleft()
            container = self._hand_over(container_id, context, name, attachments)
            if container is not None:
                context.timings.count(POOL_AGAIN)
                return container

    def _hand_over(
        self, container_id: str, context: Context, name: str, attachments: Sequence[Joining]
    ) -> Container | None:
        engine = context.engine
        docker_name = context.docker_name_for(name)
        container = Container(context, name, docker_name, container_id, self.image, None, 0)
        container.resident = container.pooled = True
        try:
            # Renamed first: the engine's DNS answers to the name a container has when it joins.
            engine.rename(container_id, docker_name)
            gate = gate_for(engine)
            with gate.joining(), gate.building():
                for attachment in attachments:
                    aliases, address = [name, *attachment.aliases], attachment.address
                    engine.connect_container_to_network(
                        container_id, attachment.network.id, aliases=aliases, ipv4_address=address
                    )
            running = container.refresh().get("Running")
            if running:
                self._until_links_answer(container, attachments)
            container.logs_after = container.last_output_stamp()
        except (APIError, ProbeFailed):  # then container() starts one as usual
            running = False
        if not running:
            self._remove(container_id)
            return None
        for attachment in attachments:
            container.endpoints[attachment.network.docker_name].aliases = [name, *attachment.aliases]
        return container

    @staticmethod
    def _until_links_answer(container: Container, attachments: Sequence[Joining]) -> None:
        """Each new link of ``container`` carries traffic before it is handed over: an ARP
        request sent in the first moments after a join can go unanswered, and the kernel asks
        again only a second later (a one-packet probe from a peer would call it unreachable).
        Its gateway answering (ARP, then ICMP) proves the link; internal networks' gateways
        are not asked."""
        gateways = [a.network.gateway for a in attachments if a.network.gateway and not a.network.internal]
        if gateways:
            run_probe(container, "; ".join(f"ping -c1 -W3 {g} >/dev/null 2>&1" for g in gateways), counted=False)

    def give_back(self, container: Container) -> None:
        """``container``'s topology has ended: it waits for the next test if nothing but
        probes ran in it, it runs just what a fresh one runs (no process a probe or anything
        else left) and the pool has room; else it is removed. At the end of the run it stays
        as it is when only the pool's networks hold it (close() removes it, then them); on a
        network of its topology's own it is removed, which that network's removal needs."""
        with self._lock:
            pool_networks = {n.docker_name for n in self._lent.values()}
        if self.ending and self.keeper is None and set(container.endpoints) <= pool_networks:
            return
        with self._lock:
            name = self._names.get(container.id, "")
            ending = self.closed or (self.ending and self.keeper is None)
            keep = bool(name) and not ending and container.reusable and self._held() < self.size
            self._busy += 1
        try:
            if keep and self._leave_networks(container, name):
                with self._lock:
                    if not self.closed:
                        self._idle.append((container.id, name))
                        return
            self._remove(container.id)
        finally:
            with self._lock:
                self._busy -= 1
                self._settled.notify_all()

    def _leave_networks(self, container: Container, name: str) -> bool:
        """Off every network, and under its pool name again (its test's name goes with its test)."""
        engine = container.engine
        try:
            info = engine.inspect_container(container.id)
            if not info["State"].get("Running") or info["State"].get("Paused"):
                return False
            # Its processes are listed while it leaves its networks (about 20 ms, which the
            # test's teardown need not wait for on top of the leaving).
            with ThreadPoolExecutor(max_workers=1, thread_name_prefix="dockernet-pool-top") as ex:
                idle = ex.submit(idle_shell_only, engine, container.id)
                with gate_for(engine).joining():
                    for network in info["NetworkSettings"].get("Networks") or {}:
                        engine.disconnect_container_from_network(container.id, network)
                engine.rename(container.id, name)
                return idle.result()
        except APIError:
            return False

    def _remove(self, container_id: str) -> None:
        with self._lock:
            self._names.pop(container_id, None)
            self._shapes.pop(container_id, None)
        try:
            remove_container(self.engine, container_id)
        except APIError:
            pass  # close() removes by label whatever is left

    # -- networks: removing one costs about 190 ms (and holds up every start meanwhile, see
    # engine/gate.py), creating one about 65 ms; an empty network waits for the next test instead.

    def fits_network(self, spec: Any, driver: str) -> bool:
        """Whether ``network()`` would make for ``spec`` (a NetworkSpec, its driver resolved
        to ``driver``) just what waits in the pool."""
        return not self.closed and driver == "bridge" and asks_nothing(spec)

    def new_network(self) -> tuple[str, dict[str, str]]:
        """For a pooled network made now: its engine name and labels."""
        number = next(self._numbers)
        name = f"dn-{self.id}-net{number}"
        return name, {**self.labels, TOPOLOGY: self.id, ROLE: NETWORK_ROLE, NAME: name}

    def take_network(self, context: Context, name: str) -> Network | None:
        """An empty network of an earlier test for ``context``'s topology under ``name``; None
        when none waits. A parked topology whose network had that name comes first: its
        containers become provisional members of ``context``'s (see parked.py); when no
        network waits, the oldest parked topology is broken up for one."""
        parked = self._take_parked(context, name)
        if parked is not None:
            return parked
        while True:
            with self._lock:
                if self.closed or not (self._networks or self._parked):
                    return None
                unit = None if self._networks else self._parked.popleft()
            if unit is not None:
                self._break(unit)
                continue
            with self._lock:
                if not self._networks:
                    continue
                last = self._networks.popleft()
            try:
                attached = context.engine.inspect_network(last.id).get("Containers")
            except NotFound:
                self._release(last)
                continue
            if attached:  # someone else's container joined it meanwhile: not for a test
                self._remove_network(last)
                continue
            network = Network(context, name, last.docker_name, last.id, "bridge", last.subnet, last.gateway)
            network.warm = True
            self.lend(network)
            context.timings.count(POOL_NETWORKS_AGAIN)
            return network

    def lend(self, network: Network) -> None:
        """``network`` (taken, or made now as the pool's) belongs to its topology until given back."""
        with self._lock:
            self._lent[network.id] = network

    def make_room(self, subnet: ipaddress.IPv4Network) -> bool:
        """For a network on the explicit ``subnet`` (held by the subnet allocator meanwhile): the
        waiting networks that overlap it are removed, and so are those handed out once given
        back. True when it removed some, or one handed out to a closed topology is on its way
        back (its removal runs in the background): then the subnet is free in a moment."""
        with self._lock:
            waiting = [n for n in self._networks if _overlaps(n, subnet)]
            for network in waiting:
                self._networks.remove(network)
            units = [u for u in self._parked if _overlaps(u.network, subnet)]
            for unit in units:
                self._parked.remove(unit)
            returning = any(n.context.closed and _overlaps(n, subnet) for n in self._lent.values())
        for unit in units:  # its containers first: a network with containers on it stays
            for member in unit.members:
                self._remove(member.id)
            waiting.append(unit.network)
        for network in waiting:
            self._remove_network(network)
        return bool(waiting) or returning

    def give_back_network(self, network: Network) -> None:
        """``network``'s topology is removed (its containers first): it waits for the next
        test if nothing is on it, the pool has room and no explicit subnet asked for since
        overlaps it (see make_room); else it is removed. At the end of the run it stays as
        it is: close() removes it (its containers first)."""
        if self.ending and self.keeper is None:
            return
        with self._lock:
            if self._lent.get(network.id) is not network:  # parked with its containers (or handed on since)
                return
        subnet = ipaddress.IPv4Network(network.subnet) if network.subnet else None
        held = self.allocator is not None and subnet is not None and self.allocator.overlaps_held(subnet)
        with self._lock:
            keep = not self.closed and len(self._networks) + len(self._parked) < self.size and not held
        try:
            empty = not self.engine.inspect_network(network.id).get("Containers")
        except NotFound:
            self._release(network)
            return
        if keep and empty:
            with self._lock:
                if not self.closed:
                    self._lent.pop(network.id, None)
                    self._networks.append(network)
                    return
        self._remove_network(network)

    def drop_network(self, network: Network) -> None:
        """Remove a network handed out, now (its topology's ``discard()``)."""
        self._remove_network(network)

    def _remove_network(self, network: Network) -> None:
        remove_network(self.engine, network.id)
        self._release(network)

    def _release(self, network: Network) -> None:
        with self._lock:
            self._lent.pop(network.id, None)
        if self.allocator is not None and network.subnet is not None:
            self.allocator.release(ipaddress.IPv4Network(network.subnet))

    def _adopt(self, keeper: WarmKeeper) -> None:
        """Take the idle containers and empty networks of an adopted keeper as this pool's."""
        adopted = keeper.adopt(self.filters(), idle_shell_only)
        for container_id, name in adopted.containers:
            self._idle.append((container_id, name))
            self._names[container_id] = name
        for network_id, name, subnet, gateway in adopted.networks:
            # Read by take_network() and the removals only (id, names, subnet): no topology's yet.
            self._networks.append(Network(cast("Context", None), name, name, network_id, "bridge", subnet, gateway))
        names = [name for _, name in adopted.containers] + [n[1] for n in adopted.networks]
        numbers = [int(m.group(1)) for m in map(re.compile(r"(\d+)$").search, names) if m]
        self._numbers = itertools.count(max(numbers, default=0) + 1)

    def close(self) -> None:
        """Remove every container of the pool's (those waiting, and any still handed out),
        then its networks; at once if called again. With keep-warm, those waiting stay, and
        go back to the keeper (see keep_warm.py)."""
        with self._lock:
            if self.closed:
                return
            self.closed = True
            self._settled.wait_for(lambda: self._busy == 0, 30.0)  # a return under way ends first
            kept = {container_id for container_id, _ in self._idle} if self.keeper is not None else set()
            self._idle.clear()
            networks, self._networks = list(self._networks), deque()
            kept_networks = {n.id for n in networks} if self.keeper is not None else set()
            networks += [unit.network for unit in self._parked]  # removed after their containers, below
            self._parked.clear()
        left = [c["Id"] for c in self.engine.containers(all=True, filters=self.filters()) if c["Id"] not in kept]
        with ThreadPoolExecutor(max_workers=4, thread_name_prefix="dockernet-pool") as ex:
            list(ex.map(lambda container_id: remove_container(self.engine, container_id), left))
            list(ex.map(self._remove_network, [n for n in networks if n.id not in kept_networks]))
        for info in self.engine.networks(filters=self.filters()):  # handed out and never given back
            if info["Id"] not in kept_networks:
                remove_network(self.engine, info["Id"])
        if self.keeper is not None:
            self.keeper.release(kept=bool(kept or kept_networks))

    def filters(self) -> dict[str, str]:
        """The engine's filter for every container of the pool's."""
        return {"label": f"{TOPOLOGY}={self.id}"}


def _overlaps(network: Network, subnet: ipaddress.IPv4Network) -> bool:
    return network.subnet is not None and ipaddress.IPv4Network(network.subnet).overlaps(subnet)
