"""Talking to a Docker engine: connecting, running a command, removing what carries a label.

Removal is forgiving: something already gone is not an error, and a network that still
has endpoints is retried while the engine lets go of them (see :func:`remove_network`).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Union

import docker
import docker.errors
import requests.exceptions
import tenacity

from ..errors import DockernetError, EngineUnavailable
from .gate import gate_for

if TYPE_CHECKING:
    from .port import Engine

Filters = dict[str, Any]
# What the removal helpers take: an Engine, or (until every part holds one) a DockerClient.
Client = Union[docker.DockerClient, "Engine"]


def _api(client: Client) -> Any:
    return getattr(client, "api", client)


def where(client: docker.DockerClient | None = None) -> str:
    """The engine's address as the user gave it (``DOCKER_HOST``, or the default socket)."""
    url = getattr(getattr(client, "api", None), "base_url", "") if client is not None else ""
    if url and not url.startswith("http+docker://"):
        return url
    return os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"


def lost(exc: BaseException | None) -> str | None:
    """A one-line reason when ``exc`` (or what caused it) is the engine no longer answering."""
    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, (requests.exceptions.ConnectionError, ConnectionError)):
            text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            # requests nests urllib3's repr; its innermost part says what happened
            for hint in ("Connection refused", "No such file or directory", "Connection aborted", "Read timed out"):
                if hint in text:
                    return hint.lower()
            return text[:200]
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return None


def connect(base_url: str | None = None, **kwargs: Any) -> docker.DockerClient:
    """A client of the engine at ``base_url`` (the environment's, ``DOCKER_HOST`` etc., when
    None) that has answered a ping; else EngineUnavailable saying where and why."""
    where = base_url or os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock (the default)"
    try:
        client = docker.DockerClient(base_url=base_url, **kwargs) if base_url else docker.from_env(**kwargs)
        client.ping()
    except Exception as exc:  # noqa: BLE001 - the SDK raises many kinds; all mean "no engine"
        raise EngineUnavailable(f"Docker is not available at {where}: {exc}") from None
    return client


@contextlib.contextmanager
def undone_on_failure(doing: str, undo: Callable[[], object]) -> Iterator[None]:
    """Make something in the block; if the block fails (an interrupt too), ``undo`` what it
    may have made. The engine's refusal becomes a DockernetError saying what was being done."""
    try:
        yield
    except docker.errors.APIError as exc:
        undo()
        raise DockernetError(f"{doing} failed: {exc.explanation or exc}") from None
    except BaseException:
        undo()
        raise


def exec_in(client: docker.DockerClient, container_id: str, cmd: str | list[str]) -> tuple[int, str]:
    """Run ``cmd`` in a running container: (exit code, stdout+stderr)."""
    api = client.api
    exec_id = api.exec_create(container_id, cmd, stdout=True, stderr=True)["Id"]
    output = api.exec_start(exec_id)
    return api.exec_inspect(exec_id)["ExitCode"], output.decode(errors="replace")


def engine_subnets(client: Client) -> list[str]:
    """Every subnet the engine's networks use now (one API call)."""
    return [
        config["Subnet"]
        for network in _api(client).networks()
        for config in (network.get("IPAM") or {}).get("Config") or []
        if config.get("Subnet")
    ]


def remove_container(client: Client, container_id: str) -> None:
    """Forced, with its anonymous volumes; gone already is fine."""
    try:
        _api(client).remove_container(container_id, force=True, v=True)
    except docker.errors.NotFound:
        pass
    except docker.errors.APIError as exc:
        if "already in progress" not in str(exc):
            raise


def _still_held(exc: BaseException) -> bool:
    return (
        isinstance(exc, docker.errors.APIError)
        and not isinstance(exc, docker.errors.NotFound)
        and ("active endpoints" in str(exc) or "in use by task" in str(exc))
    )


