"""Swarm mode: a topology's services, what a run learns about the swarm once, and the
single-node swarm that ``--dockernet-swarm auto`` makes for a run and leaves after it when
that breaks no one's names (see :func:`at_risk`).

A service's logical name resolves on its overlay networks to the service's virtual IP
(``endpoint_mode="vip"``, the default) or to its tasks' addresses (``"dnsrr"``), and
``tasks.<name>`` to every task's address. ``constraints`` place the tasks
(``["node.role==manager"]``, ``["node.hostname==dnlab1"]``). Without ``image``, the probe
image runs, idle, so tasks can be probed like any container.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from .checks import check_count, check_name, check_str_list, check_timeout
from .engine import Client, as_engine, has_network, remove_network_if_unused, remove_services, undone_on_failure
from .engine.errors import APIError
from .engine.gate import gate_for
from .errors import DockernetError
from .handles import Container, Network
from .probes import RESIDENT, run
from .registry import Registry
from .retry import poll
from .timings import counted

if TYPE_CHECKING:
    from .context import Context
    from .engine.port import Engine

ENDPOINT_MODES = ("vip", "dnsrr")
GWBRIDGE = "docker_gwbridge"  # the bridge swarm init adds for overlay traffic leaving a host


@dataclass(eq=False, repr=False)
class Service:
    """A swarm service of a topology: ``name`` is logical (it resolves on the service's
    networks), ``docker_name`` the swarm's."""

    context: Context
    name: str
    docker_name: str
    id: str
    endpoint_mode: str
    image: str
    _tasks: dict[str, Container] = field(default_factory=dict, init=False)  # by task id: they keep their sidecars

    @property
    def topology(self) -> Any:
        """The factory that made it (for hooks and tests; the package asks :attr:`context`)."""
        return self.context.factory

    @property
    def replicas(self) -> int:
        spec = self.context.engine.inspect_service(self.id)["Spec"]
        replicas: int = spec["Mode"]["Replicated"]["Replicas"]
        return replicas

    def tasks(self) -> list[Container]:
        """The running tasks' containers, wherever they run, as Container handles."""
        tasks = self.context.engine.tasks(filters={"service": self.id, "desired-state": "running"})
        running = [t for t in tasks if t["Status"]["State"] == "running" and t["Status"].get("ContainerStatus")]
        handles = []
        for task in sorted(running, key=lambda t: t.get("Slot") or 0):
            handle = self._tasks.get(task["ID"])
            if handle is None:
                handle = self._tasks[task["ID"]] = self._handle(task)
            handles.append(handle)
        return handles

    def _handle(self, task: dict[str, Any]) -> Container:
        context = self.context
        engine = engine_of_node(context, task["NodeID"])
        container_id = task["Status"]["ContainerStatus"]["ContainerID"]
        info = context.engines[engine].inspect_container(container_id)
        handle = Container(
            context,
            f"{self.name}.{task.get('Slot') or task['ID'][:12]}",
            info["Name"].lstrip("/"),
            container_id,
            self.image,
            None,
            engine,
        )
        handle.resident = bool(info["Config"].get("OpenStdin")) and self.image == context.probe_image
        handle.refresh()
        return handle

    def scale(self, replicas: int, *, timeout: float = 60.0) -> None:
        """Change the replica count; returns once exactly that many tasks run."""
        check_count("replicas", replicas)
        timeout = check_timeout(timeout)
        engine = self.context.engine
        current = engine.inspect_service(self.id)
        spec = current["Spec"]
        try:
            # The spec as it is, but for the mode: the SDK's fetch_current_spec sends it back
            # with the engine's defaults filled in, which the swarm takes for a new task
            # template and so replaces every task (seen here as a scaled service with none).
            engine.update_service(
                self.id,
                version=current["Version"]["Index"],
                task_template=spec["TaskTemplate"],
                name=spec["Name"],
                labels=spec.get("Labels"),
                mode=replicated(replicas),
                endpoint_spec=spec.get("EndpointSpec"),
            )
        except APIError as exc:
            raise DockernetError(f"scaling service {self.name!r} failed: {exc.explanation or exc}") from None
        _wait_for_tasks(self, replicas, timeout)

    def __repr__(self) -> str:
        return f"<Service {self.name} ({self.docker_name}, {self.endpoint_mode})>"


