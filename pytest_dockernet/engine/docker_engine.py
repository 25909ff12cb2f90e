"""The Docker implementation of :class:`~.port.Engine`: docker-py's low-level client.

The one module of the package that talks to docker-py (with :mod:`.errors`, which names its
exception classes); a Podman engine through its Docker API is this class too.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator, Mapping
from typing import Any, cast

import docker
import docker.errors
import docker.models.containers as docker_models
from docker.utils.build import exclude_paths
from docker.utils.socket import next_frame_header, read_exactly

from .port import Filters, Info


class DockerStream:
    """An attach connection: the raw socket under docker-py's response, and the response."""

    def __init__(self, response: Any):
        self._response = response
        # docker-py hands back a SocketIO wrapper (unix socket, TCP) or the socket itself
        # (TLS); its private ``_sock`` is the socket: tests/test_engine.py::test_attach_socket
        # fails when docker-py changes that.
        sock = getattr(response, "_sock", response)
        if not isinstance(sock, socket.socket):
            response.close()
            raise OSError("the attach stream is not a socket")  # e.g. an ssh:// engine
        self.sock = sock

    def read_frame(self) -> bytes | None:
        _, size = next_frame_header(self.sock)
        if size < 0:
            return None
        return bytes(read_exactly(self.sock, size)) if size else b""

    def pending(self) -> int:
        return int(getattr(self.sock, "pending", lambda: 0)())

    def close(self) -> None:
        for closable in (self.sock, self._response):
            try:
                closable.close()
            except OSError:
                pass


