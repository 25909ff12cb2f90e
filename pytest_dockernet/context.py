"""What the parts of one topology and its handles share: the run :class:`Context`.

The facade (:class:`~pytest_dockernet.topology.Topology`) makes one per topology and hands
it to its parts (networks, containers, services, faults, builds) and, through them, to every
handle. Parts ask it, never the facade, for the engines, labels, timings, probe shells,
the probe image, the run's facts and settings, and the warm pool. What one part offers
the others (a container's probe sidecar, a network's handle by its engine name, a wait
for readiness) is registered here by that part when the facade wires them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, Union

from .capabilities import Capabilities, Verdict
from .errors import DockernetError, DriverUnavailable
from .facts import RunFacts
from .image import provide_image, resolve_probe_image
from .labels import NAME, ROLE, TOPOLOGY, RunIdentity
from .registry import Registry
from .shells import Shells
from .timeline import Timeline
from .timings import Timings

if TYPE_CHECKING:
    from .engine.port import Engine
    from .handles import Container, Network

ExtraLabels = Union[Mapping[str, str], Iterable[tuple[str, str]]]  # what dict() takes


class Hooks(Protocol):
    """What a topology reports to; pytest's ``config.hook`` is one (see :mod:`.hooks`)."""

    def pytest_dockernet_network_created(self, *, network: Any) -> None: ...
    def pytest_dockernet_container_started(self, *, container: Any) -> None: ...
    def pytest_dockernet_topology_teardown(self, *, factory: Any) -> None: ...


class NoHooks:
    def __getattr__(self, name: str) -> Callable[..., None]:
        return lambda **kwargs: None


# The metadata of a spec's field (ContainerSpec, NetworkSpec) the warm pool may ignore: a
# field without it, one added later too, keeps what sets it out of the pool (warm_pool.asks_nothing).
POOL_NEUTRAL: Mapping[str, bool] = {"pool_neutral": True}


def _not_wired(what: str) -> Callable[..., Any]:
    def missing(*args: object, **kwargs: object) -> Any:
        raise DockernetError(f"internal: {what} was asked for before its part was wired")

    return missing


@dataclass(eq=False)
class Settings:
    """A topology's settings, as its maker gave them."""

    dns: str = "hermetic"  # hermetic | host (see container_options.DNS_MODES)
    default_driver: str = "bridge"
    label: str = ""  # e.g. the test's node id: shown in messages
    image: str | None = None  # the probe image; None: resolved on first use
    host_address: str = ""  # where published ports are reached (--dockernet-host-address); "": found per engine
    fault_image: str | None = None  # --dockernet-fault-image; None: the faults' own order (faults/image.py)