def _wait_for_tasks(service: Service, replicas: int, timeout: float) -> None:
    """Until exactly ``replicas`` tasks run and no task on its way out still does."""
    engine = service.context.engine

    def settled(tasks: list[dict[str, Any]]) -> bool:
        wanted = [t for t in tasks if t["DesiredState"] == "running"]
        running = [t for t in wanted if t["Status"]["State"] == "running"]
        leaving = [t for t in tasks if t["DesiredState"] != "running" and t["Status"]["State"] == "running"]
        return len(running) == len(wanted) == replicas and not leaving

    tasks, _ = poll(lambda: engine.tasks(filters={"service": service.id}), settled, timeout=timeout)
    if not settled(tasks):
        running = [t for t in tasks if t["DesiredState"] == "running" and t["Status"]["State"] == "running"]
        errors = sorted({t["Status"].get("Err") or t["Status"].get("Message", "") for t in tasks} - {""})
        raise DockernetError(
            f"service {service.name!r}: {len(running)} of {replicas} replicas running after {timeout:g} s"
            + (f"; task errors: {'; '.join(errors)}" if errors else "")
        )


@dataclass
class ServiceSpec:
    """The arguments of ``Topology.service()``, as given."""

    name: str
    image: str | None = None
    command: str | list[str] | None = None
    networks: Iterable[Network] | Network | None = None  # one Network is taken too
    replicas: int = 1
    endpoint_mode: str | None = None  # "vip" unless given: given, a VIP must work
    constraints: Iterable[str] | None = None
    timeout: float = 60.0


class OwnNetworks(Protocol):
    """What services ask of the networks part (:class:`~.networks.Networks`)."""

    def check_own(self, network: object, argument: str) -> Network: ...


class Services:
    """The services of one topology, by logical name (which no container may have too)."""

    def __init__(self, context: Context, networks: OwnNetworks):
        self.context = context
        self.networks = networks
        self.registry: Registry[Service] = context.services

    def create(self, spec: ServiceSpec) -> Service:
        """Create one service (see Topology.service)."""
        context, name, image, command, replicas = self.context, spec.name, spec.image, spec.command, spec.replicas
        endpoint_mode, networks = spec.endpoint_mode, spec.networks
        check_name("service name", name)
        check_count("replicas", replicas)
        timeout = check_timeout(spec.timeout)
        explicit_vip = endpoint_mode == "vip"  # a VIP the test asked for must work, or it fails
        endpoint_mode = "vip" if endpoint_mode is None else endpoint_mode
        if endpoint_mode not in ENDPOINT_MODES:
            raise ValueError(f"endpoint_mode={endpoint_mode!r} is not one of {', '.join(ENDPOINT_MODES)}")
        example = "placement constraints such as ['node.role==manager']"
        constraints = check_str_list("constraints", spec.constraints, example)
        if isinstance(networks, Network):
            networks = [networks]
        networks = [self.networks.check_own(n, "networks") for n in networks or []]
        for network in networks:
            if network.driver != "overlay":
                raise ValueError(
                    f"networks: {network.name!r} is a {network.driver} network; services join overlay networks "
                    "only (dockernet.network(name, driver='overlay'))"
                )
        if self.registry.taken(name):
            raise ValueError(f"service name {name!r} is already used in this topology: pick another name")
        require_swarm(context, "a service")
        resident = image is None and command is None
        if image is None:
            image = context.probe_image
            for i in range(len(context.engines)):
                context.provide_probe_image(i)
        if resident:
            command = RESIDENT
        if isinstance(command, str):
            command = ["sh", "-c", command]
        docker_name = context.docker_name_for(name)
        labels = context.labels_for("service", name)
        hermetic = context.settings.dns == "hermetic"
        template = task_template(name, image, command, labels, networks, constraints, hermetic, resident)
        engine = context.engine

        def make() -> Service:
            # An interrupted create may still have made it; tasks that never run undo it too.
            with undone_on_failure(
                f"creating service {name!r}",
                lambda: remove_services(engine, {**context.filters(), "name": docker_name}),
            ):
                created = engine.create_service(
                    task_template=template,
                    name=docker_name,
                    labels=labels,
                    mode=replicated(replicas),
                    endpoint_spec={"Mode": endpoint_mode},
                )
                service = Service(context, name, docker_name, created["ID"], endpoint_mode, image)
                _wait_for_tasks(service, replicas, timeout)
            return service

        service = self.registry.add(name, make)
        context.timings.count("services")
        if endpoint_mode == "vip" and replicas and networks:
            check_vip(context, service, explicit_vip)
        return service


