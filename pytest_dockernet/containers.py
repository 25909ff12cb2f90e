"""Starting a topology's containers: checked arguments, their networks and aliases, the
hermetic DNS settings, a batch started concurrently, probe sidecars, and undoing a start
that failed half-way; and starting one again after a stop (:class:`Lifecycle`).
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import docker
import docker.errors

from .checks import (
    check_names,
    check_timeout,
)
from .container_specs import Attachment, ContainerSpec, Launch, SpecChecker
from .engine import remove_container, remove_containers_named, undone_on_failure
from .engine.gate import gate_for
from .errors import DockernetError
from .handles import Container, Network, check_grace, engine_call
from .image import ensure_image, image_on, provide_image
from .labels import PREFIX
from .probes import RESIDENT
from .readiness import LogLine, check_ready, crash_report, describe_ready, wait_ready
from .registry import Registry

if TYPE_CHECKING:
    from .networks import Networks
    from .topology import Topology
    from .warm_pool import WarmPool

DNS_MODES = ("hermetic", "host")  # see HERMETIC_DNS
# ndots:1 makes the embedded DNS answer unknown single-label names itself instead of
# forwarding them; the loopback server means a dotted name that nobody here provides is
# never sent to the host's resolvers either (it times out locally).
HERMETIC_DNS: dict[str, Any] = {"dns": ["127.0.0.1"], "dns_opt": ["ndots:1"], "dns_search": ["."]}


class Containers:
    """The containers of one topology, by logical name, and the engines they run on."""

    def __init__(self, topology: Topology, lock: threading.RLock, networks: Networks):
        self.topology = topology
        self.networks = networks
        self.registry: Registry[Container] = topology.context.containers
        self.engines_used: set[int] = {0}
        self.lifecycle = Lifecycle(topology, lock)
        self.checker = SpecChecker(topology, networks, self.registry)
        self._lock = lock

    def start(self, spec: ContainerSpec) -> Container:
        """Create and start one container; returns once it is ready (see Topology.container)."""
        launch = self.checker.check(spec)

        def make() -> Container:
            container = self._launch(launch)
            if spec.ready == "running":  # _create saw it running: no further wait
                return container
            try:
                wait_ready(container, spec.ready, spec.ready_timeout)
            except BaseException:
                self._remove(container)
                raise
            return container

        container = self.registry.add(spec.name, make)
        self.topology.hooks.pytest_dockernet_container_started(container=container)
        return container

    def start_batch(self, specs: Mapping[str, Mapping[str, Any] | None]) -> dict[str, Container]:
        """Start several at once (see Topology.containers); all or nothing."""
        if not isinstance(specs, Mapping) or not specs:
            raise TypeError(f"containers() takes a non-empty dict {{name: {{container() arguments}}}}, got {specs!r}")
        for name, arguments in specs.items():
            if arguments is not None and not isinstance(arguments, Mapping):
                raise TypeError(f"containers()[{name!r}] must be a dict of container() arguments, got {arguments!r}")
        batch = {name: ContainerSpec.of(name, args or {}, f"containers()[{name!r}]") for name, args in specs.items()}
        if any(s.networks is None and s.network_mode is None and not s.links for s in batch.values()):
            self.networks.default()  # once, before the threads that would race to make it
        started: dict[str, Container] = {}
        errors: list[BaseException] = []
        starts: list[Future[Container]] = []
        # Containers with links start after the others: they may link to them.
        waves = [[s for s in batch.values() if not s.links], [s for s in batch.values() if s.links]]
        pool = ThreadPoolExecutor(max_workers=min(8, len(batch)))
        try:
            for wave in waves:
                futures = {spec.name: pool.submit(self.start, spec) for spec in wave}
                starts += futures.values()
                for name, future in futures.items():
                    wait([future])  # an interrupt (Ctrl-C, SIGTERM) lands here, in this thread
                    try:
                        started[name] = future.result()
                    except BaseException as exc:  # noqa: BLE001 - re-raised below, after the clean-up
                        errors.append(exc)
                if errors:
                    break
        except BaseException:  # the interrupt wins: the other starts' readiness waits end now
            pool.shutdown(wait=False, cancel_futures=True)
            end_starts(self.topology, list(batch), starts)
            raise
        pool.shutdown()
        if errors:
            for container in started.values():
                self.forget(container)
            raise errors[0]
        return {name: started[name] for name in batch}

    def check(self, container: object, argument: str) -> Container:
        """``container`` must be a container of this topology; else an error naming ``argument``."""
        if not isinstance(container, Container):
            raise TypeError(f"{argument}: expected a Container from dockernet.container(), got {container!r}")
        if container.topology is not self.topology:
            raise ValueError(f"{argument}: container {container.name!r} belongs to another dockernet factory")
        return container

    def connect(self, container: Container, network: Network, aliases: list[str] | None) -> None:
        self.check(container, "container")
        self.networks.check_own(network, "network")
        aliases = check_names("aliases", aliases, "alias")
        try:
            with gate_for(container.client).building():
                container.client.api.connect_container_to_network(
                    container.id, network.ref(container.host), aliases=[container.name, *aliases]
                )
        except docker.errors.APIError as exc:
            raise DockernetError(
                f"connecting {container.name!r} to {network.name!r} failed: {exc.explanation or exc}"
            ) from None
        container.refresh()
        container.endpoints[network.docker_name].aliases = [container.name, *aliases]

    def disconnect(self, container: Container, network: Network) -> None:
        self.check(container, "container")
        self.networks.check_own(network, "network")
        try:
            container.client.api.disconnect_container_from_network(container.id, network.ref(container.host))
        except docker.errors.APIError as exc:
            raise DockernetError(
                f"disconnecting {container.name!r} from {network.name!r} failed: {exc.explanation or exc}"
            ) from None
        container.refresh()

    def sidecar_of(self, source: Container) -> str:
        """The id of ``source``'s probe sidecar (a probe-image container in its network
        namespace), started on first use."""
        with self._lock:
            if source.sidecar_id is None:
                source.sidecar_id = self._start_sidecar(source)
            return source.sidecar_id

    # -- making ------------------------------------------------------------------------

    def _launch(self, launch: Launch) -> Container:
        topology, spec, engine = self.topology, launch.spec, launch.spec.host
        if spec.ports or launch.network_mode == "host":
            topology.host_bound = True
        if spec.image is None:
            launch.image = topology.probe_image
            topology.provide_probe_image(engine)
        elif engine and image_on(topology.client, spec.image):
            # An image engine 0 has (built by build(), or pulled there) goes to the other
            # engine as the probe image does: pulled there, or copied without a registry.
            with topology.timings.measure("image"):
                provide_image(topology.client, topology.clients[engine], spec.image)
        else:
            ensure_image(topology.clients[engine], spec.image)
        self.engines_used.add(engine)
        if launch.network_mode is None and not launch.attachments:
            default = self.networks.default()
            if default.driver == "host":  # @pytest.mark.dockernet(driver="host")
                launch.network_mode = "host"
                topology.host_bound = True
            else:
                launch.attachments = [Attachment(default, [], None)]
        pool = topology.pool
        if pool is None or not pool.fits(topology, spec, launch):
            return self._create(launch)
        taken = pool.take(topology, spec.name, launch.attachments)
        if taken is None:
            return self._create(launch, pool)
        taken.lifecycle = self.lifecycle
        topology.timings.count("containers")
        return taken

    def return_pooled(self) -> None:
        """Give the warm pool back the containers it handed this topology, or remove them:
        their labels are the pool's, so the topology's removal by label would miss them."""
        for container in [c for c in self.registry if c.pooled]:  # one by one: at once is no quicker
            self._return(container)

    def _return(self, container: Container) -> None:
        container.pooled = False  # once: a second close() finds nothing to return
        self.topology.shells.discard(container.id)
        cast("WarmPool", self.topology.pool).give_back(container)  # only a pool hands out pooled ones

    def _create(self, launch: Launch, pool: WarmPool | None = None) -> Container:
        """Start the container; with ``pool``, as one of the pool's (its hostname and labels)."""
        topology, spec, engine = self.topology, launch.spec, launch.spec.host
        client = topology.clients[engine]
        api = client.api
        name, docker_name = spec.name, topology.docker_name_for(spec.name)
        hostname, labels = pool.new(name) if pool else (spec.hostname, topology.labels_for("container", name))
        network_mode, attachments = launch.network_mode, launch.attachments
        dns = HERMETIC_DNS if topology.dns == "hermetic" and network_mode in (None, "bridge") else {}
        engine_mode, own_namespace = network_mode, network_mode != "host"
        if network_mode is not None and network_mode.startswith("container:"):
            owner = cast(Container, self.registry.get(network_mode.partition(":")[2]))  # checked to exist
            engine_mode, own_namespace = f"container:{owner.id}", False
        host_config = api.create_host_config(
            network_mode=engine_mode or attachments[0].network.docker_name,
            port_bindings=dict(spec.ports) if spec.ports else None,
            links=launch.link_pairs or None,
            cap_add=spec.cap_add,
            privileged=spec.privileged,
            binds=launch.volumes.binds or None,
            **dns,
            **launch.docker.host_config,
        )
        networking_config = None
        if attachments:
            first = attachments[0]
            networking_config = api.create_networking_config(
                {  # type: ignore[arg-type]  # types-docker wants one EndpointConfig; the SDK takes {network: config}
                    first.network.docker_name: api.create_endpoint_config(
                        aliases=[name, *first.aliases],
                        ipv4_address=first.address,
                        links=launch.endpoint_links.get(first.network.docker_name),
                    )
                }
            )
        filters = pool.filters() if pool else topology.filters()
        with undone_on_failure(
            f"starting container {name!r}", lambda: remove_containers_named(client, docker_name, filters)
        ):
            self._make_named_volumes(client, launch.volumes.named)
            with gate_for(client).building():
                created = api.create_container(
                    launch.image,
                    command=launch.command,
                    name=docker_name,
                    hostname=hostname or (name if own_namespace else None),
                    environment=cast("dict[str, str] | list[str] | None", spec.environment),  # as check() left it
                    ports=launch.exposed,
                    labels={**launch.labels, **labels},
                    host_config=host_config,
                    networking_config=networking_config,
                    detach=True,
                    stdin_open=launch.resident,
                    entrypoint=spec.entrypoint,
                    user=spec.user,
                    working_dir=spec.working_dir,
                    volumes=launch.volumes.paths or None,
                    healthcheck=launch.healthcheck,
                    **launch.docker.create,
                )
                container_id = created["Id"]
                for attachment in attachments[1:]:
                    api.connect_container_to_network(
                        container_id,
                        attachment.network.ref(engine),
                        aliases=[name, *attachment.aliases],
                        ipv4_address=attachment.address,
                        links=launch.endpoint_links.get(attachment.network.docker_name),
                    )
                api.start(container_id)
            container = Container(topology.context, name, docker_name, container_id, launch.image, network_mode, engine)
            container.resident = launch.resident
            container.lifecycle = self.lifecycle
            state = container.refresh()
            if not state.get("Running") and not (spec.ready == "completed" and state.get("ExitCode") == 0):
                raise DockernetError(crash_report(container, state, "exited at once"))
            for attachment in attachments:
                container.endpoints[attachment.network.docker_name].aliases = [name, *attachment.aliases]
            if pool is not None:
                pool.started(container, cast(str, hostname))
            topology.timings.count("containers")
            return container

    def _start_sidecar(self, source: Container) -> str:
        topology = self.topology
        topology.provide_probe_image(source.host)
        api = source.client.api
        name = f"{source.docker_name}-probe"
        with undone_on_failure(
            f"starting the probe sidecar of {source.name!r}",
            lambda: remove_containers_named(source.client, name, topology.filters()),
        ):
            with gate_for(source.client).building():
                created = api.create_container(
                    topology.probe_image,
                    command=RESIDENT,
                    stdin_open=True,
                    name=name,
                    labels=topology.labels_for("sidecar", source.name, {PREFIX + ".sidecar-of": source.id}),
                    host_config=api.create_host_config(network_mode=f"container:{source.id}"),
                    detach=True,
                )
                api.start(created["Id"])
            topology.timings.count("sidecars")
            sidecar_id: str = created["Id"]
            return sidecar_id

    def _make_named_volumes(self, client: docker.DockerClient, names: list[str]) -> None:
        """Named volumes that do not exist yet are made with the topology's labels (and so
        removed with it); existing ones are the user's and stay."""
        for volume in names:
            try:
                client.api.inspect_volume(volume)
            except docker.errors.NotFound:
                client.api.create_volume(volume, labels=self.topology.labels_for("volume", volume))

    def _remove(self, container: Container) -> None:
        """Remove a container (and its sidecar) whose start failed after it was made."""
        ids = [container.sidecar_id]
        if container.pooled:  # the pool removes it (it carries the pool's labels)
            container.reusable = False
            self._return(container)
        else:
            ids.append(container.id)
        for container_id in filter(None, ids):
            remove_container(container.client, container_id)

    def discard(self, container: object) -> None:
        """Remove one container (and its sidecar) now: ``Topology.discard()``."""
        self.forget(self.check(container, "discard()"))

    def forget(self, container: Container) -> None:
        """Remove a container (and its sidecar) the topology made, as if it never had."""
        self.topology.shells.discard(container.id)
        if container.sidecar_id is not None:
            self.topology.shells.discard(container.sidecar_id)
        self._remove(container)
        self.registry.discard(container.name)