@dataclass(eq=False)
class Context:
    """One topology's run context: shared by its parts and handles."""

    engines: list[Engine]  # 0: the environment's; i: the i-th of --dockernet-hosts
    id: str  # the topology's id: in every label and engine name it makes
    identity: RunIdentity
    settings: Settings
    timings: Timings
    facts: RunFacts
    hooks: Hooks = field(default_factory=NoHooks)
    warm_pool: Any = None  # a WarmPool, or None: running containers for calls that ask for nothing
    # Called instead of raising DriverUnavailable when a capability is missing:
    # (reason, whether the test asked for it explicitly). The plugin skips or fails.
    on_unavailable: Callable[[str, bool], None] | None = None
    factory: Any = None  # the facade that made it: what ``handle.topology`` gives hooks and users
    allocator: Any = None  # the SubnetAllocator (the networks part makes one on first use without it)
    shells: Shells = field(default_factory=Shells)  # the resident probe shells of its containers
    timeline: Timeline = field(default_factory=Timeline)  # what was done, for a failing test's artifacts
    lock: threading.RLock = field(default_factory=threading.RLock)
    closed: bool = False
    # Holds something a later topology may ask for by value (a published host port, a
    # chosen subnet, the host's network namespace): removed before close() returns.
    host_bound: bool = False
    # What the parts offer each other, registered by each part when the facade wires them.
    sidecar_of: Callable[[Container], str] = field(default_factory=lambda: _not_wired("a probe sidecar"))
    find_network: Callable[[str, str | None], Network | None] = field(
        default_factory=lambda: _not_wired("a network by its engine name")
    )
    wait_ready: Callable[[Container, Any, float], None] = field(default_factory=lambda: _not_wired("a readiness wait"))
    probe: Callable[[Container, str], Any] = field(default_factory=lambda: _not_wired("a probe"))
    faults_in_force: Callable[[], list[Any]] = field(default_factory=lambda: list)  # partitions, then degradations
    faults_lifted: Callable[[], list[Any]] = field(default_factory=lambda: list)  # during the current test
    faults: Any = None  # the faults part (faults.Faults): what the marker's faults are applied through
    nemeses: Any = None  # the nemesis part (nemesis.Nemeses): this test's nemeses and their seeds
    # A failing test's report shows this topology (the plugin's fixtures make it so):
    # failure messages then leave it out, so that it appears once.
    reported: bool = False
    failed_probe: Any = None  # the last probe a helper failed on (a snapshot.FailingProbe), for artifacts
    # A parked topology's containers handed out with its network (a parked.Provisional), until
    # the next container() call claims them or any other call evicts them: see check_open.
    provisional: Any = None

    def __post_init__(self) -> None:
        self.networks: Registry[Network] = Registry("network", self.lock)
        self.containers: Registry[Container] = Registry("container", self.lock)
        self.services: Registry[Any] = Registry("service", self.lock, shared_with=self.containers)

    @property
    def engine(self) -> Engine:
        """Engine 0: the environment's (a swarm's manager)."""
        return self.engines[0]

    @property
    def label(self) -> str:
        return self.settings.label or self.id

    @property
    def probe_image(self) -> str:
        if self.settings.image is None:
            self.settings.image = resolve_probe_image(self.engine).name
        return self.settings.image

    def provide_probe_image(self, engine: int) -> None:
        """The probe image onto engine ``engine``, once per run (pulled, or copied from engine 0)."""
        if engine == 0 or engine in self.facts.probe_image_on:
            return
        with self.timings.measure("image"):
            provide_image(self.engine, self.engines[engine], self.probe_image)
        self.facts.probe_image_on.add(engine)

    def labels_for(self, role: str, name: str, extra: ExtraLabels = ()) -> dict[str, str]:
        """The labels of a resource of this topology: its owner, the topology, a role and a name."""
        return {**dict(extra), **self.identity.labels(), TOPOLOGY: self.id, ROLE: role, NAME: name}

    def docker_name_for(self, name: str) -> str:
        """The engine's name of the resource with logical name ``name`` (unique per run)."""
        return f"dn-{self.id}-{name}"

    def filters(self) -> dict[str, Any]:
        """The engine's filter for every resource of this topology."""
        return {"label": f"{TOPOLOGY}={self.id}"}

    def removal_command(self) -> str:
        """The shell command that removes what this topology made (for a kept or failed teardown)."""
        f = f"label={TOPOLOGY}={self.id}"
        return f"docker rm -f $(docker ps -aq --filter {f}); docker network rm $(docker network ls -q --filter {f})"

    @property
    def capabilities(self) -> Capabilities:
        """The run's capabilities of its engines (one per run: kept in its facts)."""
        with self.lock:
            if self.facts.capabilities is None:
                self.facts.capabilities = Capabilities()
            return self.facts.capabilities  # type: ignore[no-any-return]  # facts is a leaf: typed Any there

    def capability(self, name: str, engine: int = 0) -> Verdict:
        """Capability ``name`` of engine ``engine``, probed on first use (see .capabilities)."""

        def image() -> str:
            self.provide_probe_image(engine)
            return self.probe_image

        of = self.capabilities.of(self.engines[engine])
        return of.verdict(name, image, self.identity.labels)

    def has(self, name: str, engine: int = 0) -> bool:
        """Whether engine ``engine`` has capability ``name`` (for a feature that does without it)."""
        return self.capability(name, engine).present

    def need(self, name: str, engine: int = 0, *, explicit: bool = True) -> None:
        """A feature needs capability ``name`` of engine ``engine``: nothing when present;
        else the test is skipped naming the engine and the capability (DriverUnavailable
        outside pytest)."""
        verdict = self.capability(name, engine)
        if not verdict.present:
            self.capability_missing(verdict.skip_reason(), explicit)

    def capability_missing(self, reason: str, explicit: bool = True) -> None:
        """Something the test needs is missing: the plugin skips or fails it; else DriverUnavailable."""
        if self.on_unavailable is not None:
            self.on_unavailable(reason, explicit)
        raise DriverUnavailable(reason)

    def check_open(self, *, claiming: bool = False) -> None:
        """Every call of the facade starts here: on a closed topology it fails; else the
        provisional containers of a parked topology (handed out with its network) are evicted
        before the call acts, unless it is ``claiming`` them (``container()``, ``containers()``)."""
        if self.closed:
            raise DockernetError(f"topology {self.label} is closed (its scope has ended)")
        if self.provisional is not None and not claiming:
            self.provisional.end()
