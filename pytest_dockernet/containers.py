"""Starting a topology's containers: checked arguments, their networks and aliases, the
hermetic DNS settings, named volumes, a batch started concurrently, and undoing a start
that failed half-way; and starting one again after a stop (:class:`Lifecycle`). Their
probe sidecars are :mod:`.sidecars`'; when one is ready, :mod:`.readiness`'.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import TYPE_CHECKING, Any, cast

from .checks import (
    check_names,
    check_timeout,
)
from .container_files import archive
from .container_specs import Attachment, ContainerSpec, Launch, SpecChecker
from .engine import remove_container, remove_containers_named, undone_on_failure
from .engine.errors import APIError, NotFound
from .engine.gate import gate_for
from .errors import DockernetError, one_line
from .handles import Container, Network, check_grace, check_owned, engine_call
from .image import ensure_image, image_on, provide_image
from .parked import end, settle
from .readiness import check_ready, crash_report, wait_ready
from .registry import Registry
from .sidecars import Sidecars, with_net_raw

if TYPE_CHECKING:
    from .context import Context
    from .engine.port import Engine
    from .networks import Networks


class Containers:
    """The containers of one topology, by logical name, and the engines they run on."""

    def __init__(self, context: Context, networks: Networks):
        self.context = context
        self.networks = networks
        self.registry: Registry[Container] = context.containers
        self.engines_used: set[int] = {0}
        self.sidecars = Sidecars(context)
        self.lifecycle = Lifecycle(context, self.sidecars)
        self.checker = SpecChecker(context, networks, self.registry)
        context.wait_ready = self.wait_until
        # What starts a checked launch, and takes back a container this factory did not start
        # itself: create, or the warm pool in front of it (warm_pool.WarmStarts, the facade wires it).
        self.make: Callable[[Launch], Container] = lambda launch: self.create(launch, None)
        self.hand_back: Callable[[Container], None] = lambda container: None

    def start(self, spec: ContainerSpec) -> Container:
        """Create and start one container; returns once it is ready (see Topology.container)."""
        try:
            return self._start(spec)
        finally:
            end(self.context)  # a parked topology's containers this call did not take

    def _start(self, spec: ContainerSpec, launch: Launch | None = None) -> Container:
        if launch is None:
            launch = self.checker.check(spec)
            settle(self.context, [launch])  # a parked topology's containers: claimed, or evicted now

        def make() -> Container:
            container = self._launch(launch)
            if launch.ready.ready_when_started:  # create saw it running: no further wait
                return container
            try:
                wait_ready(container, launch.ready, spec.ready_timeout)
            except BaseException:
                self._remove(container)
                raise
            return container

        try:
            container = self.registry.add(spec.name, make)
        except BaseException as exc:
            self.context.timeline.add(f"container {spec.name} did not start: {one_line(exc)}")
            raise
        self.context.timeline.add(f"container {spec.name} started: {_addresses(container)}")
        self.context.hooks.pytest_dockernet_container_started(container=container)
        return container

    def wait_until(self, container: Container, ready: object, timeout: float) -> None:
        """``Container.wait_until``: unhealthy is waited through (it can pass again)."""
        __tracebackhide__ = True
        wait_ready(self.check(container, "container"), ready, timeout, "ready", through_unhealthy=True)

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
        launches = self._claim(batch)
        started: dict[str, Container] = {}
        errors: list[BaseException] = []
        starts: list[Future[Container]] = []
        # Containers with links start after the others: they may link to them.
        waves = [[s for s in batch.values() if not s.links], [s for s in batch.values() if s.links]]
        pool = ThreadPoolExecutor(max_workers=min(8, len(batch)))
        try:
            for wave in waves:
                futures = {spec.name: pool.submit(self._start, spec, launches.get(spec.name)) for spec in wave}
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
            end_starts(self.context, list(batch), starts)
            raise
        finally:
            end(self.context)
        pool.shutdown()
        if errors:
            for container in started.values():
                self.forget(container)
            raise errors[0]
        return {name: started[name] for name in batch}

    def _claim(self, batch: Mapping[str, ContainerSpec]) -> dict[str, Launch]:
        """Before a batch starts anything: a parked topology's containers handed out with a
        network (parked.py) are claimed by the launches that ask for them exactly, the others
        evicted. The checked launches (those of containers without links: those with links
        start after the others and are never the pool's) go to the starts; a spec that fails
        its check fails there."""
        if self.context.provisional is None:
            return {}
        launches = {}
        default = self.networks.registry.find("default")
        for spec in (s for s in batch.values() if not s.links):
            try:
                launch = self.checker.check(spec)
            except Exception:  # noqa: BLE001 - raised again by its start, in its turn
                continue
            if default and launch.network_mode is None and not launch.attachments and default.driver != "host":
                launch.attachments = [Attachment(default, [], None)]  # as _launch gives it
            launches[spec.name] = launch
        settle(self.context, list(launches.values()))
        return launches

    def check(self, container: object, argument: str) -> Container:
        """``container`` must be a container of this topology; else an error naming ``argument``."""
        if not isinstance(container, Container):
            raise TypeError(f"{argument}: expected a Container from dockernet.container(), got {container!r}")
        check_owned(container, self.context, argument)
        return container

    def connect(self, container: Container, network: Network, aliases: list[str] | None) -> None:
        self.check(container, "container")
        self.networks.check_own(network, "network")
        aliases = check_names("aliases", aliases, "alias")
        self.context.need("connect-disconnect", container.host)
        if aliases:
            self.context.need("aliases", container.host)
        try:
            with gate_for(container.engine).building():
                container.engine.connect_container_to_network(
                    container.id, network.ref(container.host), aliases=[container.name, *aliases]
                )
        except APIError as exc:
            raise DockernetError(
                f"connecting {container.name!r} to {network.name!r} failed: {exc.explanation or exc}"
            ) from None
        container.refresh()
        container.endpoints[network.docker_name].aliases = [container.name, *aliases]
        self.context.timeline.add(f"container {container.name} connected to {network.name}: {_addresses(container)}")

    def disconnect(self, container: Container, network: Network) -> None:
        self.check(container, "container")
        self.networks.check_own(network, "network")
        self.context.need("connect-disconnect", container.host)
        try:
            container.engine.disconnect_container_from_network(container.id, network.ref(container.host))
        except APIError as exc:
            raise DockernetError(
                f"disconnecting {container.name!r} from {network.name!r} failed: {exc.explanation or exc}"
            ) from None
        container.refresh()
        self.context.timeline.add(
            f"container {container.name} disconnected from {network.name}: {_addresses(container)}"
        )

    # -- making ------------------------------------------------------------------------

    def _launch(self, launch: Launch) -> Container:
        context, spec, engine = self.context, launch.spec, launch.spec.host
        if spec.ports or launch.network_mode == "host":
            context.host_bound = True
        if spec.image is None:
            launch.image = context.probe_image
            context.provide_probe_image(engine)
        elif engine and image_on(context.engine, spec.image):
            # An image engine 0 has (built by build(), or pulled there) goes to the other
            # engine as the probe image does: pulled there, or copied without a registry.
            with context.timings.measure("image"):
                provide_image(context.engine, context.engines[engine], spec.image)
        else:
            ensure_image(context.engines[engine], spec.image)
        self.engines_used.add(engine)
        self._need_capabilities(launch)
        if launch.network_mode is None and not launch.attachments:
            default = self.networks.default()
            if default.driver == "host":  # @pytest.mark.dockernet(driver="host")
                launch.network_mode = "host"
                context.host_bound = True
            else:
                launch.attachments = [Attachment(default, [], None)]
        container = self.make(launch)
        container.lifecycle = self.lifecycle
        return container

    def _need_capabilities(self, launch: Launch) -> None:
        """What the engine must be able to do for this container (see .capabilities)."""
        need, engine = self.context.need, launch.spec.host
        if self.context.settings.dns == "hermetic" and launch.network_mode in (None, "bridge"):
            need("hermetic-dns", engine)
        if any(attachment.aliases for attachment in launch.attachments):
            need("aliases", engine)
        if launch.link_pairs or launch.endpoint_links:
            need("links", engine)
        # A bind of a path this machine has (tmp_path, a Compose file's ./dir): the engine must see its files.
        if any(os.path.exists(bind.split(":")[0]) for bind in launch.volumes.binds if bind.startswith("/")):
            need("bind-mounts", engine)

    def return_pooled(self) -> None:
        """Give the warm pool back the containers it handed this topology, or remove them:
        their labels are the pool's, so the topology's removal by label would miss them.
        Provisional ones (parked.py) no call took are evicted first; then, when its shape
        allows, the topology waits in the pool whole (WarmPool.park) and nothing is given back."""
        end(self.context)
        pool = self.context.warm_pool
        if pool is not None and pool.park(self.context):
            return
        for container in [c for c in self.registry if c.pooled]:  # one by one: at once is no quicker
            self.hand_back(container)

    def create(self, launch: Launch, keeper: tuple[str, dict[str, str], dict[str, str]] | None) -> Container:
        """Start the container; ``keeper``: its hostname, labels and the filter that finds it,
        when it is kept by someone else than the topology (the warm pool)."""
        context, spec = self.context, launch.spec
        engine = context.engines[spec.host]
        name, docker_name = spec.name, context.docker_name_for(spec.name)
        hostname, labels, filters = keeper or (spec.hostname, context.labels_for("container", name), context.filters())
        network_mode, attachments = launch.network_mode, launch.attachments
        dns = launch.resolver.settings(context.settings.dns == "hermetic" and network_mode in (None, "bridge"))
        engine_mode, own_namespace = network_mode, network_mode != "host"
        if network_mode is not None and network_mode.startswith("container:"):
            owner = cast(Container, self.registry.get(network_mode.partition(":")[2]))  # checked to exist
            engine_mode, own_namespace = f"container:{owner.id}", False
        host_config = engine.create_host_config(
            network_mode=engine_mode or attachments[0].network.docker_name,
            port_bindings=dict(spec.ports) if spec.ports else None,
            links=launch.link_pairs or None,
            cap_add=with_net_raw(context, spec.host, spec.cap_add, spec.privileged, launch.docker.host_config),
            privileged=spec.privileged,
            binds=launch.volumes.binds or None,
            **dns,
            **launch.docker.host_config,
        )
        networking_config = None
        if attachments:
            first = attachments[0]
            networking_config = engine.create_networking_config(
                {
                    first.network.docker_name: engine.create_endpoint_config(
                        aliases=[name, *first.aliases],
                        ipv4_address=first.address,
                        links=launch.endpoint_links.get(first.network.docker_name),
                        **first.extra,
                    )
                }
            )
        with undone_on_failure(
            f"starting container {name!r}", lambda: remove_containers_named(engine, docker_name, filters)
        ):
            self._make_named_volumes(engine, launch.volumes.named)
            with gate_for(engine).building():
                created = engine.create_container(
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
                    stdin_open=launch.resident or launch.docker.stdin_open,
                    entrypoint=spec.entrypoint,
                    user=spec.user,
                    working_dir=spec.working_dir,
                    volumes=launch.volumes.paths or None,
                    healthcheck=launch.healthcheck,
                    stop_timeout=spec.stop_timeout,
                    **launch.docker.create,
                )
                container_id = created["Id"]
                for attachment in attachments[1:]:
                    engine.connect_container_to_network(
                        container_id,
                        attachment.network.ref(spec.host),
                        aliases=[name, *attachment.aliases],
                        ipv4_address=attachment.address,
                        links=launch.endpoint_links.get(attachment.network.docker_name),
                        **attachment.extra,
                    )
                if launch.files:
                    engine.put_archive(container_id, "/", archive(launch.files))
                engine.start(container_id)
            container = Container(context, name, docker_name, container_id, launch.image, network_mode, spec.host)
            container.resident = launch.resident
            container.stop_timeout = None if spec.stop_timeout is None else int(spec.stop_timeout)  # checked: whole
            container.lifecycle = self.lifecycle
            state = container.refresh()
            if not state.get("Running") and not launch.ready.exit_is_success(state):
                raise DockernetError(crash_report(container, state, "exited at once"))
            for attachment in attachments:
                container.endpoints[attachment.network.docker_name].aliases = [name, *attachment.aliases]
            context.timings.count("containers")
            return container

    def _make_named_volumes(self, engine: Engine, names: list[str]) -> None:
        """Named volumes that do not exist yet are made with the topology's labels (and so
        removed with it); existing ones are the user's and stay."""
        for volume in names:
            try:
                engine.inspect_volume(volume)
            except NotFound:
                engine.create_volume(volume, labels=self.context.labels_for("volume", volume))

    def _remove(self, container: Container) -> None:
        """Remove a container (and its sidecar) whose start failed after it was made."""
        ids = [container.sidecar_id]
        if container.pooled:  # the pool removes it (it carries the pool's labels)
            container.reusable = False
            self.hand_back(container)
        else:
            ids.append(container.id)
        for container_id in filter(None, ids):
            remove_container(container.engine, container_id)

    def discard(self, container: object) -> None:
        """Remove one container (and its sidecar) now: ``Topology.discard()``."""
        self.forget(self.check(container, "discard()"))

    def forget(self, container: Container) -> None:
        """Remove a container (and its sidecar) the topology made, as if it never had."""
        self.context.shells.discard(container.id)
        if container.sidecar_id is not None:
            self.context.shells.discard(container.sidecar_id)
        self._remove(container)
        self.registry.discard(container.name)


