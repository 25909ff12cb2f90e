"""The seam to docker-py (pytest_dockernet.engine): what DockerEngine relies on in docker-py
beyond its documented calls, the errors the engine package names, and how an engine is reached."""

from __future__ import annotations

import socket

import docker
import docker.errors
import pytest
import requests.exceptions

from pytest_dockernet.engine import answers, as_engine, connect, errors, where
from pytest_dockernet.engine.docker_engine import DockerEngine
from pytest_dockernet.errors import EngineUnavailable
from pytest_dockernet.plugin import STATE

pytestmark = pytest.mark.dockernet


def test_attach_socket(dockernet_client, pytestconfig):
    """DockerStream takes the socket from docker-py's private ``_sock`` (engine/docker_engine.py):
    a line written to a shell's stdin comes back as one frame of its stdout. This fails when
    docker-py changes that attribute."""
    state = pytestconfig.stash[STATE]
    engine = DockerEngine(dockernet_client)
    made = engine.create_container(
        state.probe_image(), command=["sh", "-s"], stdin_open=True, labels=state.identity.labels()
    )["Id"]
    try:
        stream = engine.attach(made, stdout=True, stderr=True)
        try:
            assert isinstance(stream.sock, socket.socket)
            stream.sock.settimeout(30)
            engine.start(made)
            stream.sock.sendall(b"echo attached; echo to-stderr >&2\n")
            assert sorted([stream.read_frame(), stream.read_frame()]) == [b"attached\n", b"to-stderr\n"]
            stream.sock.sendall(b"exit\n")
            assert stream.read_frame() is None  # the shell ended: so did the stream
        finally:
            stream.close()
    finally:
        engine.remove_container(made, force=True)


def test_the_engine_errors_are_docker_pys():
    assert errors.APIError is docker.errors.APIError
    assert errors.NotFound is docker.errors.NotFound
    assert errors.ImageNotFound is docker.errors.ImageNotFound
    assert errors.BuildError is docker.errors.BuildError
    assert errors.EngineException is docker.errors.DockerException
    assert errors.EngineConnectionError is requests.exceptions.ConnectionError


def test_a_pull_that_fails_raises_an_api_error(dockernet_client):
    with pytest.raises(errors.APIError):
        DockerEngine(dockernet_client).pull("pytest-dockernet-test/no-such-image", tag="1")


def test_reaching_an_engine(dockernet_client, tmp_path):
    engine = connect()
    try:
        assert isinstance(engine, DockerEngine) and engine.ping()
        assert where(engine) == where(dockernet_client) == where()
        assert answers(where(engine))
    finally:
        engine.close()
    nowhere = f"unix://{tmp_path}/no.sock"
    with pytest.raises(EngineUnavailable, match=f"Docker is not available at {nowhere}: "):
        connect(nowhere)
    assert not answers(nowhere)


def test_a_docker_py_client_is_taken_as_an_engine(dockernet_client):
    engine = as_engine(dockernet_client)
    assert isinstance(engine, DockerEngine) and engine.client is dockernet_client
    assert as_engine(engine) is engine
