"""Removing what earlier runs left behind when they were killed (SIGKILL, a crash, OOM).

A run is dead when its lease says so (see :mod:`.lease`). A run that has a lease is
judged by it alone: its labels' host name, boot id and pid say nothing sure about another
machine that shares the engine (two CI machines may both be called ``runner``, and each
has its own boot id). A run of an older release, or of the library used without the
plugin, has no lease: it is dead when its process is gone and it ran on this host in this
pid namespace (or before this host rebooted), and anything else is presumed alive.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .builds import built_images, remove_built_image
from .engine import remove_container, remove_network, remove_service, remove_volume
from .engine.errors import APIError
from .labels import ROLE, SESSION, RunIdentity
from .lease import LEASE_ROLE as LEASE
from .lease import lease_states
from .swarm import USER, Leaving, leave_plugin_swarm, made_by_plugin
from .timings import counted

if TYPE_CHECKING:
    from .engine.port import Engine


@dataclass
class Pruned:
    containers: list[str] = field(default_factory=list)
    networks: list[str] = field(default_factory=list)
    volumes: list[str] = field(default_factory=list)  # named volumes (container(volumes=...), a Compose file's)
    images: list[str] = field(default_factory=list)  # what build() named for a run (no tag given); each names its run
    runs: set[str] = field(default_factory=set)
    swarm: bool = False  # left a swarm the plugin made that no live run uses
    swarm_kept: tuple[str, ...] = ()  # such a swarm stayed: what leaving it would have broken
    failed: list[str] = field(default_factory=list)  # what the engine refused to remove, and why

    def __bool__(self) -> bool:
        found = self.containers or self.networks or self.volumes or self.images or self.swarm_kept or self.failed
        return bool(found) or self.swarm

    def describe(self) -> str:
        if not self:
            return "no resources of dead runs found"
        lines = []
        if self.containers or self.networks or self.volumes:
            kinds = [counted(len(self.containers), "containers"), counted(len(self.networks), "networks")]
            if self.volumes:
                kinds.append(counted(len(self.volumes), "volumes"))
            lines.append(
                f"removed {', '.join(kinds[:-1])} and {kinds[-1]} "
                f"left by {counted(len(self.runs), 'dead runs')} ({', '.join(sorted(self.runs))})"
            )
        if self.images:
            lines.append(f"removed {counted(len(self.images), 'images')} that build() made for dead runs")
        if self.swarm:
            lines.append("left the swarm the plugin had made (--dockernet-swarm auto, a lab), which no live run uses")
        if self.swarm_kept:
            lines.append(Leaving(kept_by=self.swarm_kept).describe())
        if self.failed:
            lines.append(
                f"could not remove {counted(len(self.failed), 'resources')} of dead runs (the next run tries again)"
            )
        return (
            "; ".join(lines)
            + "".join(f"\n  container {c}" for c in self.containers)
            + "".join(f"\n  network {n}" for n in self.networks)
            + "".join(f"\n  volume {v}" for v in self.volumes)
            + "".join(f"\n  image {i}" for i in self.images)
            + "".join(f"\n  not removed: {f}" for f in self.failed)
        )


class Judge:
    """Tells dead runs from live ones, from the engine's leases (read once)."""

    def __init__(
        self, engine: Engine, me: RunIdentity, runs: Collection[str] | None = None, ended: Collection[str] = ()
    ):
        self.me = me
        self.runs = runs  # judge only these (None: all)
        self.ended = ended  # runs known to be over, whatever their leases say (see .end_of_run)
        self._engine = engine
        self.leases = lease_states(engine, owner_gone=me.maker_is_gone)
        self._asked_again: set[str] = set()

    def dead(self, labels: dict[str, str]) -> bool:
        run = labels.get(SESSION)
        if not run or run == self.me.run_id or (self.runs is not None and run not in self.runs):
            return False
        if run in self.ended:
            return True
        if run not in self.leases and run not in self._asked_again:
            # A run that started after the leases were read has one now: its lease comes
            # before anything it makes.
            self._asked_again.add(run)
            self.leases = lease_states(self._engine, owner_gone=self.me.maker_is_gone)
        if run in self.leases:
            return not self.leases[run]
        return self.me.owner_is_gone(labels)

    def swarm_users(self, engine: Engine, *, but_me: bool = False) -> list[str]:
        """The live runs whose leases say they use the plugin's swarm (``but_me``: other
        than this one, which is about to end)."""
        users = engine.containers(all=True, filters={"label": [f"{ROLE}={LEASE}", USER]})
        runs = {(c.get("Labels") or {}).get(SESSION) for c in users}
        return sorted(r for r in runs if r and self.leases.get(r) and not (but_me and r == self.me.run_id))