def _addresses(container: Container) -> str:
    """Where ``container`` is, for the timeline: ``on front 10.0.0.2, back 10.0.1.2``."""
    if container.network_mode:
        return f"network_mode={container.network_mode}"
    on = [f"{e.network.name if e.network else name} {e.ip or '-'}" for name, e in container.endpoints.items()]
    return f"on {', '.join(on)}" if on else "on no network"


class Lifecycle:
    """What ``Container.start()`` and ``restart()`` do, for the containers of one topology.

    A start gives a container a new network namespace: its resident probe shell is a new
    process (attached afresh on the next probe), its probe sidecar is left behind in the old
    namespace (so it is removed; the next probe makes another), its addresses are the ones
    the engine gives now, and the topology's faults are applied again.
    """

    def __init__(self, context: Context, sidecars: Sidecars):
        self.context, self.sidecars = context, sidecars
        # What runs once a container runs again in a new network namespace (the topology's
        # faults put back).
        self.after_restart: Callable[[Container], None] = lambda container: None

    def start(self, container: Container, ready: object, ready_timeout: object, restart: object = None) -> None:
        """Start ``container`` (``restart`` None) or restart it (``restart``: stop's
        timeout), then wait until ``ready``."""
        grace = None if restart is None else check_grace(restart)
        strategy, ready_timeout = check_ready(ready), check_timeout(ready_timeout, "ready_timeout")
        doing = "starting" if grace is None else "restarting"
        if grace is None:
            state = engine_call(container, doing, lambda engine: engine.inspect_container(container.id))["State"]
            if state.get("Running") and not state.get("Paused"):  # running: only waited for
                wait_ready(container, strategy, ready_timeout)
                return
        else:  # stop, then start: the output up to the start is the old run's
            engine_call(container, doing, lambda engine: engine.stop(container.id, timeout=grace))
        strategy = strategy.from_now(container)
        engine_call(container, doing, lambda engine: engine.start(container.id))
        self._forget_probes(container)
        state = container.refresh()
        if not state.get("Running"):
            why = f"stopped before it was ready ({strategy})"  # as wait_ready says it
            raise DockernetError(crash_report(container, state, why))
        self.after_restart(container)
        again = "started again" if grace is None else "restarted"
        self.context.timeline.add(f"container {container.name} {again}: {_addresses(container)}")
        wait_ready(container, strategy, ready_timeout)

    def _forget_probes(self, container: Container) -> None:
        """Probes of ``container`` go to its new network namespace from now on."""
        self.context.shells.discard(container.id)
        self.sidecars.forget(container)


END_WAIT = 30.0  # seconds an interrupted call goes on removing what its starts still make


def end_starts(context: Context, names: list[str], starts: list[Future[Container]]) -> None:
    """End the starts of containers ``names`` still under way at once (an interrupt came):
    each may wait up to its ``ready_timeout``. Their containers are removed from under them,
    which ends a readiness wait at its next look, and again until every start has ended (one
    may have been making its container while the last sweep ran). Found by name: a pooled one
    has the pool's labels. What was made goes with the topology's removal."""
    deadline = time.monotonic() + END_WAIT
    while True:
        for name in names:
            remove_containers_named(context.engine, context.docker_name_for(name), {})
        under_way = [f for f in starts if not f.done()]
        if not under_way or time.monotonic() > deadline:
            return
        wait(under_way, timeout=0.5)