def replicated(replicas: int) -> dict[str, Any]:
    """A service's ``Mode`` (the API's JSON): ``replicas`` tasks."""
    return {"replicated": {"Replicas": replicas}}


def task_template(
    name: str,
    image: str,
    command: list[str] | None,
    labels: dict[str, str],
    networks: list[Network],
    constraints: list[str] | None,
    hermetic: bool,
    resident: bool,
) -> dict[str, Any]:
    """A service's ``TaskTemplate`` (the API's JSON): its tasks' containers, with the
    service's logical ``name`` as an alias on each network; restarted 0.2 s after they exit."""
    container: dict[str, Any] = {"Image": image, "Args": command, "Labels": labels}
    if hermetic:  # names resolve by the embedded DNS server only, as a container's do (container_options.DNS_MODES)
        container["DNSConfig"] = {"Nameservers": ["127.0.0.1"], "Search": ["."], "Options": ["ndots:1"]}
    if resident:
        container["OpenStdin"] = True
    template: dict[str, Any] = {
        "ContainerSpec": container,
        "RestartPolicy": {"Condition": "any", "Delay": 200_000_000, "MaxAttempts": 0, "Window": 0},
    }
    if constraints:
        template["Placement"] = {"Constraints": constraints}
    if networks:
        template["Networks"] = [{"Target": n.id, "Aliases": [name]} for n in networks]
    return template


def require_swarm(context: Context, what: str = "driver='overlay'", *, explicit: bool = True) -> None:
    """Engine 0 must be a swarm manager; else the context reports the capability missing
    (DriverUnavailable, or the plugin's skip)."""
    context.need("swarm", explicit=explicit)
    facts = context.facts
    if facts.swarm is None:
        swarm = context.engine.info().get("Swarm") or {}
        facts.swarm = swarm.get("LocalNodeState") == "active" and bool(swarm.get("ControlAvailable"))
        facts.swarm_state = swarm.get("LocalNodeState") or "unknown"
    if not facts.swarm:
        why = (
            "engine 0 is a swarm worker, and overlay networks are made on a manager"
            if facts.swarm_state == "active"
            else f"engine 0 is not in a swarm (state {facts.swarm_state!r})"
        )
        context.capability_missing(
            f"{what} needs swarm mode: {why}. Pass --dockernet-swarm auto (ini dockernet_swarm = auto) "
            "to make a single-node swarm for the run, or --dockernet-lab N for a multi-engine lab",
            explicit,
        )
    context.need("overlay", explicit=explicit)  # in a swarm now: whether its overlay networks carry containers


