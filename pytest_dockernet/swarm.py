"""Swarm services of a topology, and what a run learns about the swarm once."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import docker
import docker.errors
import docker.types

from .assertions import _check_timeout
from .topology import RESIDENT, Container, DockernetError, Network, _check_name, _Default, remove_services

if TYPE_CHECKING:
    from .topology import Topology

ENDPOINT_MODES = ("vip", "dnsrr")


class Service:
    """A swarm service of a topology: ``name`` is logical (it resolves on the service's
    networks), ``docker_name`` the swarm's."""

    def __init__(self, topology: Topology, name: str, docker_name: str, id: str, endpoint_mode: str, image: str):
        self.topology = topology
        self.name = name
        self.docker_name = docker_name
        self.id = id
        self.endpoint_mode = endpoint_mode
        self.image = image
        self._tasks: dict[str, Container] = {}  # by task id: handles keep their sidecars

    @property
    def replicas(self) -> int:
        spec = self.topology.client.api.inspect_service(self.id)["Spec"]
        return spec["Mode"]["Replicated"]["Replicas"]

    def tasks(self) -> list[Container]:
        """The running tasks' containers, wherever they run, as Container handles."""
        running = _running_tasks(self.topology, self.id)
        handles = []
        for task in sorted(running, key=lambda t: t.get("Slot") or 0):
            handle = self._tasks.get(task["ID"])
            if handle is None:
                handle = self._tasks[task["ID"]] = self._handle(task)
            handles.append(handle)
        return handles

    def _handle(self, task: dict) -> Container:
        topology = self.topology
        host = topology._engine_of_node(task["NodeID"])
        container_id = task["Status"]["ContainerStatus"]["ContainerID"]
        info = topology.clients[host].api.inspect_container(container_id)
        handle = Container(
            topology,
            f"{self.name}.{task.get('Slot') or task['ID'][:12]}",
            info["Name"].lstrip("/"),
            container_id,
            self.image,
            None,
            host,
        )
        handle.resident = bool(info["Config"].get("OpenStdin")) and self.image == topology.probe_image
        topology._refresh(handle)
        return handle

    def scale(self, replicas: int, *, timeout: float = 60.0) -> None:
        """Change the replica count; returns once exactly that many tasks run."""
        _check_replicas(replicas)
        timeout = _check_timeout(timeout)
        api = self.topology.client.api
        version = api.inspect_service(self.id)["Version"]["Index"]
        try:
            api.update_service(
                self.id, version, mode=docker.types.ServiceMode("replicated", replicas), fetch_current_spec=True
            )
        except docker.errors.APIError as exc:
            raise DockernetError(f"scaling service {self.name!r} failed: {exc.explanation or exc}") from None
        _wait_for_tasks(self.topology, self, replicas, timeout)

    def __repr__(self) -> str:
        return f"<Service {self.name} ({self.docker_name}, {self.endpoint_mode})>"


def _check_replicas(replicas: object) -> int:
    if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
        raise ValueError(f"replicas={replicas!r} must be a whole number, 0 or more")
    return replicas


def _running_tasks(topology: Topology, service_id: str) -> list[dict]:
    tasks = topology.client.api.tasks(filters={"service": service_id, "desired-state": "running"})
    return [t for t in tasks if t["Status"]["State"] == "running" and t["Status"].get("ContainerStatus")]


def _wait_for_tasks(topology: Topology, service: Service, replicas: int, timeout: float) -> None:
    api = topology.client.api
    deadline = time.monotonic() + timeout
    while True:
        tasks = api.tasks(filters={"service": service.id})
        wanted = [t for t in tasks if t["DesiredState"] == "running"]
        running = [t for t in wanted if t["Status"]["State"] == "running"]
        others = [t for t in tasks if t["DesiredState"] != "running" and t["Status"]["State"] == "running"]
        if len(running) == len(wanted) == replicas and not others:
            return
        if time.monotonic() > deadline:
            errors = sorted({t["Status"].get("Err") or t["Status"].get("Message", "") for t in tasks} - {""})
            raise DockernetError(
                f"service {service.name!r}: {len(running)} of {replicas} replicas running after {timeout:g} s"
                + (f"; task errors: {'; '.join(errors)}" if errors else "")
            )
        time.sleep(0.2)


