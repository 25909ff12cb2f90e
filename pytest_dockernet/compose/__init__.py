"""``dockernet.compose()``: a Compose file brought up in a test's own topology.

The file is read and checked first (:mod:`.file`: nothing is made for a file that
cannot be brought up), its images are looked up or built, then its networks and volumes
are made and its services started as ordinary containers of the topology, each as soon as
what it depends on is ready (``depends_on`` with its conditions, ``links``,
``network_mode: service:``), the independent ones at the same time. Every name is the
topology's own (unique per run), so runs of one file never collide: ``container_name`` is
kept as an alias, and published ports get free host ports (``Container.host_port()``).
A start that fails removes what the call made before it raises.

Reading never talks to an engine: :mod:`.yaml` (the YAML, bounded), :mod:`.env`
(variables), :mod:`.file` (files merged, top-level, network and volume keys),
:mod:`.services` (one service's keys), :mod:`.values` (each value's shape). Bringing up
(here) goes through the topology's own calls (:class:`Facade`) and its run context.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, cast

from ..containers import end_starts
from ..engine.errors import APIError, EngineException, NotFound
from ..errors import ComposeError, DockernetError
from ..image import ensure_image
from ..readiness import check_ready
from .replicas import check_replica_names, replica_names

if TYPE_CHECKING:
    from ..context import Context
    from ..handles import Container, Network
    from .file import ComposeModel, NetworkDef
    from .services import ServiceDef
    from .values import Mount

_WARNED: set[tuple[object, ...]] = set()  # (run id, files, ignored keys) already warned about


class Facade(Protocol):
    """What ``compose()`` asks of the topology it brings a file up in: the calls a test
    makes (a stack is made as a test would make it) and its run context."""

    # Properties typed as callables: the topology's methods match without their keywords repeated
    # here (a new container() option changes nothing in this module).
    @property
    def context(self) -> Context: ...
    @property
    def network(self) -> Callable[..., Network]: ...
    @property
    def container(self) -> Callable[..., Container]: ...
    @property
    def build(self) -> Callable[..., str]: ...
    def discard(self, *handles: Container | Network) -> None: ...


@dataclass(eq=False)
class ComposeStack:
    """A Compose file's services and networks in a test's topology.

    ``containers`` are by their names in the topology: a service's name, or ``api-1``,
    ``api-2``, ... for a service of several replicas; ``services`` maps each service brought
    up to those names (none for ``replicas: 0``). ``networks`` are by the file's network
    names (the ``default`` network is there when a service names none), ``volumes`` maps the
    file's volume names to the engine's. ``stack["api"]`` is the service's one container
    (or a replica by its name); ``stack.replicas("api")`` every replica's, in order.
    """

    name: str  # the file's top-level ``name:`` (else its directory's name)
    files: list[Path]
    containers: dict[str, Container] = field(default_factory=dict)
    services: dict[str, list[str]] = field(default_factory=dict)
    networks: dict[str, Network] = field(default_factory=dict)
    volumes: dict[str, str] = field(default_factory=dict)
    ignored: list[str] = field(default_factory=list)  # keys accepted without effect (see the warning)

    def __getitem__(self, name: str) -> Container:
        if name in self.containers:
            return self.containers[name]
        # Several replicas (or none): picking one silently would let a fault or an assertion
        # on "the api" touch one replica while the service name still answers from the others.
        if name in self.services:
            names = self.services[name]
            have = f"{len(names)} replicas ({', '.join(names)})" if names else "no container (replicas: 0)"
            raise KeyError(
                f"service {name!r} of compose stack {self.name!r} has {have}: stack[{name!r}] is a service's one "
                f"container; use stack.replicas({name!r}) for the list of them, in order"
            )
        raise KeyError(
            f"no service {name!r} in compose stack {self.name!r}; it has {', '.join(self.services) or 'none'}"
        )

    def replicas(self, service: str) -> list[Container]:
        """Every container of ``service``, in replica order (``[]`` for ``replicas: 0``)."""
        if service not in self.services:
            raise KeyError(
                f"no service {service!r} in compose stack {self.name!r}; it has {', '.join(self.services) or 'none'}"
            )
        return [self.containers[name] for name in self.services[service]]

    def __contains__(self, service: object) -> bool:
        return service in self.services or service in self.containers

    def __iter__(self) -> Iterator[str]:
        return iter(self.services)

    def __repr__(self) -> str:
        return f"<ComposeStack {self.name}: services {', '.join(self.services)}; networks {', '.join(self.networks)}>"


def compose(
    topology: Facade,
    path: str | os.PathLike[str],
    *,
    services: Iterable[str] | None = None,
    profiles: Iterable[str] | None = None,
    override: Iterable[str | os.PathLike[str]] | str | os.PathLike[str] = (),
    env: Mapping[str, str] | None = None,
    project_dir: str | os.PathLike[str] | None = None,
    ready_timeout: float = 60.0,
) -> ComposeStack:
    """Bring up the Compose file ``path`` (merged with the ``override`` files in order, as
    ``docker compose -f path -f override...``) in this topology; returns its
    :class:`ComposeStack`.

    ``services`` brings up only those and what they depend on, whatever their profiles.
    ``profiles`` (e.g. ``["debug"]``; ``["*"]`` for all) are the active profiles: a
    service with ``profiles:`` starts only when one of them is active, one without always
    does; without the argument they come from ``COMPOSE_PROFILES`` (comma-separated, a
    variable as below). Variables come from
    ``env`` first, then the process environment, then ``.env`` in ``project_dir`` (the
    directory of ``path`` unless given), against which relative paths are resolved too.
    ``ready_timeout`` bounds each wait for a ``depends_on`` condition. See
    :mod:`pytest_dockernet.compose`.
    """
    # Here: every topology imports this module (Topology.compose), few read a Compose file.
    from .file import load, service_names
    from .on_engine import check_on_engine

    services = service_names(services)
    model = load(path, override, env, project_dir, profiles=profiles, services=services)
    wanted = _check_services(model, services)
    check_on_engine(model, wanted, topology.context)  # platform, runtime; hermetic DNS's servers
    stack = ComposeStack(model.name, model.files, ignored=list(model.ignored))
    seen = (topology.context.identity.run_id, *model.files, *model.ignored)
    if model.ignored and seen not in _WARNED:  # once per file in a run, not at every call
        _WARNED.add(seen)
        warnings.warn(
            f"{model.files[0]}: ignored by compose() (no effect on networking or start-up here): "
            + "; ".join(model.ignored),
            UserWarning,
            stacklevel=2,
        )
    _check_free(topology.context, model, wanted)
    images = _images(topology, model, wanted)
    try:
        _make_networks(topology, model, wanted, stack)
        _make_volumes(topology.context, model, wanted, stack)
        _start(topology, model, wanted, images, stack, ready_timeout)
    except BaseException:
        _undo(topology, stack)
        raise
    return stack


def _check_services(model: ComposeModel, services: Iterable[str] | None) -> list[str]:
    if services is None:
        return model.needed(None)
    if isinstance(services, str) or not all(isinstance(s, str) for s in services):
        raise TypeError(f"compose(): services must be a list of service names, got {services!r}")
    services = list(services)
    missing = [s for s in services if s not in model.services]
    if missing or not services:
        why = f"not in the file: {', '.join(missing)}" if missing else "no services given"
        raise ComposeError(f"compose(): services={services!r}: {why}; the file has {', '.join(model.services)}")
    return model.needed(services)


def _networks_of(model: ComposeModel, wanted: list[str]) -> list[NetworkDef]:
    used: set[str] = set()
    for name in wanted:
        service = model.services[name]
        if service.network_mode is None:
            used.update(service.networks or ["default"])
    return [net for net in model.networks.values() if net.name in used]


def _check_free(context: Context, model: ComposeModel, wanted: list[str]) -> None:
    """The stack's names must be free in the topology (two stacks of one file in one
    topology would resolve each other's names), and a replica's another service's; what
    joins a service's container (``links``, ``network_mode: service:``) needs one."""
    where = str(model.files[0])
    counts = {name: service.replicas for name, service in model.services.items()}
    check_replica_names(where, counts, wanted)
    for name in wanted:
        service = model.services[name]
        joins = dict.fromkeys(service.links, "links") | dict.fromkeys(service.volumes_from, "volumes_from")
        if service.shares:
            joins[service.shares] = "network_mode"
        for other in [o for o in joins if counts[o] == 0]:
            raise ComposeError(
                f"{where}: services.{name}.{joins[other]}: service {other!r} has replicas: 0, so no container "
                "to join: give it a replica or drop the reference"
            )
    taken_containers = {c.name for c in context.containers}
    taken_networks = {n.name for n in context.networks}
    clash = [
        f"service {s!r}" if c == s else f"container {c!r} (a replica of {s!r})"
        for s in wanted
        for c in replica_names(s, counts[s])
        if c in taken_containers
    ]
    clash += [f"network {n.name!r}" for n in _networks_of(model, wanted) if n.name in taken_networks]
    if clash:
        raise ComposeError(
            f"compose({str(model.files[0])!r}): this topology already has a {', a '.join(clash)}: a stack's names "
            "are the file's own; bring it up in another topology (e.g. a fixture of its own) or rename them there"
        )