def check_vip(context: Context, service: Service, explicit: bool) -> None:
    """Whether swarm's virtual IPs work (IPVS in the kernel), found out once per run by
    looking in one of the service's containers for the load balancer Docker programs."""
    facts = context.facts
    if facts.vip is None:
        tasks = service.tasks()
        if not tasks:
            return  # no container to look in: no verdict, and none to remember
        facts.vip = run(tasks[0], "test -e /proc/net/ip_vs").ok
    if not facts.vip:
        context.capability_missing(
            f"service {service.name!r} asks for endpoint_mode='vip', and virtual IPs need IPVS, which this "
            "engine's kernel lacks (no /proc/net/ip_vs in the service's containers; dockerd logs "
            "'Could not get ipvs family information'): use endpoint_mode='dnsrr'",
            explicit,
        )


def engine_of_node(context: Context, node_id: str) -> int:
    """The index of the run's engine that is swarm node ``node_id``."""
    nodes = context.facts.nodes
    if node_id not in nodes:
        nodes.update(node_engines(context.engines))
    if node_id not in nodes:
        raise DockernetError(
            f"a task runs on swarm node {node_id}, which is none of this run's engines: "
            "name every engine of the swarm with --dockernet-hosts"
        )
    return nodes[node_id]


def node_engines(engines: Sequence[Engine]) -> dict[str, int]:
    """Swarm node id -> engine index."""
    nodes: dict[str, int] = {}
    for i, engine in enumerate(engines):
        node = (engine.info().get("Swarm") or {}).get("NodeID")
        if node:
            nodes[node] = i
    return nodes


# The swarm --dockernet-swarm auto or the lab makes carries these labels, so that whichever
# run is the last to use it (or a later run's prune, once every user is dead) leaves it; a
# swarm without them is the user's and is never left.
MADE = "pytest-dockernet.swarm"  # "made": by the plugin
MADE_BRIDGE = "pytest-dockernet.swarm-bridge"  # "made": swarm init made docker_gwbridge too
LAB = "pytest-dockernet.swarm-lab"  # the lab's state file, on a swarm the lab made: in use while it exists
USER = "pytest-dockernet.swarm-user"  # on the lease of every run using a swarm the plugin made
# Networks that have no embedded DNS for a swarm leave to wipe.
NO_DNS = frozenset({"bridge", "host", "none"})
TASK = "com.docker.swarm.task.id"  # a service's container, which goes with its service
SHOWN = 5  # names listed of what keeps a swarm


def in_swarm(engine: Engine) -> bool:
    return (engine.info().get("Swarm") or {}).get("LocalNodeState") == "active"


def made_by_plugin(engine: Client) -> dict[str, str] | None:
    """The labels of the engine's swarm if the plugin made it (else None); ``engine`` may be
    a docker-py client, as tests hold."""
    engine = as_engine(engine)
    if not in_swarm(engine):
        return None
    try:
        labels = engine.inspect_swarm()["Spec"].get("Labels") or {}
    except APIError:
        return None  # a worker cannot see the swarm's spec: not ours to leave
    return labels if labels.get(MADE) == "made" else None


def made_labels(engine: Engine, labels: dict[str, str] | None = None) -> dict[str, str]:
    """The labels of a swarm the plugin is about to make on ``engine`` (``labels``:
    who makes it): the plugin's, and whether swarm init will make docker_gwbridge."""
    made_bridge = not has_network(engine, GWBRIDGE)
    return {**(labels or {}), MADE: "made", MADE_BRIDGE: "made" if made_bridge else "existed"}


def init_swarm(engine: Engine, labels: dict[str, str]) -> None:
    """Make the engine (in no swarm) a single-node swarm manager on loopback, labelled as the
    plugin's (with ``labels``: who made it)."""
    # Swarm init changes the engine's networking under everyone using it: hold its gate,
    # as a network removal does (see pytest_dockernet.engine.gate). Entering a swarm leaves the
    # names of bridge networks in use resolving (checked on 20.10); leaving one does not.
    with gate_for(engine).removing():
        engine.init_swarm(advertise_addr="127.0.0.1", listen_addr="127.0.0.1:2377", labels=made_labels(engine, labels))


