"""A topology as data: what ``topology.json`` holds and ``topology_svg`` draws, read from the
run :class:`~pytest_dockernet.context.Context` of each of a test's topologies.

Version 1 of the document (plain JSON: str, int, float, bool, null, lists, dicts; readers
ignore keys they do not know, so it can grow)::

    {"version": 1, "label": str, "topologies": [label, ...],
     "networks": [{"name", "docker_name", "driver", "subnet", "subnet6", "gateway",
                   "internal", "topology"}],
     "containers": [{"name", "docker_name", "image", "state", "exit_code", "network_mode",
                     "engine", "service", "topology",
                     "endpoints": [{"network", "ip", "aliases"}]}],
     "services": [{"name", "docker_name", "image", "endpoint_mode", "replicas",
                   "vips": [{"network", "ip"}], "tasks": [container name, ...], "topology"}],
     "faults": [{"kind": "partition", "id", "text", "since", "a", "b", "one_way", "mode", "ports"}
              | {"kind": "degradation", "id", "text", "since", "container", "to",
                 "network", "loss", "rate", "delay", "jitter", "duplicate", "corrupt",
                 "reorder", "direction"}],
     "links": [{"kind": "cut" | "degraded", "from", "to", "fault", "one_way", "since"}],
     "failing": {"source", "target", "target_container", "target_service", "address",
                 "kind", "port", "network", "verdict", "diagnosis"} | null}

Names are the test's (logical); a network an endpoint is on that is not the topology's
(``bridge``) goes by its engine name. With several topologies in one test, a name two of
them use is qualified with its topology's number (``api#2``) so that each name is one thing.
``since`` is in seconds from the start of the test's call phase (as ``timeline.txt``), null
when unknown. Nothing here may fail a report: what the engine does not answer is left out
or said (``state unknown``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .engine.errors import EngineException, NotFound
from .errors import DockernetError
from .faults.degradation import Degradation
from .faults.partition import Partition
from .handles import state_text

if TYPE_CHECKING:
    from .context import Context
    from .handles import Container, Network
    from .swarm import Service
    from .timeline import Timeline

VERSION = 1


@dataclass(frozen=True)
class FailingProbe:
    """The probe a test failed on, as its helper knew it (logical names)."""

    source: str  # the container it ran from
    target: str  # a container's, task's or service's name, an alias, or an address
    kind: str  # "icmp", "tcp", "udp", "dns", "http"
    port: int | None = None
    address: str | None = None  # what the target's name resolved to, when it did
    verdict: str = ""  # "no reply within 5 s", "connection refused", ...
    diagnosis: str | None = None  # the diagnosis line


def snapshot(contexts: Iterable[Context], *, failing: FailingProbe | None = None) -> dict[str, Any]:
    """The topologies of ``contexts`` (a test's, in the order made) as one JSON-able document;
    ``failing`` marks the probe the test failed on, so that its path can be drawn."""
    contexts = list(contexts)
    names = _Names(contexts)
    doc: dict[str, Any] = {
        "version": VERSION,
        "label": " + ".join(c.label for c in contexts),
        "topologies": [c.label for c in contexts],
        "networks": [],
        "containers": [],
        "services": [],
        "faults": [],
        "lifted": [],  # the faults lifted during the test: what was in force for a while
        "links": [],
        "failing": None,
    }
    for k, context in enumerate(contexts):
        doc["networks"] += [_network(n, names.of(k, n.name), k) for n in context.networks]
        doc["containers"] += [_container(c, names, k) for c in context.containers]
        for service in context.services:
            entry, tasks = _service(service, names, k)
            doc["services"].append(entry)
            doc["containers"] += tasks
        for fault in context.faults_in_force():
            entry, links = _fault(fault, names, k, context.timeline)
            doc["faults"].append(entry)
            doc["links"] += [{**link, "since": entry["since"]} for link in links]
        doc["lifted"] += [_lifted(fault, context.timeline) for fault in context.faults_lifted()]
    if failing is not None:
        doc["failing"] = _failing(failing, doc)
    return doc


class _Names:
    """Each topology's logical names, qualified (``api#2``) where two topologies share one."""

    def __init__(self, contexts: Sequence[Context]):
        seen: dict[str, set[int]] = {}
        for k, context in enumerate(contexts):
            for registry in (context.networks, context.containers, context.services):
                for handle in registry:
                    seen.setdefault(handle.name, set()).add(k)
        self.shared = {name for name, where in seen.items() if len(where) > 1}

    def of(self, k: int, name: str, owner: str | None = None) -> str:
        """``name`` of topology ``k``; a task's (``web.1``) is qualified with its ``owner`` service's."""
        return f"{name}#{k + 1}" if (owner or name) in self.shared else name


def _network(network: Network, name: str, k: int) -> dict[str, Any]:
    return {
        "name": name,
        "docker_name": network.docker_name,
        "driver": network.driver,
        "subnet": network.subnet,
        "subnet6": network.subnet6,
        "gateway": network.gateway,
        "internal": network.internal,
        "topology": k,
    }


def _state(container: Container) -> tuple[str, int | None]:
    """Its state as ``describe()`` shows it, and its exit code once it has exited."""
    try:
        state = container.engine.inspect_container(container.id)["State"]
    except NotFound:
        return "removed", None
    except EngineException:
        return "state unknown: the engine did not answer", None
    text = state_text(state)
    return text, state.get("ExitCode") if text.startswith("exited") else None


def _container(container: Container, names: _Names, k: int, service: Service | None = None) -> dict[str, Any]:
    """A container's entry; a swarm task's names ``service``."""
    state, exit_code = _state(container)
    endpoints = []
    for docker_name, endpoint in container.endpoints.items():
        network = names.of(k, endpoint.network.name) if endpoint.network is not None else docker_name
        endpoints.append({"network": network, "ip": endpoint.ip, "aliases": list(endpoint.aliases)})
    return {
        "name": names.of(k, container.name, service.name if service is not None else None),
        "docker_name": container.docker_name,
        "image": container.image,
        "state": state,
        "exit_code": exit_code,
        "network_mode": container.network_mode,
        "engine": container.host,
        "service": names.of(k, service.name) if service is not None else None,
        "topology": k,
        "endpoints": endpoints,
    }


def _service(service: Service, names: _Names, k: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A swarm service's entry and its running tasks' containers (named ``web.1``)."""
    name = names.of(k, service.name)
    entry: dict[str, Any] = {
        "name": name,
        "docker_name": service.docker_name,
        "image": service.image,
        "endpoint_mode": service.endpoint_mode,
        "replicas": None,
        "vips": [],
        "tasks": [],
        "topology": k,
    }
    try:
        info = service.context.engine.inspect_service(service.id)
        entry["replicas"] = ((info.get("Spec") or {}).get("Mode") or {}).get("Replicated", {}).get("Replicas")
        by_id = {n.id: n for n in service.context.networks}
        for vip in (info.get("Endpoint") or {}).get("VirtualIPs") or []:
            network = by_id.get(vip.get("NetworkID"))
            if network is not None:  # the ingress network's VIP is the swarm's, not the test's
                entry["vips"].append({"network": names.of(k, network.name), "ip": vip.get("Addr", "").split("/")[0]})
        tasks = [_container(task, names, k, service=service) for task in service.tasks()]
    except (EngineException, DockernetError):  # the engine not answering, a task on an engine not the run's
        return entry, []
    entry["tasks"] = [task["name"] for task in tasks]
    return entry, tasks


def _seconds(timeline: Timeline, at: float | None) -> float | None:
    seconds = None if at is None else timeline.relative(at)
    return None if seconds is None else round(seconds, 3)


def _lifted(fault: Any, timeline: Timeline) -> dict[str, Any]:
    """A fault lifted during the test: what it was, when it was applied and lifted."""
    return {
        "text": fault.title(),
        "since": _seconds(timeline, fault.since),
        "lifted": _seconds(timeline, fault.lifted_at),
        "measured": fault.measured,
    }


def _fault(fault: Any, names: _Names, k: int, timeline: Timeline) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A fault in force and the links it cuts or degrades between containers."""
    since = None if fault.since is None else timeline.relative(fault.since)
    entry: dict[str, Any] = {
        "text": fault.title(),
        "since": None if since is None else round(since, 3),
        "measured": fault.measured,
    }
    if isinstance(fault, Partition):
        a = [names.of(k, c.name) for c in fault.a]
        b = [names.of(k, c.name) for c in fault.b]
        fid = f"partition #{fault.number}"
        entry.update({"kind": "partition", "id": fid, "a": a, "b": b, "one_way": fault.one_way})
        entry.update({"mode": fault.mode, "ports": fault.ports})
        links = [{"kind": "cut", "from": x, "to": y, "fault": fid, "one_way": fault.one_way} for x in a for y in b]
        return entry, links
    if not isinstance(fault, Degradation):  # a kind this version does not draw: its line only
        return {**entry, "kind": type(fault).__name__.lower(), "id": entry["text"]}, []
    source = names.of(k, fault.container.name)
    fid = f"degrade {source}"
    to = [names.of(k, c.name) for c in fault.to]
    network = names.of(k, fault.network.name) if fault.network is not None else None
    entry.update(
        {
            "kind": "degradation",
            "id": fid,
            "container": source,
            "to": to,
            "network": network,
            "loss": fault.loss,
            "rate": fault.rate,
            "delay": fault.delay,
            "jitter": fault.jitter,
            **{key: getattr(fault, key) for key in ("duplicate", "corrupt", "reorder", "direction")},
        }
    )
    # A link of what the container sends (egress), receives (ingress: from the peer) or both.
    ends = [(peer, source) if fault.direction == "ingress" else (source, peer) for peer in to]
    one_way = fault.direction != "both"
    return entry, [{"kind": "degraded", "from": x, "to": y, "fault": fid, "one_way": one_way} for x, y in ends]


def _failing(probe: FailingProbe, doc: dict[str, Any]) -> dict[str, Any]:
    """The failing probe, with the container it was aimed at (by name, alias or address, in
    the source's topology) and the network it went over (the first the two share; null when
    they share none). Names are the document's: ``api#2`` for the probe's ``api`` when two
    topologies have one (the first such source counts)."""
    source = next((c for c in doc["containers"] if c["name"].split("#")[0] == probe.source), None)
    k = source["topology"] if source is not None else 0
    ours = [c for c in doc["containers"] if c["topology"] == k]
    target = next((c for c in ours if c["name"].split("#")[0] == probe.target), None)
    theirs = [e["network"] for e in target["endpoints"]] if target is not None else []
    if target is None:  # an alias or an address: the networks it is one on
        for c in ours:
            theirs = [e["network"] for e in c["endpoints"] if probe.target in (*e["aliases"], e["ip"])]
            if theirs:
                target = c
                break
    service = next((v for v in doc["services"] if v["topology"] == k and v["name"].split("#")[0] == probe.target), None)
    if service is not None:
        theirs = [vip["network"] for vip in service["vips"]]
    mine = [e["network"] for e in source["endpoints"]] if source is not None else []
    return {
        "source": source["name"] if source is not None else probe.source,
        "target": probe.target,
        "target_container": target["name"] if target is not None else None,
        "target_service": service["name"] if service is not None else None,
        "address": probe.address,
        "kind": probe.kind,
        "port": probe.port,
        "network": next((n for n in mine if n in theirs), None),
        "verdict": probe.verdict,
        "diagnosis": probe.diagnosis,
    }