class Lifecycle:
    """What ``Container.start()`` and ``restart()`` do, for the containers of one topology.

    A start gives a container a new network namespace: its resident probe shell is a new
    process (attached afresh on the next probe), its probe sidecar is left behind in the old
    namespace (so it is removed; the next probe makes another), its addresses are the ones
    the engine gives now, and the topology's faults are applied again.
    """

    def __init__(self, topology: Topology, lock: threading.RLock):
        self.topology, self._lock = topology, lock  # the lock Containers.sidecar_of makes sidecars under
        # What runs once a container runs again in a new network namespace (the topology's
        # faults put back).
        self.after_restart: Callable[[Container], None] = lambda container: None

    def start(self, container: Container, ready: object, ready_timeout: object, restart: object = None) -> None:
        """Start ``container`` (``restart`` None) or restart it (``restart``: stop's
        timeout), then wait until ``ready``."""
        grace = None if restart is None else check_grace(restart)
        ready, ready_timeout = check_ready(ready), check_timeout(ready_timeout, "ready_timeout")
        doing = "starting" if grace is None else "restarting"
        if grace is None:
            state = engine_call(container, doing, lambda api: api.inspect_container(container.id))["State"]
            if state.get("Running") and not state.get("Paused"):  # running: only waited for
                wait_ready(container, ready, ready_timeout)
                return
        else:  # stop, then start: the output up to the start is the old run's
            engine_call(container, doing, lambda api: api.stop(container.id, timeout=grace))
        if isinstance(ready, LogLine):
            ready = LogLineAfter(ready.pattern, container.last_output_stamp())
        engine_call(container, doing, lambda api: api.start(container.id))
        self._forget_probes(container)
        state = container.refresh()
        if not state.get("Running"):
            why = f"stopped before it was ready ({describe_ready(ready)})"  # as wait_ready says it
            raise DockernetError(crash_report(container, state, why))
        self.after_restart(container)
        wait_ready(container, ready, ready_timeout)

    def _forget_probes(self, container: Container) -> None:
        """Probes of ``container`` go to its new network namespace from now on."""
        shells = self.topology.shells
        shells.discard(container.id)
        with self._lock:  # not while sidecar_of makes one under the same name
            sidecar, container.sidecar_id = container.sidecar_id, None
            if sidecar is not None:
                shells.discard(sidecar)
                remove_container(container.client, sidecar)


