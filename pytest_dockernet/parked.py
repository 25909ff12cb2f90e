"""Parking: a warm pool's topology kept whole for a later test of the same shape.

Joining a network costs about 42 ms per container and leaving one about 60 ms, one after the
other under the engine gate's ``.join`` lock: for a test of three containers on one network
most of its set-up and teardown. So when such a topology ends while the run goes on, and
its shape is one the pool can hand out again whole (:meth:`WarmPool.park`: one network of
the pool's, every container the pool's, ``reusable``, running its idle resident shell only,
on that network alone, without an address of its own), its containers stay joined: each
is renamed to its pool name there (the engine's DNS answers to the new name from then on,
the capability ``warm-pool-parking``), and the unit waits in the pool.

A later topology's ``network(name)`` that the pool fits takes a parked unit whose network had
the same logical name (before an empty network). Its containers are then *provisional*
(:class:`Provisional`): no test sees them (they are in no registry), and the next
``container()`` or ``containers()`` call claims those it asks for exactly (same logical name,
a launch the pool fits, on that network alone with the same aliases, no address): each is
renamed to the new topology's engine name and handed over without a join. Every other
provisional container is evicted (it leaves the network for the pool's idle ones) before
that call starts or joins anything else; any other call of the topology (``check_open``),
its close or a ``discard()`` evicts them all first.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .engine.errors import APIError
from .engine.gate import gate_for
from .handles import Container, Network
from .probes import RESIDENT_PROCESSES
from .timings import POOL_AGAIN, POOL_NETWORKS_AGAIN, POOL_WHOLE

if TYPE_CHECKING:
    from .context import Context
    from .engine.port import Engine


@dataclass
class Member:
    """A parked container: its engine id, its name while it waits (the pool's), and its
    logical name and further aliases on the unit's network in the topology that parked it."""

    id: str
    pool_name: str
    name: str
    aliases: list[str]


@dataclass
class Unit:
    """A parked topology: its network (the handle of the topology that parked it) with its
    containers still joined."""

    network: Network
    members: list[Member]


def matches(pool: Parking, context: Context, member: Member, network: Network, launch: Any) -> bool:
    """Whether ``launch`` asks for just what ``member`` is on ``network``: the pool fits it,
    and it joins that network alone, with the same aliases and no address."""
    attachments = list(launch.attachments)
    return (
        launch.spec.name == member.name
        and pool.fits(context, launch.spec, launch)
        and len(attachments) == 1
        and attachments[0].network is network
        and attachments[0].address is None
        and list(attachments[0].aliases) == member.aliases
    )


def idle_shell_only(engine: Engine, container_id: str) -> bool:
    """Whether the container runs exactly what a fresh one runs: its resident shell,
    idle. A process left running (a listener on a port, a loop) would meet the next test."""
    listing = engine.top(container_id)
    titles = listing.get("Titles") or []
    column = next((i for i, title in enumerate(titles) if title in ("CMD", "COMMAND")), None)
    if column is None:  # an engine that lists them otherwise: not known to be idle
        return False
    return sorted(p[column] for p in listing.get("Processes") or []) == sorted(RESIDENT_PROCESSES)


def as_launched(engine: Engine, unit: Unit) -> bool:
    """Whether the engine has ``unit`` as its handles say: only its containers on its
    network, each running (not paused) its idle resident shell, on that network alone with
    its own name and aliases there and no address of its own."""
    network = unit.network
    on_it = engine.inspect_network(network.id).get("Containers") or {}
    if set(on_it) != {member.id for member in unit.members}:
        return False

    def launched(member: Member) -> bool:
        info = engine.inspect_container(member.id)
        state, joined = info["State"], info["NetworkSettings"].get("Networks") or {}
        if not state.get("Running") or state.get("Paused") or list(joined) != [network.docker_name]:
            return False
        endpoint = joined[network.docker_name]
        # The engine adds the short id and the hostname (the pool's name: see WarmPool.new).
        aliases = set(endpoint.get("Aliases") or []) - {member.id[:12], member.pool_name}
        fixed = (endpoint.get("IPAMConfig") or {}).get("IPv4Address")
        return not fixed and aliases == {member.name, *member.aliases} and idle_shell_only(engine, member.id)

    with ThreadPoolExecutor(max_workers=4, thread_name_prefix="dockernet-pool-park") as ex:
        return all(list(ex.map(launched, unit.members)))


def hand_over(context: Context, member: Member, network: Network, image: str) -> Container | None:
    """``member`` for ``context``'s topology: renamed to its engine name there, with no join
    (it is on ``network`` with the aliases asked for); its output from now on is its test's.
    None when the engine refused or it no longer runs."""
    docker_name = context.docker_name_for(member.name)
    container = Container(context, member.name, docker_name, member.id, image, None, 0)
    container.resident = container.pooled = True
    try:
        with gate_for(context.engine).building():  # the network's DNS records change, as in a join
            context.engine.rename(member.id, docker_name)
        running = container.refresh().get("Running")
        container.logs_after = container.last_output_stamp()
    except APIError:
        return None
    if not running or network.docker_name not in container.endpoints:
        return None
    container.endpoints[network.docker_name].aliases = [member.name, *member.aliases]
    return container


def leave(engine: Engine, network: Network, members: Sequence[Member]) -> tuple[list[Member], list[Member]]:
    """``members`` leave ``network`` (one after the other under the gate's ``.join`` lock, as
    the pool's joins and leaves go): those that left, and those the engine refused."""
    left, failed = [], []
    for member in members:
        try:
            with gate_for(engine).joining():
                engine.disconnect_container_from_network(member.id, network.id)
            left.append(member)
        except APIError:
            failed.append(member)
    return left, failed


class Provisional:
    """The containers of a parked unit handed out with its network to ``context``'s topology,
    until its next ``container()``/``containers()`` call claims those it asks for exactly."""

    def __init__(self, pool: Parking, context: Context, network: Network, members: Sequence[Member]):
        self.pool, self.context, self.network = pool, context, network
        self._pending = {member.name: member for member in members}  # not yet claimed nor evicted
        self._claimed: dict[str, Member] = {}  # claimed by the call under way, not yet handed over
        self._lock = threading.Lock()

    def settle(self, launches: Sequence[Any]) -> None:
        """The call under way asks for ``launches``: the pending containers they match are
        claimed, the others evicted now (before the call starts or joins anything). Once a
        call has settled them, nothing is pending: a later call's launches claim nothing."""
        with self._lock:
            pending, self._pending = self._pending, {}
            for launch in launches:
                member = pending.get(launch.spec.name)
                if member is not None and matches(self.pool, self.context, member, self.network, launch):
                    self._claimed[member.name] = pending.pop(member.name)
        self.pool.evict(self.network, list(pending.values()))
        self._forget_when_done()

    def take(self, launch: Any) -> Container | None:
        """The claimed container for ``launch``, handed over; None when none was claimed for it
        (or its hand-over failed: then it is removed and the caller starts one as usual)."""
        with self._lock:
            member = self._claimed.pop(launch.spec.name, None)
        container = None if member is None else self.pool.hand_over_parked(self.context, member, self.network)
        self._forget_when_done()
        return container

    def end(self) -> None:
        """Evict whatever is left: pending, or claimed by a call that did not take it (it failed)."""
        with self._lock:
            left = [*self._pending.values(), *self._claimed.values()]
            self._pending, self._claimed = {}, {}
        self.pool.evict(self.network, left)
        self._forget_when_done()

    def _forget_when_done(self) -> None:
        with self._lock:
            done = not self._pending and not self._claimed
        if done and self.context.provisional is self:
            self.context.provisional = None


def settle(context: Context, launches: Sequence[Any]) -> None:
    """For a ``container()``/``containers()`` call of ``context``'s topology: its provisional
    containers (if any) are claimed by ``launches`` or evicted."""
    provisional: Provisional | None = context.provisional
    if provisional is not None:
        provisional.settle(launches)


def end(context: Context) -> None:
    """Evict ``context``'s provisional containers that no call took."""
    provisional: Provisional | None = context.provisional
    if provisional is not None:
        provisional.end()


class Parking:
    """The warm pool's parking (a base of warm_pool.WarmPool, whose state it shares): parked
    units wait in ``_parked``, oldest first, and count towards the pool's ``size``."""

    engine: Engine
    size: int
    image: str
    closed: bool
    ending: bool
    parks: bool  # off in a run that makes a swarm: its leave waits for no container on a network
    _lock: threading.Lock
    _settled: threading.Condition
    _busy: int
    _idle: deque[tuple[str, str]]
    _names: dict[str, str]
    _networks: deque[Network]
    _lent: dict[str, Network]
    _parked: deque[Unit]
    # Each handed-out container's attachments as its launch asked: (network id, aliases, address).
    _shapes: dict[str, list[tuple[str, list[str], str | None]]]

    def fits(self, context: Context, spec: Any, launch: Any) -> bool:
        raise NotImplementedError

    def lend(self, network: Network) -> None:
        raise NotImplementedError

    def _remove(self, container_id: str) -> None:
        raise NotImplementedError

    def _remove_network(self, network: Network) -> None:
        raise NotImplementedError

    def _held(self) -> int:
        """Containers the pool holds, waiting or parked (up to ``size``); under its lock."""
        return len(self._idle) + sum(len(unit.members) for unit in self._parked)

    def shape(self, container: Container, attachments: Sequence[Any]) -> None:
        """What ``container``'s launch asked for, which parking compares with what it is on now."""
        with self._lock:
            self._shapes[container.id] = [(a.network.id, list(a.aliases), a.address) for a in attachments]

    def park(self, context: Context) -> bool:
        """``context``'s topology ends while the run goes on: when it is one network of the
        pool's with only the pool's containers on it, each as its launch left it (``reusable``,
        running its idle resident shell only, on that network alone with the aliases it asked
        for, no address of its own) and the pool has room, its containers are renamed to their
        pool names where they are and the whole waits for a test of its shape. True when
        parked (nothing is then given back); False: given back as usual."""
        if self.ending or not self.parks:
            return False
        unit = self._parkable(context)
        if unit is None or not context.has("warm-pool-parking"):
            return False
        with self._lock:
            room = not self.closed and self._held() + len(unit.members) <= self.size
            if not room or len(self._networks) + len(self._parked) >= self.size:
                return False
            self._busy += 1
        try:
            engine = context.engine
            if not as_launched(engine, unit):
                return False
            with (
                ThreadPoolExecutor(max_workers=4, thread_name_prefix="dockernet-pool-park") as ex,
                gate_for(engine).building(),
            ):  # the network's DNS records change, as in a join
                list(ex.map(lambda member: engine.rename(member.id, member.pool_name), unit.members))
            with self._lock:
                if self.closed:  # close() removes them with the rest
                    return False
                self._lent.pop(unit.network.id, None)
                self._parked.append(unit)
            for container in context.containers:
                container.pooled = False  # given to the pool whole: nothing to return one by one
                context.shells.discard(container.id)
            return True
        except APIError:
            return False
        finally:
            with self._lock:
                self._busy -= 1
                self._settled.notify_all()

    def _parkable(self, context: Context) -> Unit | None:
        """The unit ``context``'s topology would park as, judged by what the handles say."""
        networks, containers = list(context.networks), list(context.containers)
        if len(networks) != 1 or not containers or len(containers) > self.size or context.faults_in_force():
            return None
        network = networks[0]
        members = []
        with self._lock:
            if not network.warm or self._lent.get(network.id) is not network:
                return None
            for container in containers:
                name, shape = self._names.get(container.id), self._shapes.get(container.id)
                if not (container.pooled and container.reusable and container.sidecar_id is None and name):
                    return None
                if shape is None or len(shape) != 1 or shape[0][0] != network.id or shape[0][2] is not None:
                    return None
                members.append(Member(container.id, name, container.name, shape[0][1]))
        return Unit(network, members)

    def _take_parked(self, context: Context, name: str) -> Network | None:
        """A parked unit's network whose logical name was ``name``, for ``context``'s topology,
        its containers provisional there; None when none is parked."""
        provisional: Provisional | None = context.provisional
        if provisional is not None:  # another network's (a batch's default network is made first)
            provisional.end()
        with self._lock:
            if self.closed:
                return None
            unit = next((u for u in self._parked if u.network.name == name), None)
            if unit is None:
                return None
            self._parked.remove(unit)
        last = unit.network
        network = Network(context, name, last.docker_name, last.id, "bridge", last.subnet, last.gateway)
        network.warm = True
        self.lend(network)
        context.provisional = Provisional(self, context, network, unit.members)
        context.timings.count(POOL_NETWORKS_AGAIN)
        return network

    def hand_over_parked(self, context: Context, member: Member, network: Network) -> Container | None:
        """A provisional container claimed by ``context``'s topology, handed over (see
        parked.hand_over); None when that failed: it is removed (the caller starts one)."""
        container = hand_over(context, member, network, self.image)
        if container is None:
            self._remove(member.id)
            return None
        context.timings.count(POOL_AGAIN)
        context.timings.count(POOL_WHOLE)
        return container

    def evict(self, network: Network, members: Sequence[Member]) -> None:
        """Provisional containers no call claimed leave ``network`` and wait as the pool's idle
        ones (or are removed). At the end of the run they stay: close() removes them."""
        if not members or self.ending:
            return
        left, failed = leave(self.engine, network, members)
        for member in failed:
            self._remove(member.id)
        for member in left:
            with self._lock:
                if not self.closed and self._held() < self.size:
                    self._idle.append((member.id, member.pool_name))
                    continue
            self._remove(member.id)

    def unpark(self) -> None:
        """Take every parked topology apart now (its containers leave its network and wait
        idle): a swarm leave, anyone's, waits while containers are on user-defined networks."""
        with self._lock:
            units, self._parked = list(self._parked), deque()
        for unit in units:
            self._break(unit)

    def _break(self, unit: Unit) -> None:
        """A parked unit no test of its shape came for, taken apart: its containers leave its
        network and wait idle, the network waits empty (first in line)."""
        self.evict(unit.network, unit.members)
        with self._lock:
            if not self.closed:
                self._networks.appendleft(unit.network)
                return
        self._remove_network(unit.network)