def _images(topology: Facade, model: ComposeModel, wanted: list[str]) -> dict[str, str]:
    """Each wanted service's image: built (once per run for one context), or present or
    pulled on the engine; before anything is made, so a missing image leaves nothing.
    Services sharing a build or an image (a YAML anchor's) cost one look."""
    images: dict[str, str] = {}
    seen: dict[object, str] = {}
    for name in wanted:
        service = model.services[name]
        build = service.build
        key: object = build.key() if build else service.image
        if key not in seen:
            if build is not None:
                seen[key] = topology.build(build.context, **build.options())
            else:
                image = cast(str, service.image)  # check_service requires one of the two
                try:
                    ensure_image(topology.context.engine, image)
                except (ValueError, DockernetError, APIError) as exc:
                    raise ComposeError(f"{model.files[0]}: services.{name}.image: {exc}") from None
                seen[key] = image
        images[name] = seen[key]
    return images


def _make_networks(topology: Facade, model: ComposeModel, wanted: list[str], stack: ComposeStack) -> None:
    for net in _networks_of(model, wanted):
        stack.networks[net.name] = topology.network(
            net.name,
            driver=net.driver,
            internal=net.internal,
            subnet=net.subnet,
            gateway=net.gateway,
            ipv6=net.ipv6,
            ipv6_subnet=net.subnet6,
            options=net.options or None,
            labels=net.labels or None,
        )


