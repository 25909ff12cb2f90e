"""The handles a test holds: a Network, a Container, and a container's Endpoint on a network.

They carry what the engine said when they were made or last refreshed, and ask their
topology (``.topology``) for anything else; they make and remove nothing themselves.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import docker.errors

from .engine import exec_in

if TYPE_CHECKING:
    import docker

    from .topology import Topology


def state_text(state: dict[str, Any]) -> str:
    """A container's ``State`` (from inspect) as one word, with the exit code if it exited."""
    if state.get("Restarting"):
        return "restarting"
    if state.get("Paused"):
        return "paused"
    if state.get("Running"):
        health = (state.get("Health") or {}).get("Status")
        if health == "unhealthy":
            return "unhealthy"
        return {"healthy": "running (healthy)", "starting": "running (health: starting)"}.get(health, "running")
    status = state.get("Status") or "exited"
    return f"exited ({state.get('ExitCode')})" if status in ("exited", "dead") else status


# Handles compare and hash by identity (eq=False): tests use them as dict keys.
@dataclass(eq=False, repr=False)
class Network:
    """A network of a topology. ``name`` is the test's logical name, ``docker_name`` the engine's."""

    topology: Topology
    name: str
    docker_name: str
    id: str
    driver: str
    subnet: str | None = None
    gateway: str | None = None
    internal: bool = False
    owned: bool = True  # created by the topology, so removed by it
    pooled: bool = field(default=False, init=False)  # its subnet came from the allocator, and goes back

    def ref(self, engine: int) -> str:
        """How engine ``engine`` names the network (another engine of the swarm knows an
        overlay by name until one of its containers joins it)."""
        return self.id if engine == 0 else self.docker_name

    @property
    def containers(self) -> list[Container]:
        """The topology's containers attached to this network now."""
        return [c for c in self.topology.containers_list if self.docker_name in c.endpoints]

    def __repr__(self) -> str:
        return f"<Network {self.name} ({self.docker_name}, {self.driver}, {self.subnet or 'no subnet'})>"


@dataclass(eq=False)
class Endpoint:
    """A container's attachment to one network."""

    network: Network | None
    ip: str | None
    aliases: list[str]


@dataclass(eq=False, repr=False)
class Container:
    """A running container of a topology."""

    topology: Topology
    name: str
    docker_name: str
    id: str
    image: str
    network_mode: str | None  # "host", "bridge", "none" or None (user-defined networks)
    # The engine it runs on: 0 is the environment's, i the i-th of --dockernet-hosts (as in
    # container(host=i)).
    host: int = 0
    endpoints: dict[str, Endpoint] = field(default_factory=dict, init=False)  # by Docker network name
    sidecar_id: str | None = field(default=None, init=False)  # probe sidecar sharing its network namespace
    resident: bool = field(default=False, init=False)  # runs the resident shell, which probes are written to

    def __post_init__(self) -> None:
        self.client: docker.DockerClient = self.topology.clients[self.host]

    @property
    def networks(self) -> list[Network]:
        return [e.network for e in self.endpoints.values() if e.network is not None]

    @property
    def can_probe(self) -> bool:
        """Whether probes run in the container itself (it is the probe image) or need a sidecar."""
        return self.image == self.topology.probe_image

    def _endpoint(self, network: Network | str | None) -> Endpoint:
        if network is None:
            if len(self.endpoints) != 1:
                raise ValueError(
                    f"container {self.name!r} is on {len(self.endpoints)} networks "
                    f"({', '.join(self._network_names()) or 'none'}): pass network= to ip()"
                )
            return next(iter(self.endpoints.values()))
        for docker_name, endpoint in self.endpoints.items():
            if network in (docker_name, endpoint.network) or (
                isinstance(network, str) and endpoint.network is not None and endpoint.network.name == network
            ):
                return endpoint
        label = network.name if isinstance(network, Network) else network
        raise ValueError(
            f"container {self.name!r} is not on network {label!r}; "
            f"it is on: {', '.join(self._network_names()) or 'none'}"
        )

    def _network_names(self) -> list[str]:
        return [e.network.name if e.network else d for d, e in self.endpoints.items()]

    def ip(self, network: Network | str | None = None) -> str | None:
        """The container's IPv4 address on ``network`` (a handle or logical name); on its only
        network when omitted. None for a container in the host's network namespace."""
        if self.network_mode == "host":
            return None
        return self._endpoint(network).ip

    def exec(self, cmd: str | list[str]) -> tuple[int, str]:
        """Run ``cmd`` in the container (its image must have it).

        Returns ``(exit_code, output)``: ``output`` is a ``str``, stdout and stderr
        together in the order written, decoded as UTF-8 (undecodable bytes replaced).
        """
        return exec_in(self.client, self.id, cmd)

    def logs(self, tail: int | None = None) -> str:
        """The container's output so far (stdout and stderr together), as a ``str``; only
        the last ``tail`` lines when given."""
        return self.client.api.logs(self.id, tail="all" if tail is None else tail).decode(errors="replace")

    def status(self) -> str:
        """The container's state now, as ``describe()`` shows it: ``running``
        (``running (healthy)``, ``running (health: starting)`` with a healthcheck),
        ``unhealthy``, ``exited (code)``, ``restarting``, ``paused``, ``created``,
        ``removed``."""
        try:
            state = self.client.api.inspect_container(self.id)["State"]
        except docker.errors.NotFound:
            return "removed"
        return state_text(state)

    def wait_until(self, ready: Any, timeout: float = 60.0) -> None:
        """Wait until ``ready`` holds (as ``container(ready=...)`` takes it: ``"running"``,
        ``"healthy"``, :class:`~pytest_dockernet.LogLine`, :class:`~pytest_dockernet.Listening`
        or a callable ``(Container) -> bool``). A container that exits or turns unhealthy
        meanwhile fails at once: :class:`~pytest_dockernet.DockernetError` with its exit
        code and last output lines."""
        self.topology.wait_until(self, ready, timeout)

    def refresh(self) -> dict[str, Any]:
        """Re-read the container's networks from the engine; returns its state as the engine
        reports it (``Running``, ``ExitCode``, ...)."""
        info = self.client.api.inspect_container(self.id)
        old, self.endpoints = self.endpoints, {}
        if self.network_mode != "host":
            for docker_name, ep in (info["NetworkSettings"].get("Networks") or {}).items():
                if docker_name in old:
                    aliases = old[docker_name].aliases  # ours; the engine adds the short id
                else:
                    aliases = [a for a in ep.get("Aliases") or [] if not self.id.startswith(a)]
                network = self.topology.find_network(docker_name, ep.get("NetworkID"))
                self.endpoints[docker_name] = Endpoint(network, ep.get("IPAddress") or None, aliases)
        return info["State"]

    def __repr__(self) -> str:
        where = ", ".join(f"{n}={e.ip}" for n, e in zip(self._network_names(), self.endpoints.values()))
        return f"<Container {self.name} ({self.docker_name}{'; ' + where if where else ''})>"
