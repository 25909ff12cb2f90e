"""Removing what the plugin made: one resource, what a half-made call left, everything a
label matches.

Removal is forgiving: something already gone is not an error, and a network that still
has endpoints is retried while the engine lets go of them (see :func:`remove_network`).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ..errors import DockernetError
from .connect import Client, as_engine
from .errors import APIError, NotFound
from .gate import gate_for
from .port import Engine, Info

Filters = dict[str, Any]


@contextlib.contextmanager
def undone_on_failure(doing: str, undo: Callable[[], object]) -> Iterator[None]:
    """Make something in the block; if the block fails (an interrupt too), ``undo`` what it
    may have made. The engine's refusal becomes a DockernetError saying what was being done."""
    try:
        yield
    except APIError as exc:
        undo()
        raise DockernetError(f"{doing} failed: {exc.explanation or exc}") from None
    except BaseException:
        undo()
        raise


# Podman refuses to remove a container whose network namespace others share (a probe
# sidecar's network_mode="container:ID"), naming them; Docker removes it and leaves them.
_DEPENDENTS = re.compile(r"dependent containers which must be removed before it: ([0-9a-f, ]+)")


def remove_container(engine: Client, container_id: str) -> None:
    """Forced, with its anonymous volumes, after the containers that share its namespaces
    when the engine refuses it for them; gone already is fine."""
    engine = as_engine(engine)
    for attempt in range(3):
        try:
            engine.remove_container(container_id, force=True, v=True)
            return
        except NotFound:
            return
        except APIError as exc:
            if "already in progress" in str(exc):
                return
            dependents = _DEPENDENTS.search(str(exc))
            if dependents is None or attempt == 2:
                raise
        for dependent in dependents.group(1).replace(",", " ").split():
            remove_container(engine, dependent)


def _still_held(exc: BaseException) -> bool:
    return (
        isinstance(exc, APIError)
        and not isinstance(exc, NotFound)
        and ("active endpoints" in str(exc) or "in use by task" in str(exc))
    )


def _remove_network_retrying(engine: Engine, network_id: str) -> None:
    # The engine lets go of a removed container's endpoints (a service's tasks) a moment later.
    import tenacity  # here: every run imports this module, the first removal of a network needs it

    retrying = tenacity.Retrying(
        retry=tenacity.retry_if_exception(_still_held),
        stop=tenacity.stop_after_delay(10),
        wait=tenacity.wait_fixed(0.2),
        reraise=True,
    )
    retrying(engine.remove_network, network_id)


def _network_exists(engine: Engine, network_id: str) -> bool:
    try:
        engine.inspect_network(network_id)
    except NotFound:
        return False
    return True


def remove_network(engine: Client, network_id: str) -> None:
    """Remove a network under the engine's gate; containers still on it that are not the
    caller's (e.g. made with the raw SDK) are disconnected first. Gone already is fine."""
    engine = as_engine(engine)
    with gate_for(engine).removing():
        try:
            _remove_network_retrying(engine, network_id)
        except NotFound:
            pass
        except APIError as exc:
            if "active endpoints" not in str(exc):
                if not _network_exists(engine, network_id):
                    return  # a swarm's overlay the swarm took meanwhile: 500 "network ... not found"
                raise
            for container_id in engine.inspect_network(network_id).get("Containers") or {}:
                try:
                    engine.disconnect_container_from_network(container_id, network_id, force=True)
                except APIError:
                    pass
            _remove_network_retrying(engine, network_id)


def remove_network_if_unused(engine: Client, name: str) -> None:
    """Remove the network called ``name`` if nothing is attached (``docker_gwbridge`` after
    leaving a swarm that we joined)."""
    engine = as_engine(engine)
    for network in engine.networks(names=[name]):
        if network["Name"] == name and not engine.inspect_network(network["Id"]).get("Containers"):
            try:
                engine.remove_network(network["Id"])
            except APIError:
                pass


def remove_containers_named(engine: Client, docker_name: str, filters: Filters) -> None:
    """Undo a half-made container (an interrupted create may still have made it)."""
    engine = as_engine(engine)
    # Docker matches the filter against "/NAME", Podman against "NAME": the slash is optional.
    for c in engine.containers(all=True, filters={**filters, "name": f"^/?{re.escape(docker_name)}$"}):
        remove_container(engine, c["Id"])


def remove_networks_named(engine: Client, docker_name: str, filters: Filters) -> None:
    """Undo a half-made network (an interrupted create may still have made it)."""
    engine = as_engine(engine)
    for net in engine.networks(names=[docker_name], filters=filters):
        remove_network(engine, net["Id"])


def remove_service(engine: Engine, service_id: str) -> None:
    """Gone already is fine."""
    try:
        engine.remove_service(service_id)
    except NotFound:
        pass


def remove_services(engine: Client, filters: Filters) -> list[str]:
    """Remove the swarm services matching ``filters`` (none where the engine is no manager)."""
    engine = as_engine(engine)
    try:
        services = engine.services(filters=filters)
    except APIError:
        return []  # not a swarm manager: it has no services
    for service in services:
        remove_service(engine, service["ID"])
    return [s["Spec"]["Name"] for s in services]


def remove_volume(engine: Engine, name: str, *, force: bool = False) -> None:
    """Gone already is fine; one a container mounts is refused (APIError)."""
    try:
        engine.remove_volume(name, force=force)
    except NotFound:
        pass


def remove_volumes(engine: Client, filters: Filters) -> list[str]:
    """Remove the named volumes the plugin made (``container(volumes=["name:/in"])`` of a
    volume that did not exist), once no container uses them; the names of those removed.

    A volume that a container of someone else mounts stays (another run that named the same
    volume, on this machine or another sharing the engine): a later run's prune removes it
    once its maker's run is over and nothing mounts it."""
    engine = as_engine(engine)
    removed = []
    for volume in engine.volumes(filters=filters):
        name = volume["Name"]
        try:
            remove_volume(engine, name, force=True)
        except APIError:
            users = {c["Id"] for c in engine.containers(all=True, filters={"volume": name})}
            if not users - {c["Id"] for c in engine.containers(all=True, filters={**filters, "volume": name})}:
                raise
            continue
        removed.append(name)
    return removed


def remove_labelled(engine: Client, filters: Filters, *, networks: bool = True) -> tuple[list[str], list[str]]:
    """Remove the containers, then (unless told not to) the networks, matching ``filters``,
    concurrently; (container names, network names)."""
    engine = as_engine(engine)
    containers = engine.containers(all=True, filters=filters)
    if containers:
        with ThreadPoolExecutor(max_workers=min(8, len(containers))) as pool:
            list(pool.map(lambda c: remove_container(engine, c["Id"]), containers))
    remove_volumes(engine, filters)
    found: list[Info] = engine.networks(filters=filters) if networks else []
    if found:
        with ThreadPoolExecutor(max_workers=min(8, len(found))) as pool:
            list(pool.map(lambda n: remove_network(engine, n["Id"]), found))
    return [c["Names"][0].lstrip("/") for c in containers], [n["Name"] for n in found]
