"""The factory a test holds: its networks, containers and services, and their removal;
usable without pytest.

    with Topology(docker.from_env()) as t:
        db = t.container("db")
        api = t.container("api")
        t.assert_reachable(api, "db")

``Topology`` is a facade, what a test calls and nothing else: what it makes is made by its
parts (:mod:`.networks`, :mod:`.containers`, :mod:`.swarm`, :mod:`.faults`, ...), probed by
:mod:`.probes` and checked by :mod:`.assertions`. They never reach back into it: they share
its run :class:`~pytest_dockernet.context.Context` (``.context``) and talk to the engine
through :class:`~pytest_dockernet.engine.port.Engine`.
"""

from __future__ import annotations

import functools
import itertools
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar, Union, cast

from . import assertions, measurements, probes, web
from . import compose as composing
from .builds import Builds
from .container_options import DNS_MODES
from .container_specs import ContainerSpec
from .containers import Containers
from .context import Context, Hooks, NoHooks, Settings
from .description import describe
from .engine import Client, as_engine
from .facts import RunFacts
from .faults import Degradation, DnsFault, Faults, Partition
from .handles import Container, Network, check_host_address
from .labels import RunIdentity
from .nemesis import EVERY, KINDS, Every, Nemeses, Nemesis
from .networks import DRIVERS, Networks, NetworkSpec
from .remover import Remover as Remover  # re-exported: the type of close(later=)
from .subnets import SubnetAllocator
from .swarm import Service, Services, ServiceSpec
from .teardown import Removal
from .timings import Timings, counted
from .warm_pool import WarmStarts

if TYPE_CHECKING:
    from typing_extensions import Concatenate, ParamSpec

    from .warm_pool import WarmPool

    P = ParamSpec("P")
    Method = Callable[Concatenate["Topology", P], "R"]  # a Topology method, its parameters P
R = TypeVar("R")

_topology_ids = itertools.count(1)
Group = Union[Container, Sequence[Container]]  # one container, or a group of them


def _measured(phase: str) -> Callable[[Method[P, R]], Method[P, R]]:
    """Count a factory method's wall time towards ``phase`` of the topology's timings."""

    def wrap(method: Method[P, R]) -> Method[P, R]:
        @functools.wraps(method)
        def measured(self: Topology, *args: P.args, **kwargs: P.kwargs) -> R:
            with self.context.timings.measure(phase):
                return method(self, *args, **kwargs)

        # a cast: mypy does not match wraps()'s named ``self`` to Concatenate's positional one
        return cast("Method[P, R]", measured)

    return wrap