def create_service(
    topology: Topology,
    name: str,
    *,
    image: str | None,
    command: str | list[str] | None,
    networks: Iterable[Network] | None,
    replicas: int,
    endpoint_mode: str,
    constraints: Iterable[str] | None,
    timeout: float,
) -> Service:
    _check_name("service name", name)
    _check_replicas(replicas)
    timeout = _check_timeout(timeout)
    explicit_vip = endpoint_mode == "vip" and not isinstance(endpoint_mode, _Default)
    if endpoint_mode not in ENDPOINT_MODES:
        raise ValueError(f"endpoint_mode={endpoint_mode!r} is not one of {', '.join(ENDPOINT_MODES)}")
    endpoint_mode = str(endpoint_mode)
    if constraints is not None and (isinstance(constraints, str) or not all(isinstance(c, str) for c in constraints)):
        raise TypeError(
            f"constraints must be a list of placement constraints such as ['node.role==manager'], got {constraints!r}"
        )
    if isinstance(networks, Network):
        networks = [networks]
    networks = list(networks or [])
    for network in networks:
        topology._check_own(network, "networks")
        if network.driver != "overlay":
            raise ValueError(
                f"networks: {network.name!r} is a {network.driver} network; services join overlay networks only "
                "(dockernet.network(name, driver='overlay'))"
            )
    if name in topology._services or name in topology._containers:
        raise ValueError(f"service name {name!r} is already used in this topology: pick another name")
    topology.require_swarm("a service")
    resident = image is None and command is None
    if image is None:
        image = topology.probe_image
        for host in range(len(topology.clients)):
            topology._probe_image_on(host)
        if resident:
            command = RESIDENT
    if isinstance(command, str):
        command = ["sh", "-c", command]
    docker_name = topology._docker_name(name)
    labels = topology._labels("service", name)
    dns = None
    if topology.dns == "hermetic":
        dns = docker.types.DNSConfig(nameservers=["127.0.0.1"], search=["."], options=["ndots:1"])
    spec = docker.types.ContainerSpec(
        image, args=command, labels=labels, dns_config=dns, open_stdin=resident or None, hostname=None
    )
    template = docker.types.TaskTemplate(
        spec,
        networks=[docker.types.NetworkAttachmentConfig(n.id, aliases=[name]) for n in networks],
        placement=docker.types.Placement(constraints=list(constraints)) if constraints else None,
        restart_policy=docker.types.RestartPolicy(condition="any", delay=200_000_000),
    )
    with topology._lock:
        topology._services[name] = None
    api = topology.client.api
    try:
        try:
            created = api.create_service(
                template,
                name=docker_name,
                labels=labels,
                mode=docker.types.ServiceMode("replicated", replicas),
                endpoint_spec=docker.types.EndpointSpec(mode=endpoint_mode),
            )
        except docker.errors.APIError as exc:
            raise DockernetError(f"creating service {name!r} failed: {exc.explanation or exc}") from None
        service = Service(topology, name, docker_name, created["ID"], endpoint_mode, image)
        topology._services[name] = service
        _wait_for_tasks(topology, service, replicas, timeout)
    except BaseException:
        remove_services(topology.client, {**topology._filters(), "name": docker_name})
        with topology._lock:
            topology._services.pop(name, None)
        raise
    topology.timings.count("services")
    if endpoint_mode == "vip" and replicas and networks:
        check_vip(topology, service, explicit_vip)
    return service


def check_vip(topology: Topology, service: Service, explicit: bool) -> None:
    """Whether swarm's virtual IPs work (IPVS in the kernel), found out once per run by
    looking in one of the service's containers for the load balancer Docker programs."""
    from .probes import run

    facts = topology.run_facts
    if "vip" not in facts:
        tasks = service.tasks()
        facts["vip"] = bool(tasks) and run(tasks[0], "test -e /proc/net/ip_vs").ok
    if not facts["vip"]:
        topology._unavailable(
            f"service {service.name!r} asks for endpoint_mode='vip', and virtual IPs need IPVS, which this "
            "engine's kernel lacks (no /proc/net/ip_vs in the service's containers; dockerd logs "
            "'Could not get ipvs family information'): use endpoint_mode='dnsrr'",
            explicit,
        )


def node_engines(clients: list[docker.DockerClient]) -> dict[str, int]:
    """Swarm node id -> engine index."""
    nodes: dict[str, Any] = {}
    for i, client in enumerate(clients):
        node = (client.info().get("Swarm") or {}).get("NodeID")
        if node:
            nodes[node] = i
    return nodes