def prune(engine: Engine, me: RunIdentity, runs: Collection[str] | None = None, ended: Collection[str] = ()) -> Pruned:
    """Remove every labelled service, container, network and volume whose run is dead, then the
    images ``build()`` named for such a run, and leave a swarm the plugin made that no live
    run uses.

    ``runs`` limits it to those runs (a run found holding something this one needs, or the
    run whose end :mod:`.end_of_run` removes: it is in ``ended`` too, dead whatever its lease
    says), and then leaves the swarm alone. Resources of live runs (this one included), and of runs
    that cannot be judged, are never touched. A dead run's lease goes last, so that a
    prune cut short still knows it is dead next time. What the engine refuses to remove
    (e.g. Docker 20.10 now and then keeps a network's endpoint after its container is
    gone) is listed in ``failed``, not raised, and its run's lease stays, so that the next
    run tries again.
    """
    pruned = Pruned()
    judge = Judge(engine, me, runs, ended)
    stuck: set[str] = set()  # runs something of which the engine would not remove

    def removed(kind: str, name: str, run: str, remove: Callable[..., object], *args: Any) -> bool:
        try:
            remove(*args)
        except APIError as exc:
            # A swarm-scoped network of a dead run (an overlay its capability probe made) is
            # still listed when the swarm has dropped it: the removal's "not found" means gone.
            if not (kind == "network" and "not found" in str(exc.explanation or exc)):
                pruned.failed.append(f"{kind} {name}: {exc.explanation or exc}")
                stuck.add(run)
                return False
        pruned.runs.add(run)
        return True

    def remove_containers(found: list[dict[str, Any]]) -> None:
        for c in found:
            name = c["Names"][0].lstrip("/")
            if removed("container", name, c["Labels"][SESSION], remove_container, engine, c["Id"]):
                pruned.containers.append(name)

    label = {"label": SESSION}
    try:
        services = engine.services(filters=label)
    except APIError:
        services = []  # not a swarm manager
    for s in services:
        labels = s["Spec"].get("Labels") or {}
        if judge.dead(labels) and removed(
            "service", s["Spec"]["Name"], labels[SESSION], remove_service, engine, s["ID"]
        ):
            pruned.containers.append(f"service {s['Spec']['Name']}")
    containers = [c for c in engine.containers(all=True, filters=label) if judge.dead(c.get("Labels") or {})]
    leases = [c for c in containers if (c.get("Labels") or {}).get(ROLE) == LEASE]
    remove_containers([c for c in containers if c not in leases])
    for n in engine.networks(filters=label):
        if judge.dead(n.get("Labels") or {}):
            if removed("network", n["Name"], n["Labels"][SESSION], remove_network, engine, n["Id"]):
                pruned.networks.append(n["Name"])
    # After the containers: the engine refuses to remove a volume a container still mounts.
    for v in engine.volumes(filters=label):
        labels = v.get("Labels") or {}
        if judge.dead(labels) and removed("volume", v["Name"], labels[SESSION], remove_volume, engine, v["Name"]):
            pruned.volumes.append(v["Name"])
    # After the containers: an image a container still uses cannot go (it stays for next time).
    for image in built_images(engine):
        labels = image.get("Labels") or {}
        if judge.dead(labels):
            refs = ", ".join(image.get("RepoTags") or [image["Id"]])
            gone: list[str] = []
            counted_before = labels[SESSION] in pruned.runs
            removed(
                "image", refs, labels[SESSION], lambda i, out: out.extend(remove_built_image(engine, i)), image, gone
            )
            if not gone and not counted_before:  # one a container uses stays: nothing of its run went
                pruned.runs.discard(labels[SESSION])
            pruned.images.extend(gone)
    remove_containers([c for c in leases if c["Labels"][SESSION] not in stuck])
    if runs is None and made_by_plugin(engine) is not None and not judge.swarm_users(engine):
        leaving = leave_plugin_swarm(engine)
        pruned.swarm, pruned.swarm_kept = leaving.left, leaving.kept_by
    return pruned