# The engine lets go of a removed container's endpoints (a service's tasks) a moment later.
@tenacity.retry(
    retry=tenacity.retry_if_exception(_still_held),
    stop=tenacity.stop_after_delay(10),
    wait=tenacity.wait_fixed(0.2),
    reraise=True,
)
def _remove_network_retrying(client: Client, network_id: str) -> None:
    _api(client).remove_network(network_id)


def remove_network(client: Client, network_id: str) -> None:
    """Remove a network under the engine's gate; containers still on it that are not the
    caller's (e.g. made with the raw SDK) are disconnected first. Gone already is fine."""
    with gate_for(client).removing():
        try:
            _remove_network_retrying(client, network_id)
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as exc:
            if "active endpoints" not in str(exc):
                raise
            for container_id in _api(client).inspect_network(network_id).get("Containers") or {}:
                try:
                    _api(client).disconnect_container_from_network(container_id, network_id, force=True)
                except docker.errors.APIError:
                    pass
            _remove_network_retrying(client, network_id)


def remove_network_if_unused(client: docker.DockerClient, name: str) -> None:
    """Remove the network called ``name`` if nothing is attached (``docker_gwbridge`` after
    leaving a swarm that we joined)."""
    for network in client.api.networks(names=[name]):
        if network["Name"] == name and not client.api.inspect_network(network["Id"]).get("Containers"):
            try:
                client.api.remove_network(network["Id"])
            except docker.errors.APIError:
                pass


def has_network(client: docker.DockerClient, name: str) -> bool:
    return any(n["Name"] == name for n in client.api.networks(names=[name]))


def remove_containers_named(client: Client, docker_name: str, filters: Filters) -> None:
    """Undo a half-made container (an interrupted create may still have made it)."""
    for c in _api(client).containers(all=True, filters={**filters, "name": f"^/{docker_name}$"}):
        remove_container(client, c["Id"])


def remove_networks_named(client: Client, docker_name: str, filters: Filters) -> None:
    """Undo a half-made network (an interrupted create may still have made it)."""
    for net in _api(client).networks(names=[docker_name], filters=filters):
        remove_network(client, net["Id"])


def remove_services(client: docker.DockerClient, filters: Filters) -> list[str]:
    """Remove the swarm services matching ``filters`` (none where the engine is no manager)."""
    try:
        services = client.api.services(filters=filters)  # type: ignore[no-untyped-call]  # types-docker: unannotated
    except docker.errors.APIError:
        return []  # not a swarm manager: it has no services
    for service in services:
        try:
            client.api.remove_service(service["ID"])  # type: ignore[no-untyped-call]  # types-docker: unannotated
        except docker.errors.NotFound:
            pass
    return [s["Spec"]["Name"] for s in services]


def remove_volumes(client: docker.DockerClient, filters: Filters) -> list[str]:
    """Remove the named volumes the plugin made (``container(volumes=["name:/in"])`` of a
    volume that did not exist), once no container uses them; their names."""
    found = (client.api.volumes(filters=filters) or {}).get("Volumes") or []
    for volume in found:
        try:
            client.api.remove_volume(volume["Name"], force=True)
        except docker.errors.NotFound:
            pass
    return [v["Name"] for v in found]


def remove_labelled(
    client: docker.DockerClient, filters: Filters, *, networks: bool = True
) -> tuple[list[str], list[str]]:
    """Remove the containers, then (unless told not to) the networks, matching ``filters``,
    concurrently; (container names, network names)."""
    containers = client.api.containers(all=True, filters=filters)
    if containers:
        with ThreadPoolExecutor(max_workers=min(8, len(containers))) as pool:
            list(pool.map(lambda c: remove_container(client, c["Id"]), containers))
    remove_volumes(client, filters)
    found = client.api.networks(filters=filters) if networks else []
    if found:
        with ThreadPoolExecutor(max_workers=min(8, len(found))) as pool:
            list(pool.map(lambda n: remove_network(client, n["Id"]), found))
    return [c["Names"][0].lstrip("/") for c in containers], [n["Name"] for n in found]