def _make_volumes(context: Context, model: ComposeModel, wanted: list[str], stack: ComposeStack) -> None:
    used = {v for name in wanted for v in model.services[name].named_volumes()}
    for name in sorted(used):
        volume = model.volumes[name]
        if volume.external:
            existing = volume.engine_name or name
            try:
                context.engine.inspect_volume(existing)
            except NotFound:
                raise ComposeError(
                    f"{model.files[0]}: volumes.{name} is external, but the engine has no volume {existing!r}"
                ) from None
            stack.volumes[name] = existing
            continue
        engine_name = context.docker_name_for(f"volume-{name}")
        context.engine.create_volume(
            engine_name,
            driver=volume.driver,
            driver_opts=volume.options or None,
            labels={**volume.labels, **context.labels_for("volume", name)},
        )
        stack.volumes[name] = engine_name


def _readiness(model: ComposeModel, wanted: list[str]) -> dict[str, str]:
    """What each service is waited for: the strongest condition a dependent asks of it."""
    by_condition = {"service_started": "running", "service_healthy": "healthy"}
    ready = dict.fromkeys(wanted, "running")
    for name in wanted:
        for other, condition in model.services[name].depends_on.items():
            needed = by_condition.get(condition, "completed")
            if check_ready(needed).rank > check_ready(ready[other]).rank:
                ready[other] = needed
    return ready


def _arguments(
    service: ServiceDef, stack: ComposeStack, image: str | None, ready: str, ready_timeout: float, name: str
) -> dict[str, Any]:
    """``container()``'s keyword arguments for ``service``'s container ``name`` (a replica's
    name, or the service's own): a replica resolves by the service's name too."""
    networks: dict[Any, Any] | None = None
    if service.network_mode is None:
        attached = service.networks or {"default": ([], None)}
        shared = [service.name] if name != service.name else []
        networks = {
            stack.networks[net]: {
                "aliases": [*shared, *service.aliases(), *aliases],
                "ipv4_address": address,
                **service.endpoints.get(net, {}),
            }
            for net, (aliases, address) in attached.items()
        }
    mode = service.network_mode
    if service.shares is not None:
        mode = f"container:{stack.services[service.shares][0]}"  # the first replica's, as under Compose
    # A link to a replicated service is one to each replica under the alias, as Compose makes it.
    links = {replica: alias for other, alias in service.links.items() for replica in stack.services[other]}
    volumes = [_volume_spec(m, stack.volumes) for m in service.mounts]
    docker_options = dict(service.docker_options)
    if service.volumes_from:  # the first replica's mounts, as under Compose
        first = {other: stack.containers[stack.services[other][0]].id for other in service.volumes_from}
        docker_options["volumes_from"] = [f"{first[other]}:{mode}" for other, mode in service.volumes_from.items()]
    return {
        "image": image,
        "command": service.command,
        "entrypoint": service.entrypoint,
        "networks": networks,
        "network_mode": mode,
        "environment": service.environment or None,
        "ports": service.ports or None,
        "expose": service.expose or None,
        "links": links or None,
        "cap_add": service.cap_add or None,
        "privileged": service.privileged,
        "user": service.user,
        "working_dir": service.working_dir,
        "hostname": service.hostname,
        "volumes": volumes or None,
        "healthcheck": service.healthcheck,
        "labels": service.labels or None,
        "ready": ready,
        "ready_timeout": ready_timeout,
        "docker_options": docker_options or None,
        "files": service.files or None,
        "dns": service.dns or None,
        "dns_search": service.dns_search or None,
        "dns_opt": service.dns_opt or None,
        "stop_timeout": service.stop_timeout,
    }


