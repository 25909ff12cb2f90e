"""Removing what earlier runs left behind when they were killed (SIGKILL, a crash, OOM)."""

from __future__ import annotations

from dataclasses import dataclass, field

import docker
import docker.errors

from . import identity as lbl
from .engine import remove_container, remove_network
from .identity import RunIdentity


@dataclass
class Pruned:
    containers: list[str] = field(default_factory=list)
    networks: list[str] = field(default_factory=list)
    runs: set[str] = field(default_factory=set)

    def __bool__(self) -> bool:
        return bool(self.containers or self.networks)

    def describe(self) -> str:
        if not self:
            return "no resources of dead runs found"
        return (
            f"removed {len(self.containers)} containers and {len(self.networks)} networks left by "
            f"{len(self.runs)} dead runs ({', '.join(sorted(self.runs))})"
            + "".join(f"\n  container {c}" for c in self.containers)
            + "".join(f"\n  network {n}" for n in self.networks)
        )


def prune(client: docker.DockerClient, me: RunIdentity) -> Pruned:
    """Remove every labelled container and network whose owning process has ended.

    Resources of live runs (this one included) and of other hosts are never touched.
    """
    pruned = Pruned()
    label = {"label": lbl.SESSION}
    try:
        services = client.api.services(filters=label)
    except docker.errors.APIError:
        services = []  # not a swarm manager
    for s in services:
        labels = s["Spec"].get("Labels") or {}
        if me.owner_is_gone(labels):
            try:
                client.api.remove_service(s["ID"])
            except docker.errors.NotFound:
                pass
            pruned.containers.append(f"service {s['Spec']['Name']}")
            pruned.runs.add(labels[lbl.SESSION])
    for c in client.api.containers(all=True, filters=label):
        if me.owner_is_gone(c.get("Labels") or {}):
            remove_container(client, c["Id"])
            pruned.containers.append(c["Names"][0].lstrip("/"))
            pruned.runs.add(c["Labels"][lbl.SESSION])
    for n in client.api.networks(filters=label):
        if me.owner_is_gone(n.get("Labels") or {}):
            remove_network(client, n["Id"])
            pruned.networks.append(n["Name"])
            pruned.runs.add(n["Labels"][lbl.SESSION])
    return pruned