def at_risk(engine: Client) -> list[str]:
    """What leaving the engine's swarm now would break, each said in a few words (empty:
    nothing); ``engine`` may be a docker-py client, as tests hold.

    Docker 20.10 (moby/moby#45144, open upstream) wipes the embedded DNS of every container
    running on a user-defined network when the engine leaves a swarm: its names answer
    nothing until it is reconnected or restarted. Stopped containers and networks with no
    running container resolve as before once started or joined (checked), so only running
    containers count, whoever owns them; and services, which the leave removes. A service's
    own containers are not counted: they go with it.
    """
    engine = as_engine(engine)
    found = []
    try:
        services = [s["Spec"]["Name"] for s in engine.services()]
    except APIError:
        services = []  # not a manager: it runs none of its own
    if services:
        found.append(f"{counted(len(services), 'services')} ({_names(services)})")
    running = []
    for c in engine.containers():  # running (paused and restarting too)
        networks = set((c.get("NetworkSettings") or {}).get("Networks") or {}) - NO_DNS
        if networks and TASK not in (c.get("Labels") or {}):
            running.append(c["Names"][0].lstrip("/"))
    if running:
        found.append(
            f"the names of {counted(len(running), 'running containers')} on user-defined networks ({_names(running)})"
        )
    return found


def _names(names: list[str]) -> str:
    names = sorted(names)
    return ", ".join(names[:SHOWN]) + (f" and {len(names) - SHOWN} more" if len(names) > SHOWN else "")


@dataclass(frozen=True)
class Leaving:
    """What became of the plugin's swarm at a leave: ``left``, or kept by ``kept_by`` (what
    leaving would have broken); neither when the engine is in no swarm of the plugin's."""

    left: bool = False
    kept_by: tuple[str, ...] = ()

    def describe(self) -> str:
        """The summary's line when the swarm stayed."""
        return (
            "swarm: engine 0 stays in the swarm the plugin made, since leaving it now would break "
            f"{'; '.join(self.kept_by)}: a swarm leave takes its services and networks with it and wipes the DNS of "
            "every container running on a user-defined network (Docker, moby/moby#45144). The next run, or "
            "`pytest --dockernet-prune`, leaves it once nothing is at risk"
        )


def what_keeps(engine: Engine, labels: dict[str, str], users: Sequence[str] = ()) -> list[str]:
    """What keeps the plugin's swarm (``labels``: its labels; ``users``: other live runs using it)."""
    found = [f"{counted(len(users), 'live runs')} using it ({_names(list(users))})"] if users else []
    if LAB in labels and os.path.exists(labels[LAB]):
        found.append("the lab that is up (`python -m pytest_dockernet.lab down` takes it down)")
    # Other engines in it (a lab's, also one whose state file is on another machine).
    me = (engine.info().get("Swarm") or {}).get("NodeID")
    nodes = [n for n in engine.nodes() if n["ID"] != me and n["Status"]["State"] != "down"]
    if nodes:
        names = [n["Description"].get("Hostname") or n["ID"][:12] for n in nodes]
        found.append(f"{counted(len(nodes), 'other engines')} in it ({_names(names)})")
    return found + at_risk(engine)


def leave_plugin_swarm(engine: Engine, users: Sequence[str] = ()) -> Leaving:
    """Leave the engine's swarm if the plugin made it and leaving breaks nothing (``users``:
    other live runs using it), and remove the bridge swarm init made. The check and the leave
    hold the engine's gate, so no run of the plugin on this machine starts a container between
    the two."""
    labels = made_by_plugin(engine)
    if labels is None:
        return Leaving()
    with gate_for(engine).removing():
        keep = what_keeps(engine, labels, users)
        if keep:
            return Leaving(kept_by=tuple(keep))
        engine.leave_swarm(force=True)
        if labels.get(MADE_BRIDGE) == "made":
            remove_network_if_unused(engine, GWBRIDGE)
    return Leaving(left=True)
