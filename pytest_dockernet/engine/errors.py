"""What an :class:`~.port.Engine` raises: a refusal (:class:`APIError`, with ``explanation``),
something missing (:class:`NotFound`, :class:`ImageNotFound`), any failure of the client
(:class:`EngineException`), and the connection lost (:class:`EngineConnectionError`).
docker-py's classes: every implementation of the port raises these."""

from __future__ import annotations

import docker.errors
import requests.exceptions

APIError = docker.errors.APIError
NotFound = docker.errors.NotFound
ImageNotFound = docker.errors.ImageNotFound
BuildError = docker.errors.BuildError
EngineException = docker.errors.DockerException
EngineConnectionError = requests.exceptions.ConnectionError

__all__ = ["APIError", "BuildError", "EngineConnectionError", "EngineException", "ImageNotFound", "NotFound"]
