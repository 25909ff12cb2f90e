"""Reaching an engine: :func:`connect` to one, :func:`where` it answers, whether it still
:func:`answers`, and whether an error means it was :func:`lost`.

Docker's: an engine is reached through docker-py, and a :class:`~.docker_engine.DockerEngine`
is what the rest of the package holds. Users, tests and the lab hold docker-py clients:
:func:`as_engine` takes either.
"""

from __future__ import annotations

import os
from typing import Any, Union

import docker

from ..errors import EngineUnavailable
from .docker_engine import DockerEngine
from .errors import EngineConnectionError
from .port import Engine

DEFAULT_SOCKET = "unix:///var/run/docker.sock"
# What the engine package's helpers take: an Engine, or a docker-py client (a user's, a test's).
Client = Union[Engine, docker.DockerClient]


def as_engine(client: Client) -> Engine:
    """``client`` as an Engine: a docker-py client wrapped, an Engine as it is."""
    return DockerEngine(client) if isinstance(client, docker.DockerClient) else client


def where(engine: Client | None = None) -> str:
    """The engine's address as the user gave it (``DOCKER_HOST``, or the default socket)."""
    url = as_engine(engine).base_url if engine is not None else ""
    return url or os.environ.get("DOCKER_HOST") or DEFAULT_SOCKET


def lost(exc: BaseException | None) -> str | None:
    """A one-line reason when ``exc`` (or what caused it) is the engine no longer answering."""
    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, (EngineConnectionError, ConnectionError)):
            text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            # requests nests urllib3's repr; its innermost part says what happened
            for hint in ("Connection refused", "No such file or directory", "Connection aborted", "Read timed out"):
                if hint in text:
                    return hint.lower()
            return text[:200]
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return None


def connect(base_url: str | None = None, **kwargs: Any) -> DockerEngine:
    """The engine at ``base_url`` (the environment's, ``DOCKER_HOST`` etc., when None), once
    it has answered a ping; else EngineUnavailable saying where and why. ``kwargs`` are
    docker-py's (``timeout=``, ``tls=``...)."""
    where = base_url or os.environ.get("DOCKER_HOST") or f"{DEFAULT_SOCKET} (the default)"
    try:
        client = docker.DockerClient(base_url=base_url, **kwargs) if base_url else docker.from_env(**kwargs)
        client.ping()
    except Exception as exc:  # noqa: BLE001 - the SDK raises many kinds; all mean "no engine"
        raise EngineUnavailable(f"Docker is not available at {where}: {exc}") from None
    return DockerEngine(client)


def answers(url: str, timeout: int = 3) -> bool:
    """Whether the engine at ``url`` answers a ping within ``timeout`` seconds, asked on a
    connection of its own (the run's may be stuck on a read that waits out its timeout)."""
    try:
        client = docker.APIClient(base_url=url, version="auto", timeout=timeout)
    except Exception:  # noqa: BLE001 - the SDK raises many kinds; all mean "gone"
        return False
    try:
        client.ping()
    except Exception:  # noqa: BLE001 - as above
        return False
    finally:
        client.close()
    return True