def _volume_spec(mount: Mount, engine_names: dict[str, str]) -> str:
    """A mount as ``container(volumes=[...])`` takes it; a named volume by the engine's name."""
    if mount.kind == "anonymous":
        return mount.target
    source = engine_names[mount.source] if mount.kind == "volume" and mount.source else mount.source
    return f"{source}:{mount.target}:{mount.mode()}"


def _start(
    topology: Facade,
    model: ComposeModel,
    wanted: list[str],
    images: dict[str, str],
    stack: ComposeStack,
    ready_timeout: float,
) -> None:
    """Start every wanted service once all it requires is ready (each of its replicas),
    independent ones and a service's replicas at once."""
    ready = _readiness(model, wanted)
    stack.services = {name: replica_names(name, model.services[name].replicas) for name in wanted}
    left = {name: len(names) for name, names in stack.services.items()}  # replicas not yet ready
    pending = list(wanted)
    running: dict[Future[Container], tuple[str, str]] = {}  # (service, container)
    errors: list[BaseException] = []

    def start(name: str, container: str) -> Container:
        service = model.services[name]
        image: str | None = images[name]
        if image == topology.context.probe_image and service.command is None and service.entrypoint is None:
            image = None  # the probe image's resident shell: it has no command of its own
        arguments = _arguments(service, stack, image, ready[name], ready_timeout, container)
        return topology.container(container, **arguments)

    every = [container for names in stack.services.values() for container in names]
    pool = ThreadPoolExecutor(max_workers=max(1, min(8, len(every))))
    try:
        while (pending and not errors) or running:
            # A service of replicas: 0 has none left: what depends on it does not wait, as under Compose.
            for name in [n for n in pending if all(left[r] == 0 for r in model.services[n].requires())]:
                if errors:
                    break
                pending.remove(name)
                for container in stack.services[name]:
                    running[pool.submit(start, name, container)] = (name, container)
            if not running:
                break
            done, _ = wait(list(running), return_when=FIRST_COMPLETED)
            for future in done:
                name, container = running.pop(future)
                try:
                    stack.containers[container] = future.result()
                except BaseException as exc:  # noqa: BLE001 - the first one is raised once all have ended
                    errors.append(exc)
                else:
                    left[name] -= 1
    except BaseException:  # an interrupt (Ctrl-C, SIGTERM): it lands in this thread
        pool.shutdown(wait=False, cancel_futures=True)
        end_starts(topology.context, every, list(running))
        raise
    pool.shutdown()
    if errors:
        raise errors[0]
    # Keep the file's order (and the replicas'), not the order they became ready in.
    stack.containers = {container: stack.containers[container] for container in every}


def _undo(topology: Facade, stack: ComposeStack) -> None:
    """Remove what a failed ``compose()`` made (its containers, networks and volumes); what
    cannot go now is left to the topology's removal, so that the failure (or the interrupt)
    is what the caller sees, not a removal's error."""
    try:
        topology.discard(*stack.containers.values(), *stack.networks.values())
    except (EngineException, DockernetError) as exc:
        warnings.warn(f"compose(): undoing a failed bring-up: {exc}; the topology's removal tries again", stacklevel=3)
    made = topology.context.docker_name_for("volume-")
    for engine_name in stack.volumes.values():
        if engine_name.startswith(made):  # not an external volume
            try:
                topology.context.engine.remove_volume(engine_name, force=True)
            except NotFound:
                pass
            except APIError as exc:  # still mounted by a container the removal above missed
                warnings.warn(
                    f"compose(): volume {engine_name}: {exc}; the topology's removal tries again", stacklevel=3
                )