class DockerEngine:
    """An engine reached through docker-py; ``client`` is the SDK's high-level client (what
    the ``docker_client`` fixture hands users)."""

    def __init__(self, client: docker.DockerClient):
        self.client = client
        self._api: Any = client.api  # docker-py's APIClient: its types-docker stubs are partial
        timeout = self._api.timeout
        self.timeout: float | None = timeout if isinstance(timeout, (int, float)) else None
        url = getattr(self._api, "base_url", "") or ""
        if url.startswith("http+docker://"):  # docker-py's name for a local socket: which one it is
            path = getattr(getattr(self._api, "_custom_adapter", None), "socket_path", None)
            url = f"unix://{path}" if path else ""
        self.base_url = url

    def __repr__(self) -> str:
        return f"<DockerEngine {self.base_url or 'default'}>"

    # -- the engine itself
    def ping(self) -> bool:
        return bool(self._api.ping())

    def info(self) -> Info:
        return cast(Info, self._api.info())

    def version(self) -> Info:
        return cast(Info, self._api.version())

    def native_info(self) -> Info | None:
        # Podman says its network backend only in its own API (GET /libpod/info).
        response = self._api._get(self._api._url("/libpod/info"))
        return cast(Info, response.json()) if response.status_code == 200 else None

    def run_healthcheck(self, container: str) -> bool:
        # Podman without systemd schedules no healthcheck; its own API runs one on request
        # and records it as a scheduled one would be (Docker has no such call: 404).
        response = self._api._get(self._api._url("/libpod/containers/{0}/healthcheck", container))
        return bool(response.status_code == 200)

    def close(self) -> None:
        self.client.close()

    # -- containers
    def containers(self, *, all: bool = False, filters: Filters | None = None) -> list[Info]:
        return cast("list[Info]", self._api.containers(all=all, filters=dict(filters or {})))

    def create_container(self, image: str, **options: Any) -> Info:
        return cast(Info, self._api.create_container(image, **options))

    def create_host_config(self, **options: Any) -> Info:
        return cast(Info, self._api.create_host_config(**options))

    def create_networking_config(self, endpoints: Mapping[str, Any]) -> Info:
        return cast(Info, self._api.create_networking_config(dict(endpoints)))

    def create_endpoint_config(self, **options: Any) -> Info:
        return cast(Info, self._api.create_endpoint_config(**options))

    def inspect_container(self, container: str) -> Info:
        return cast(Info, self._api.inspect_container(container))

    def start(self, container: str) -> None:
        self._api.start(container)

    def stop(self, container: str, *, timeout: int) -> None:
        self._api.stop(container, timeout=timeout)

    def kill(self, container: str, *, signal: str | int = "SIGKILL") -> None:
        self._api.kill(container, signal=signal)

    def pause(self, container: str) -> None:
        self._api.pause(container)

    def unpause(self, container: str) -> None:
        self._api.unpause(container)

    def rename(self, container: str, name: str) -> None:
        self._api.rename(container, name)

    def remove_container(self, container: str, *, force: bool = False, v: bool = False) -> None:
        self._api.remove_container(container, force=force, v=v)

    def logs(self, container: str, **options: Any) -> bytes:
        return cast(bytes, self._api.logs(container, **options))

    def top(self, container: str) -> Info:
        return cast(Info, self._api.top(container))

    def port(self, container: str, private_port: int | str) -> list[Info] | None:
        return cast("list[Info] | None", self._api.port(container, private_port))

    def put_archive(self, container: str, path: str, data: bytes) -> None:
        self._api.put_archive(container, path, data)

    def get_archive(self, container: str, path: str) -> bytes:
        stream, _ = self._api.get_archive(container, path)
        return b"".join(stream)

    def run_option(self, key: str) -> str | None:
        if key in docker_models.RUN_HOST_CONFIG_KWARGS:
            return "host_config"
        return "create" if key in docker_models.RUN_CREATE_KWARGS else None

    # -- exec and attach
    def exec_create(self, container: str, cmd: str | list[str], **options: Any) -> Info:
        return cast(Info, self._api.exec_create(container, cmd, **options))

    def exec_start(self, exec_id: str) -> bytes:
        return cast(bytes, self._api.exec_start(exec_id))

    def exec_inspect(self, exec_id: str) -> Info:
        return cast(Info, self._api.exec_inspect(exec_id))

    def attach(self, container: str, *, stdout: bool, stderr: bool) -> DockerStream:
        params = {"stdin": 1, "stdout": int(stdout), "stderr": int(stderr), "stream": 1}
        return DockerStream(self._api.attach_socket(container, params=params))

    # -- networks
    def networks(self, *, names: list[str] | None = None, filters: Filters | None = None) -> list[Info]:
        return cast("list[Info]", self._api.networks(names=names, filters=dict(filters or {})))

    def create_network(self, name: str, **options: Any) -> Info:
        return cast(Info, self._api.create_network(name, **options))

    def inspect_network(self, network: str) -> Info:
        return cast(Info, self._api.inspect_network(network))

    def remove_network(self, network: str) -> None:
        self._api.remove_network(network)

    def connect_container_to_network(self, container: str, network: str, **options: Any) -> None:
        self._api.connect_container_to_network(container, network, **options)

    def disconnect_container_from_network(self, container: str, network: str, *, force: bool = False) -> None:
        self._api.disconnect_container_from_network(container, network, force=force)

    # -- volumes
    def volumes(self, *, filters: Filters | None = None) -> list[Info]:
        """The volumes (the API's ``Volumes`` list, not its envelope)."""
        return cast("list[Info]", (self._api.volumes(filters=dict(filters or {})) or {}).get("Volumes") or [])

    def create_volume(self, name: str, **options: Any) -> Info:
        return cast(Info, self._api.create_volume(name, **options))

    def inspect_volume(self, name: str) -> Info:
        return cast(Info, self._api.inspect_volume(name))

    def remove_volume(self, name: str, *, force: bool = False) -> None:
        self._api.remove_volume(name, force=force)

    # -- images
    def images(self, *, filters: Filters | None = None) -> list[Info]:
        return cast("list[Info]", self._api.images(filters=dict(filters or {})))

    def inspect_image(self, image: str) -> Info:
        return cast(Info, self._api.inspect_image(image))

    def remove_image(self, image: str, **options: Any) -> None:
        self._api.remove_image(image, **options)

    def pull(self, repository: str, *, tag: str) -> None:
        """Pull ``repository:tag``; a failure the engine reports inside its 200 answer (as
        Podman does) raises :class:`docker.errors.APIError` too."""
        for event in self._api.pull(repository, tag=tag, stream=True, decode=True):
            if isinstance(event, dict) and event.get("error"):
                raise docker.errors.APIError(str(event["error"]))

    def build(self, **options: Any) -> Iterator[Info]:
        """The build's progress, decoded: an ``{"error": ...}`` item is the build failing."""
        return cast("Iterator[Info]", self._api.build(decode=True, **options))

    def build_context(self, path: str, dockerfile: str) -> list[str]:
        """The paths (relative to ``path``) that ``build(path=path)`` sends as the context:
        docker-py's own selection, honouring ``.dockerignore`` as it does."""
        patterns: list[str] = []
        ignore = os.path.join(path, ".dockerignore")
        if os.path.exists(ignore):
            with open(ignore) as f:
                lines = [line.strip() for line in f.read().splitlines()]
            patterns = [line for line in lines if line and not line.startswith("#")]
        return sorted(exclude_paths(path, patterns, dockerfile=dockerfile))

    def export_image(self, image: str) -> Iterator[bytes]:
        return cast("Iterator[bytes]", self._api.get_image(image))

    def load_image(self, data: Iterator[bytes]) -> None:
        self._api.load_image(data)

    # -- swarm
    def inspect_swarm(self) -> Info:
        return cast(Info, self._api.inspect_swarm())

    def init_swarm(self, **options: Any) -> None:
        self.client.swarm.init(**options)

    def join_swarm(self, **options: Any) -> None:
        self.client.swarm.join(**options)

    def leave_swarm(self, *, force: bool = False) -> None:
        self.client.swarm.leave(force=force)

    def nodes(self) -> list[Info]:
        return cast("list[Info]", self._api.nodes())

    def remove_node(self, node: str, *, force: bool = False) -> None:
        self._api.remove_node(node, force=force)

    def services(self, *, filters: Filters | None = None) -> list[Info]:
        return cast("list[Info]", self._api.services(filters=dict(filters or {})))

    def create_service(self, **options: Any) -> Info:
        return cast(Info, self._api.create_service(**options))

    def inspect_service(self, service: str) -> Info:
        return cast(Info, self._api.inspect_service(service))

    def update_service(self, service: str, **options: Any) -> None:
        self._api.update_service(service, **options)

    def remove_service(self, service: str) -> None:
        self._api.remove_service(service)

    def tasks(self, *, filters: Filters | None = None) -> list[Info]:
        return cast("list[Info]", self._api.tasks(filters=dict(filters or {})))
