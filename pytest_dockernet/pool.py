"""A warm pool of probe-image containers, started ahead of need.

Starting a container costs 330-400 ms on Docker 20.10, joining a network about 42 ms and
leaving one about 59 ms. So a ``container()`` call that asks for nothing of its own (the
probe image with its resident shell, bridge networks of engine 0, no options, see
:func:`poolable`) gets a container that already runs: it joins the test's networks with its
logical name and aliases, leaves the pool's network, and is renamed to the name the
topology would have given it. A background thread starts the next one meanwhile.

What stays true of a pooled container: it resolves by its logical name and aliases on every
network it joins; ``ip()``, ``exec()``, probes and its resident shell work as for any
other; ``logs()`` are its own test's only (nothing ran in it before); it carries the run's
labels, so a killed run's are pruned like everything else, and the topology that took it
removes it (by id: labels cannot change after a container is made). What differs: its
hostname is the pool's (``dn-<id>-pool-N``, to which it also answers), not its logical
name. ``--dockernet-pool 0`` turns the pool off; ``--dockernet-keep`` does too (a kept
container must not go with the pool).
"""

from __future__ import annotations

import itertools
import threading
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import docker
import docker.errors

from .engine import remove_container
from .gate import gate_for
from .handles import Container, Network
from .retry import poll

if TYPE_CHECKING:
    from .container_specs import Attachment, ContainerSpec, Launch
    from .topology import Topology


def poolable(spec: ContainerSpec, launch: Launch) -> bool:
    """Whether a pooled container is what ``container()`` would make for ``spec``."""
    asks_nothing = not any(
        (
            spec.image,
            spec.command,
            spec.entrypoint,
            spec.environment,
            spec.ports,
            spec.expose,
            spec.links,
            spec.network_mode,
            spec.cap_add,
            spec.privileged,
            spec.host,
            spec.user,
            spec.working_dir,
            spec.hostname,
            spec.volumes,
            spec.healthcheck,
            spec.labels,
            spec.docker_options,
        )
    )
    return (
        asks_nothing
        and spec.ready == "running"
        and launch.resident
        and launch.network_mode is None
        and bool(launch.attachments)
        and all(a.network.driver == "bridge" and a.network.owned for a in launch.attachments)
    )


class WarmPool:
    """Up to ``size`` running probe-image containers of one run, on a network of their own,
    made by a topology of their own (so they are made exactly as ``container()`` makes
    them: labels, hermetic DNS, the resident shell)."""

    def __init__(self, make_topology: Any, size: int):
        self.size = size
        self._make_topology = make_topology  # () -> Topology, on first use
        self._topology: Topology | None = None
        self._network: Network | None = None
        self._ready: deque[Container] = deque()
        self._pending = 0
        self._names = itertools.count(1)
        self._lock = threading.Lock()
        self._setup = threading.Lock()
        # A few at once: the engine starts two or three containers in little more time than one.
        self._filler = ThreadPoolExecutor(max_workers=min(size, 3), thread_name_prefix="dockernet-pool")
        self._futures: list[Future[None]] = []
        self.broken: str | None = None  # why the pool stopped filling (the normal path goes on)
        self.handed = 0

    def start(self) -> None:
        """Fill the pool in the background (the first topology of a run calls this)."""
        self._fill()

    @property
    def warm(self) -> int:
        """How many containers are ready to hand out now."""
        with self._lock:
            return len(self._ready)

    def wait_filled(self, timeout: float = 30.0) -> bool:
        """Wait until the pool holds ``size`` ready containers (or has stopped filling)."""
        filled, _ = poll(
            lambda: self.warm >= self.size or self.broken is not None, bool, timeout=timeout, interval=0.05
        )
        return filled and self.broken is None

    def take(self, topology: Topology, name: str, attachments: Sequence[Attachment]) -> Container | None:
        """A warm container for ``topology``, on ``attachments`` under ``name``; None when the
        pool is empty or the hand-over failed (then ``container()`` makes one as usual)."""
        with self._lock:
            pooled = self._ready.popleft() if self._ready else None
        self._fill()
        if pooled is None or self._network is None:
            return None
        client, api = topology.client, topology.client.api
        docker_name = topology.docker_name_for(name)
        try:
            api.rename(pooled.id, docker_name)
            with gate_for(client).building():
                for attachment in attachments:
                    api.connect_container_to_network(
                        pooled.id,
                        attachment.network.id,
                        aliases=[name, *attachment.aliases],
                        ipv4_address=attachment.address,
                    )
                api.disconnect_container_from_network(pooled.id, self._network.id)
        except docker.errors.APIError:
            remove_container(client, pooled.id)
            return None
        container = Container(topology, name, docker_name, pooled.id, pooled.image, None, 0)
        container.resident = True
        state = container.refresh()
        if not state.get("Running"):
            remove_container(client, pooled.id)
            return None
        for attachment in attachments:
            container.endpoints[attachment.network.docker_name].aliases = [name, *attachment.aliases]
        container.pooled = True  # removed by id with its topology: its labels are the pool's
        self.handed += 1
        return container

    def _fill(self) -> None:
        with self._lock:
            if self.broken is not None:
                return
            missing = self.size - len(self._ready) - self._pending
            self._pending += max(0, missing)
            for _ in range(max(0, missing)):
                self._futures.append(self._filler.submit(self._make_one))

    def _make_one(self) -> None:
        try:
            with self._setup:  # the first filler makes the pool's topology and network
                if self._topology is None or self._network is None:
                    self._topology = self._make_topology()
                    self._network = self._topology.network("pool")
            name = f"pool-{next(self._names)}"
            # Docker answers to a container's hostname on its networks: one that no test uses.
            hostname = self._topology.docker_name_for(name)
            pooled = self._topology.container(name, networks=[self._network], hostname=hostname)
        except Exception as exc:  # noqa: BLE001 - the pool is an optimisation: say why it stopped, go on without
            with self._lock:
                self._pending -= 1
                self.broken = f"{type(exc).__name__}: {exc}"
            return
        with self._lock:
            self._pending -= 1
            self._ready.append(pooled)

    def close(self) -> None:
        """Remove the containers never handed out, and the pool's network."""
        with self._lock:
            self.broken = self.broken or "closed"
        self._filler.shutdown(wait=True)
        if self._topology is None:
            return
        client = self._topology.client
        for pooled in self._ready:
            remove_container(client, pooled.id)
        self._ready.clear()
        self._topology.close()
