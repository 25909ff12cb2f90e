"""Keep-warm (``--dockernet-keep-warm SECONDS``, off by default): the warm pool outlives its run.

A run's idle pooled containers (each its resident shell only, on no network) and empty
pooled networks stay on the engine for up to SECONDS after the run, and the next run on
the same engine whose probe image, plugin version, DNS mode and subnet pool match adopts
them as its own idle pool: its first test joins running containers to a waiting network
instead of making both.

They belong to a *keeper*, not to the run: Docker labels cannot change, so with keep-warm
on, the pool makes its containers and networks with the keeper's id as their session label
from the start; the run's own removal (by its session label) and other runs' prunes leave
them alone while the keeper lives. A keeper has two kinds of lease (role ``lease``, its
session label), and lives while one says so (see :func:`.lease.lease_states`):

- its *held* lease ``dn-<keeper>-held``, made by the run that holds it and labelled with
  that run's id: the keeper lives while that run lives. Making it is the claim: the engine
  refuses a second container of that name, so two runs (or two xdist workers) never hold
  one keeper. It runs (``sleep`` for a day, started in the background) only for runs of
  releases that do not know keepers: to them a running lease is a live run's, and a lease
  never started would be a dead one's after two minutes.
- its *idle* lease, made (never started) when its run hands the pool back and labelled
  with SECONDS: the keeper lives SECONDS from its creation (by the engine's timestamp, as
  a run's lease between create and start lives two minutes), and then any run's prune
  removes the keeper's containers, networks and leases like a dead run's, wherever its
  last holder ran. (Earlier releases read it as a run's lease that never started: two
  minutes. A started ``sleep`` would cost a start, about 150 ms, at the end of each run.)

So a run killed while it holds a keeper leaves it for at most what remains of the idle
lease it adopted (SECONDS at most; at once for a keeper it made): its held lease counts
for nothing once the run's own lease has ended. Any run on the engine may adopt a keeper
(another machine's or user's too: its containers hold nothing of their run's); each xdist
worker holds a keeper of its own.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from .engine import remove_container, remove_containers_named, remove_network
from .engine.errors import APIError, EngineException, NotFound
from .labels import HELD_BY, IDLE_FOR, KEEP_WARM, ROLE, SESSION, RunIdentity
from .lease import LEASE_ROLE

if TYPE_CHECKING:
    from .engine.port import Engine

CONFLICT = 409  # the engine's answer to a name in use: another run holds the keeper
HELD_FOR = 86400  # seconds a held lease runs (see above): the bound for earlier releases' prunes


def match_key(version: str, image_id: str, dns: str, subnet_pool: str) -> str:
    """What a run must share with a keeper to adopt it (its containers run ``image_id`` with
    the resolver settings of ``dns``; its networks' subnets come from ``subnet_pool``)."""
    text = "\n".join((version, image_id, dns, subnet_pool))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def held_name(keeper_id: str) -> str:
    return f"dn-{keeper_id}-held"


@dataclasses.dataclass(frozen=True)
class Adopted:
    """What a run takes over from a keeper: its idle containers (id, name) and empty networks
    (id, name, subnet, gateway), checked."""

    containers: list[tuple[str, str]]
    networks: list[tuple[str, str, str | None, str | None]]


class Keeper:
    """The keeper a run holds (adopted, or made by it): whose labels its pool gives what it makes."""

    def __init__(self, engine: Engine, run: RunIdentity, image: str, key: str, seconds: int, keeper_id: str):
        self.engine, self.run, self.image, self.key, self.seconds = engine, run, image, key, seconds
        self.identity = dataclasses.replace(run, run_id=keeper_id)
        self.adopted = False
        self._starting: threading.Thread | None = None  # the held lease's start

    @property
    def id(self) -> str:
        return self.identity.run_id

    def labels(self) -> dict[str, str]:
        """The labels of everything the keeper has (the run's host, boot and pid: should its
        leases be gone, a prune judges the rest by them)."""
        return {**self.identity.labels(), KEEP_WARM: self.key}

    def claim(self) -> bool:
        """Hold the keeper for this run: False when another run holds it."""
        engine = self.engine
        labels = {**self.labels(), ROLE: LEASE_ROLE, HELD_BY: self.run.run_id}
        try:
            created = engine.create_container(
                self.image,
                command=["sleep", str(HELD_FOR)],
                name=held_name(self.id),
                labels=labels,
                host_config=engine.create_host_config(network_mode="none"),
            )
        except APIError as exc:
            if exc.status_code == CONFLICT:
                return False
            raise

        def start() -> None:
            with contextlib.suppress(EngineException):  # not started: read as alive for 2 minutes only
                engine.start(created["Id"])

        self._starting = threading.Thread(target=start, name="dockernet-keeper", daemon=True)
        self._starting.start()
        return True

    def adopt(self, filters: dict[str, str], idle_shell_only: Callable[[Engine, str], bool]) -> Adopted:
        """The keeper's containers and networks (the pool's ``filters`` find them) that are as
        a fresh pool's (running, not paused, on no network, running only ``idle_shell_only``'s
        resident shell; networks empty); the others are removed."""
        engine = self.engine
        containers = engine.containers(all=True, filters=filters)
        networks = engine.networks(filters=filters)

        def container_fits(c: dict[str, Any]) -> bool:
            attached = (c.get("NetworkSettings") or {}).get("Networks") or {}
            try:
                return c.get("State") == "running" and not attached and idle_shell_only(engine, c["Id"])
            except APIError:
                return False

        def network_fits(n: dict[str, Any]) -> dict[str, Any] | None:
            try:
                info = engine.inspect_network(n["Id"])
            except NotFound:
                return None
            return None if info.get("Containers") else info

        with ThreadPoolExecutor(max_workers=4, thread_name_prefix="dockernet-keep-warm") as ex:
            fit = list(ex.map(container_fits, containers))
            found = list(ex.map(network_fits, networks))
            unfit = [c["Id"] for c, ok in zip(containers, fit, strict=True) if not ok]
            list(ex.map(lambda container_id: remove_container(engine, container_id), unfit))
        kept = [(c["Id"], c["Names"][0].lstrip("/")) for c, ok in zip(containers, fit, strict=True) if ok]
        empty = []
        for network, info in zip(networks, found, strict=True):
            if info is None:
                remove_network(engine, network["Id"])
                continue
            config = ((info.get("IPAM") or {}).get("Config") or [{}])[0]
            empty.append((info["Id"], info["Name"], config.get("Subnet"), config.get("Gateway")))
        return Adopted(kept, empty)

    def release(self, *, kept: bool) -> None:
        """At the end of the holder's run, after its pool removed what it does not keep: when
        it ``kept`` something, a fresh idle lease lets the keeper live SECONDS more; then its
        earlier idle leases and its held lease go (with nothing kept, the keeper is over)."""
        engine = self.engine
        if self._starting is not None:
            self._starting.join()
        leases = engine.containers(all=True, filters={"label": [f"{SESSION}={self.id}", f"{ROLE}={LEASE_ROLE}"]})
        if kept:
            engine.create_container(
                self.image,
                command=["true"],
                name=f"dn-{self.id}-idle-{self.run.run_id}",
                labels={**self.labels(), ROLE: LEASE_ROLE, IDLE_FOR: str(self.seconds)},
                host_config=engine.create_host_config(network_mode="none"),
            )
        # Any order: the new idle lease alone keeps the keeper (a removal cut short leaves it
        # held by an ended run, or idle: dead in time either way).
        with ThreadPoolExecutor(max_workers=4, thread_name_prefix="dockernet-keep-warm") as ex:
            list(ex.map(lambda lease: remove_container(engine, lease["Id"]), leases))


def _lives(idle_lease: dict[str, Any]) -> bool:
    """Whether an idle lease (a container summary) still keeps its keeper alive now."""
    seconds = float((idle_lease.get("Labels") or {}).get(IDLE_FOR) or 0)
    return time.time() - float(idle_lease.get("Created") or 0) < seconds


def hold(engine: Engine, run: RunIdentity, image: str, key: str, seconds: int) -> Keeper:
    """The keeper for ``run``'s pool: the newest live one that matches ``key`` and no run
    holds, adopted; else a new one. Call it after the run's own lease is up (the held lease
    names the run, and lives as long as the run's lease says it does)."""
    idle = engine.containers(all=True, filters={"label": [f"{KEEP_WARM}={key}", IDLE_FOR], "status": "created"})
    for lease in sorted(idle, key=lambda c: -float(c.get("Created") or 0)):
        if not _lives(lease):
            continue
        keeper = Keeper(engine, run, image, key, seconds, (lease.get("Labels") or {})[SESSION])
        if not keeper.claim():
            continue
        # Held first, then its idle lease checked: a prune that read the keeper dead in
        # between reads it again and finds it held (see lease.lease_states).
        try:
            engine.inspect_container(lease["Id"])
        except NotFound:  # removed by a prune: so are the keeper's containers
            pass
        else:
            if _lives(lease):
                keeper.adopted = True
                return keeper
        remove_containers_named(engine, held_name(keeper.id), {"label": SESSION})  # ended: the prunes take it
    keeper = Keeper(engine, run, image, key, seconds, uuid.uuid4().hex[:10])
    if not keeper.claim():  # a fresh random id: nobody else's
        raise RuntimeError(f"keeper {keeper.id} is held already")
    return keeper