@dataclass(frozen=True)
class LogLineAfter(LogLine):
    """A :class:`LogLine` matched in the output after ``after`` (a timestamp of
    :meth:`Container.last_output_stamp`): the engine keeps every run's output, and a restarted
    container is waited for on its new run's."""

    after: str = ""

    def __call__(self, container: Container) -> bool:
        regex = re.compile(self.pattern)
        output = container.client.api.logs(container.id, timestamps=True).decode(errors="replace")
        # The engine's timestamps have a fixed width (nanoseconds, UTC): they compare as text.
        stamped = (line.partition(" ") for line in output.splitlines())
        return any(stamp > self.after and regex.search(line) for stamp, _, line in stamped)


END_WAIT = 30.0  # seconds an interrupted call goes on removing what its starts still make


def end_starts(topology: Topology, names: list[str], starts: list[Future[Container]]) -> None:
    """End the starts of containers ``names`` still under way at once (an interrupt came):
    each may wait up to its ``ready_timeout``. Their containers are removed from under them,
    which ends a readiness wait at its next look, and again until every start has ended (one
    may have been making its container while the last sweep ran). Found by name: a pooled one
    has the pool's labels. What was made goes with the topology's removal."""
    client = topology.client
    deadline = time.monotonic() + END_WAIT
    while True:
        for name in names:
            remove_containers_named(client, topology.docker_name_for(name), {})
        under_way = [f for f in starts if not f.done()]
        if not under_way or time.monotonic() > deadline:
            return
        wait(under_way, timeout=0.5)