class Topology:
    """A factory of networks and containers that removes everything it made on ``close()``.

    Every resource is labelled with the owner's run identity and this topology's id, so
    removal sweeps by label: a call interrupted half-way leaves nothing that ``close()``
    (or a later run's prune, if this process dies) does not find.
    """

    def __init__(
        self,
        client: Client,
        *,
        identity: RunIdentity | None = None,
        image: str | None = None,
        default_driver: str = "bridge",
        dns: str = "hermetic",
        allocator: SubnetAllocator | None = None,
        hooks: Hooks | None = None,
        label: str = "",
        timings: Timings | None = None,
        engines: Sequence[Client] = (),
        facts: RunFacts | None = None,
        unavailable: Callable[[str, bool], None] | None = None,
        pool: WarmPool | None = None,
        host_address: str = "",
        fault_image: str | None = None,
    ):
        if default_driver not in DRIVERS:
            raise ValueError(f"default_driver={default_driver!r} is not one of {', '.join(DRIVERS)}")
        if dns not in DNS_MODES:
            raise ValueError(f"dns={dns!r} is not one of {', '.join(DNS_MODES)}")
        try:
            host_address = check_host_address(host_address)
        except ValueError as exc:
            raise ValueError(f"host_address={exc}") from None
        self.client = client
        identity = identity or RunIdentity()
        self.id = f"{identity.run_id}-{next(_topology_ids)}"
        self.label = label or self.id  # e.g. the test's node id: shown in messages
        self.context = Context(
            [as_engine(c) for c in (client, *engines)],  # docker-py clients, or Engines (the plugin's)
            self.id,
            identity,
            Settings(dns, default_driver, label, image, host_address=host_address, fault_image=fault_image),
            timings or Timings(),
            RunFacts() if facts is None else facts,  # shared by a run's topologies
            hooks or NoHooks(),
            pool,
            unavailable,
            factory=self,
        )
        self.failed = False  # set by the pytest plugin when a test using it failed
        self.context.probe = probes.run
        self._networks = Networks(self.context, allocator)
        self._containers = Containers(self.context, self._networks)
        warm = WarmStarts(self.context, self._containers.create)  # the warm pool in front of the factory
        self._containers.make, self._containers.hand_back = warm.start, warm.give_back
        self._services = Services(self.context, self._networks)
        self._builds = Builds(self.context)
        self._faults = Faults(self.context, measurements.measure, measurements.throughput)
        self._containers.lifecycle.after_restart = self._faults.reapply
        self._removal = Removal(self.context, self._containers, self._networks)
        self._nemeses = Nemeses(self.context)

    @property
    def probe_image(self) -> str:
        """The image probes run in, and what ``container()`` runs without ``image=``."""
        return self.context.probe_image

    @property
    def default_driver(self) -> str:
        """What ``network()`` makes without ``driver=`` (the marker's ``driver=``)."""
        return self.context.settings.default_driver

    # -- what a test asks for ----------------------------------------------------------

    @property
    def networks_list(self) -> list[Network]:
        return list(self._networks.registry)

    @property
    def containers_list(self) -> list[Container]:
        return list(self._containers.registry)

    @property
    def services_list(self) -> list[Service]:
        return list(self._services.registry)

    def get_network(self, name: str) -> Network:
        return cast(Network, self._networks.registry.get(name))  # None only while it is being made

    def get_container(self, name: str) -> Container:
        return cast(Container, self._containers.registry.get(name))  # None only while it is being made

    def get_service(self, name: str) -> Service:
        return cast(Service, self._services.registry.get(name))  # None only while it is being made

    @_measured("set-up")
    def network(
        self,
        name: str,
        *,
        driver: str | None = None,
        internal: bool = False,
        subnet: str | None = None,
        gateway: str | None = None,
        ipv6: bool = False,
        options: Mapping[str, str] | None = None,
        labels: Mapping[str, str] | None = None,
        encrypted: bool = False,
        ipv6_subnet: str | None = None,
    ) -> Network:
        """Create a network; ``name`` is logical, the engine's name is unique per run.

        ``driver="overlay"``: an attachable overlay of engine 0's swarm (``encrypted``: IPsec
        for its data plane), which standalone containers on any of its engines and services join.
        ``ipv6_subnet``: the IPv6 subnet of an ``ipv6=True`` network (else a /64 of the plugin's).
        """
        self.context.check_open()
        spec = NetworkSpec(name, driver, internal, subnet, gateway, ipv6, options, labels, encrypted, ipv6_subnet)
        return self._networks.create(spec)

    @_measured("set-up")
    def container(
        self,
        name: str,
        *,
        image: str | None = None,
        command: str | list[str] | None = None,
        networks: Iterable[Network] | Mapping[Network, Any] | None = None,
        environment: Mapping[str, str] | list[str] | None = None,
        ports: Mapping[int | str, Any] | None = None,
        expose: Iterable[int | str] | None = None,
        links: Mapping[str, str] | None = None,
        network_mode: str | None = None,
        cap_add: list[str] | None = None,
        privileged: bool = False,
        host: int = 0,
        entrypoint: str | list[str] | None = None,
        user: str | None = None,
        working_dir: str | None = None,
        hostname: str | None = None,
        volumes: Mapping[str, Any] | list[str] | None = None,
        healthcheck: Mapping[str, Any] | None = None,
        labels: Mapping[str, str] | None = None,
        ready: Any = "running",
        ready_timeout: float = 60.0,
        docker_options: Mapping[str, Any] | None = None,
        files: Mapping[str, Any] | None = None,
        dns: list[str] | None = None,
        dns_search: list[str] | None = None,
        dns_opt: list[str] | None = None,
        stop_timeout: float | None = None,
    ) -> Container:
        """Create and start a container; returns once it is ``ready``.

        ``networks`` is a list of networks or ``{network: [aliases]}`` /
        ``{network: {"aliases": [...], "ipv4_address": "..."}}``; omitted, the container
        joins the topology's ``"default"`` network. Its logical ``name`` resolves on every
        user-defined network it joins. ``host=i`` runs it on engine ``i`` (0 is the
        environment's engine, 1... those of ``--dockernet-hosts``); a container on another
        engine joins overlay networks only.

        ``entrypoint``, ``user``, ``working_dir``, ``hostname``, ``volumes``,
        ``healthcheck``, ``labels`` and ``docker_options`` go to the engine as docker-py
        takes them; see :mod:`pytest_dockernet.container_options`. ``files`` are put into it
        before it starts, ``{path: content}`` (see :mod:`pytest_dockernet.container_files`).
        ``dns``, ``dns_search`` and ``dns_opt`` set its resolver on top of hermetic DNS (a
        server must be an address on one of the topology's networks, unless
        ``--dockernet-dns=host``); ``stop_timeout`` is what :meth:`Container.stop` and
        ``restart()`` wait before SIGKILL when not told.

        ``ready`` is ``"running"`` (the default), ``"healthy"`` (its healthcheck passes),
        :class:`LogLine` ``(pattern)``, :class:`Listening` ``(port)`` or a callable
        ``(Container) -> bool``, waited for up to ``ready_timeout`` seconds. A container
        that exits or turns unhealthy first, or is not ready in time, raises :class:`DockernetError`
        with its exit code (or last healthcheck's output) and its last lines of output, and this
        call removes it. A call that asks for nothing of its own gets a running container of the
        warm pool (see :mod:`pytest_dockernet.warm_pool`).
        """
        arguments = dict(locals())  # exactly the keyword arguments above, as given
        del arguments["self"]
        self.context.check_open(claiming=True)
        spec = ContainerSpec(**arguments)
        return self._containers.start(spec)

    def wait_until(self, container: Container, ready: Any, timeout: float = 60.0) -> None:
        """What ``Container.wait_until`` does (see there)."""
        self.context.wait_ready(container, ready, timeout)

    @_measured("set-up")
    def containers(self, specs: Mapping[str, Mapping[str, Any] | None]) -> dict[str, Container]:
        """Start several containers at once, ``{name: {container() arguments}}``; returns them
        by name once all are ready. Those with ``links=`` start after the others. If one
        fails, the others are removed too and the first error is raised."""
        self.context.check_open(claiming=True)
        return self._containers.start_batch(specs)

    def discard(self, *handles: Container | Network) -> None:
        """Remove some of its containers and networks now (containers first); the rest stays until ``close()``."""
        for handle in sorted(handles, key=lambda h: isinstance(h, Network)):
            parts = self._networks if isinstance(handle, Network) else self._containers
            parts.discard(handle)

    compose = composing.compose

    def connect(self, container: Container, network: Network, *, aliases: list[str] | None = None) -> None:
        """Attach a running container to a network: its name resolves there, its faults cover it (else no join)."""
        self.context.check_open()
        self._containers.connect(container, network, aliases)
        self._faults.follow(container, undo=lambda: self._containers.disconnect(container, network))

    def disconnect(self, container: Container, network: Network) -> None:
        self.context.check_open()
        self._containers.disconnect(container, network)
        self._faults.follow(container)

    @_measured("set-up")
    def service(
        self,
        name: str,
        *,
        image: str | None = None,
        command: str | list[str] | None = None,
        networks: Iterable[Network] | None = None,
        replicas: int = 1,
        endpoint_mode: str | None = None,
        constraints: Iterable[str] | None = None,
        timeout: float = 60.0,
    ) -> Service:
        """Create a swarm service on overlay ``networks``; returns once all ``replicas`` run.
        ``name`` resolves to its virtual IP (``endpoint_mode="vip"``) or its tasks
        (``"dnsrr"``), ``tasks.<name>`` to every task; see :mod:`pytest_dockernet.swarm`."""
        self.context.check_open()
        spec = ServiceSpec(name, image, command, networks, replicas, endpoint_mode, constraints, timeout)
        return self._services.create(spec)

    def partition(
        self, a: Group, b: Group, *, one_way: bool = False, mode: str = "drop", ports: Iterable[int] | None = None
    ) -> Partition:
        """Drop (``mode="reject"``: refuse) traffic between ``a`` and ``b`` (containers, groups), or what ``a``
        starts towards ``b`` (``one_way``), or connections to ``ports``; names still resolve. See :mod:`.faults`."""
        self.context.check_open()
        return self._faults.partition(a, b, one_way, mode, ports)

    def heal(self, partition: Partition | None = None) -> None:
        """Lift ``partition``, or every partition in force."""
        self._faults.heal(partition)

    def degrade(
        self,
        container: Container,
        *,
        loss: float | None = None,
        rate: str | None = None,
        delay: str | None = None,
        jitter: str | None = None,
        to: Group | None = None,
        network: Network | None = None,
        direction: str = "egress",
        duplicate: float | None = None,
        corrupt: float | None = None,
        reorder: float | None = None,
    ) -> Degradation:
        """Loss (0.0-1.0), a rate cap (``"1mbit"``), netem's delay, duplicate, corrupt, reorder (not with ``to``)
        on what ``container`` sends, receives or both (``direction``); replaces a former. See :mod:`.faults`."""
        self.context.check_open()
        settings = dict(loss=loss, rate=rate, delay=delay, jitter=jitter, duplicate=duplicate, corrupt=corrupt)
        settings |= {"reorder": reorder, "direction": direction}
        return self._faults.degrade(container, settings, to, network)

    def restore(self, degradation: Degradation | None = None) -> None:
        """Lift ``degradation``, or every degradation in force."""
        self._faults.restore(degradation)

    def dns_fault(
        self,
        container: Container,
        name: str,
        *,
        nxdomain: bool = False,
        servfail: bool = False,
        delay: str | float | None = None,
        answer: str | Container | None = None,
    ) -> DnsFault:
        """From ``container``, ``name`` fails (NXDOMAIN, SERVFAIL), answers after ``delay`` (``"2s"``)
        or resolves to ``answer`` (an address, a container); ``lift()`` ends it. See :mod:`.faults.dns`."""
        self.context.check_open()
        return self._faults.dns_fault(container, name, nxdomain=nxdomain, servfail=servfail, delay=delay, answer=answer)

    def nemesis(
        self, members: Group, *, seed: int | None = None, faults: Sequence[str] = KINDS, every: Every = EVERY
    ) -> Nemesis:
        """Random faults on ``members``, one at a time, in ``with dockernet.nemesis(...):``; all lifted at its end.
        ``seed`` (else ``--dockernet-seed``'s) fixes them; ``every``: (low, high) seconds. See :mod:`.nemesis`."""
        self.context.check_open()
        return self._nemeses.make(self, members, seed, faults, every)

    @property
    def faults(self) -> list[Partition | Degradation | DnsFault]:
        """The faults in force: partitions, then degradations, then DNS faults (each ``describe()``s itself)."""
        return cast("list[Partition | Degradation | DnsFault]", self.context.faults_in_force())

    # The helpers of pytest_dockernet.assertions as methods: one source for their arguments.
    assert_reachable = staticmethod(assertions.assert_reachable)
    assert_unreachable = staticmethod(assertions.assert_unreachable)
    assert_resolves = staticmethod(assertions.assert_resolves)
    assert_not_resolves = staticmethod(assertions.assert_not_resolves)
    assert_isolated = staticmethod(assertions.assert_isolated)
    reachability = staticmethod(assertions.reachability)
    http_get = staticmethod(web.http_get)
    assert_http = staticmethod(web.assert_http)
    measure = staticmethod(measurements.measure)
    throughput = staticmethod(measurements.throughput)

    def build(
        self,
        path: str | os.PathLike[str],
        *,
        tag: str | None = None,
        dockerfile: str | None = None,
        buildargs: Mapping[str, str] | None = None,
        target: str | None = None,
        labels: Mapping[str, str] | None = None,
        dockerfile_inline: str | None = None,
        network: str | None = None,
        cache_from: Sequence[str] | None = None,
    ) -> str:
        """Build an image from the context directory ``path`` (on engine 0) and return a
        reference for ``image=``: once per run for the same content, ``dockerfile`` (or
        ``dockerfile_inline``, its text), ``buildargs``, ``target``, ``labels``, ``network``
        and ``tag``, also across xdist workers; with BuildKit where a docker CLI has it
        (``--dockernet-builder``). A failed build raises :class:`DockernetError` with its
        output. Tagged images stay; untagged ones are removed at the run's end. See
        :mod:`pytest_dockernet.builds`."""
        self.context.check_open()
        return self._builds.build(
            path,
            tag=tag,
            dockerfile=dockerfile,
            buildargs=buildargs,
            target=target,
            labels=labels,
            dockerfile_inline=dockerfile_inline,
            network=network,
            cache_from=cache_from,
        )

    # -- teardown ----------------------------------------------------------------------

    def describe(self) -> str:
        """The topology as failure messages show it (networks, containers, faults, services)."""
        return describe(self.context)

    @_measured("teardown")
    def close(self, *, keep: bool = False, later: Remover[Removal] | None = None) -> None:
        """Remove every container (forced, with anonymous volumes), then every network.

        With ``keep`` nothing is removed (the plugin prints how to remove it). With ``later``,
        the removal runs in that :class:`Remover`'s thread while the caller goes on, unless
        the topology holds something a later one may ask for by value (a published host
        port, a chosen subnet, the host's network namespace). Calling it again finishes a
        removal that was interrupted (Ctrl-C, SIGTERM) and is otherwise a no-op.
        """
        context = self.context
        self._nemeses.stop()  # its thread would act on what is being removed
        if not context.closed:
            context.closed = True
            try:
                context.hooks.pytest_dockernet_topology_teardown(factory=self)
            except BaseException:
                self._removal.remove()
                raise
        context.shells.close()
        if keep:
            return
        self._containers.return_pooled()  # now: the next test may take them
        if later is not None and not context.host_bound:
            later.submit(self._removal)
        else:
            self._removal.remove()

    def __enter__(self) -> Topology:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"<Topology {self.label}: {counted(len(self._networks.registry), 'networks')}, "
            f"{counted(len(self._containers.registry), 'containers')}>"
        )
