"""Container.endpoint(): where the test process reaches a published port.

The engine reached over TCP is the default engine behind a relay this test runs (a TCP
port on loopback forwarded to the engine's unix socket): the inner run sees a
``tcp://localhost:PORT`` engine, as a CI job sees ``tcp://docker:2375``.
"""

from __future__ import annotations

import os
import socket
import urllib.error
import urllib.request

import pytest
from relay import Relay

from pytest_dockernet import Listening, Topology
from pytest_dockernet.handles import PublishedPort, published_host

HTTPD = ["sh", "-c", "mkdir -p /www && echo hello > /www/index.html && exec httpd -f -p 80 -h /www"]


def get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.read().decode().strip()


def web(dockernet, ports):
    return dockernet.container("web", command=HTTPD, ports=ports, ready=Listening(80))


def test_a_local_engines_port_is_on_loopback(dockernet):
    c = web(dockernet, {80: None})

    ep = c.endpoint(80)
    assert ep == PublishedPort("127.0.0.1", c.host_port(80)) == ("127.0.0.1", c.host_port(80))
    assert (ep.host, ep.port) == ep
    assert str(ep) == f"127.0.0.1:{ep.port}"
    assert get(f"http://{ep}/") == "hello"
    with socket.create_connection(ep, timeout=5) as s:
        s.sendall(b"GET / HTTP/1.0\r\n\r\n")
        assert s.recv(64).startswith(b"HTTP/1.")


def test_a_port_published_on_one_address_is_reached_there(dockernet):
    c = web(dockernet, {"80/tcp": ("127.0.0.1", None)})

    assert c.endpoint(80).host == "127.0.0.1"
    assert get(f"http://{c.endpoint(80)}/") == "hello"


def test_a_port_published_on_ipv6_only_is_reached_on_ipv6_loopback(dockernet):
    # Docker 20.10 answers such a binding on ::1 only: 127.0.0.1 is refused.
    c = web(dockernet, {"80/tcp": ("::", None)})

    ep = c.endpoint("80/tcp")
    assert ep.host == "::1"
    assert str(ep) == f"[::1]:{ep.port}"
    assert get(f"http://{ep}/") == "hello"


def test_an_unpublished_port_is_named(dockernet):
    c = web(dockernet, {80: None})
    with pytest.raises(ValueError, match=r"container 'web' publishes no host port for 81/tcp"):
        c.endpoint(81)
    with pytest.raises(ValueError, match=r"publishes no host port for 80/udp"):
        c.endpoint(80, "udp")


def test_a_compose_service_has_endpoints(dockernet, tmp_path):
    (tmp_path / "compose.yaml").write_text(
        "services:\n  web:\n    image: ${PROBE_IMAGE}\n"
        "    command: sh -c 'mkdir -p /www && echo hello > /www/index.html && exec httpd -f -p 80 -h /www'\n"
        "    ports: ['80']\n"
    )
    stack = dockernet.compose(tmp_path / "compose.yaml", env={"PROBE_IMAGE": dockernet.probe_image})
    stack["web"].wait_until(Listening(80))

    ep = stack["web"].endpoint(80)
    assert ep.host == "127.0.0.1"
    assert get(f"http://{ep}/") == "hello"


@pytest.mark.parametrize(
    "url, override, host_ip, host",
    [
        ("http://docker:2375", "", "0.0.0.0", "docker"),  # docker-py names tcp:// http://
        ("tcp://docker:2375", "", "192.168.5.4", "docker"),
        ("http://localhost:2375", "", "127.0.0.1", "localhost"),  # a forward to an engine here
        ("tcp://docker:2375", "127.0.0.1", "127.0.0.1", "127.0.0.1"),  # a forward of the user's
        ("https://10.0.0.2:2376", "", "0.0.0.0", "10.0.0.2"),
        ("ssh://ci@build-box:22", "", "0.0.0.0", "build-box"),
        ("http://[fd00::2]:2375", "", "::", "fd00::2"),
        ("unix:///var/run/docker.sock", "", "0.0.0.0", "127.0.0.1"),
        ("unix:///var/run/docker.sock", "", "", "127.0.0.1"),
        ("unix:///var/run/docker.sock", "", "::", "::1"),
        ("unix:///var/run/docker.sock", "", "192.168.5.4", "192.168.5.4"),
        ("npipe:////./pipe/docker_engine", "", "0.0.0.0", "127.0.0.1"),
        ("tcp://docker:2375", "gateway.local", "0.0.0.0", "gateway.local"),
        ("unix:///var/run/docker.sock", "10.1.1.1", "::", "10.1.1.1"),
    ],
)
def test_the_host_for_each_kind_of_engine(url, override, host_ip, host):
    assert published_host(url, override, host_ip) == host


def test_a_port_on_a_remote_engines_loopback_is_refused_naming_the_way_out():
    # Measured against a second dockerd over tcp://: such a port refuses the connection.
    with pytest.raises(
        ValueError, match=r"published on 127.0.0.1 of the engine's host \(docker\).*ports=\{PORT: None\}"
    ):
        published_host("http://docker:2375", "", "127.0.0.1")


def test_a_bad_host_address_for_a_topology(dockernet_client):
    with pytest.raises(ValueError, match=r"host_address='docker:2375' is not a host name or IP address"):
        Topology(dockernet_client, host_address="docker:2375")


# -- an engine reached over TCP, and the override --------------------------------------------


@pytest.fixture
def tcp_engine(monkeypatch):
    if not os.path.exists("/var/run/docker.sock"):
        pytest.skip("needs the engine's unix socket to relay")
    relay = Relay()
    monkeypatch.setenv("DOCKER_HOST", f"tcp://localhost:{relay.port}")
    yield relay
    relay.close()


INNER = """
import urllib.request

from pytest_dockernet import Listening
from pytest_dockernet.engine import where

HTTPD = ["sh", "-c", "mkdir -p /www && echo hello > /www/index.html && exec httpd -f -p 80 -h /www"]


def test_endpoint(dockernet):
    assert where(dockernet.context.engine).startswith("http://localhost:")  # the relayed engine
    c = dockernet.container("web", command=HTTPD, ports={{80: None}}, ready=Listening(80))
    ep = c.endpoint(80)
    assert ep == ({host!r}, c.host_port(80))
    with urllib.request.urlopen(f"http://{{ep}}/", timeout=5) as response:
        assert response.read().strip() == b"hello"
"""


def test_an_engine_over_tcp_publishes_on_its_host(inner_runs, pytester, tcp_engine):
    pytester.makepyfile(test_inner=INNER.format(host="localhost"))
    result = inner_runs.run_subprocess("-p", "no:cacheprovider", "--dockernet-require")
    result.assert_outcomes(passed=1)


def test_the_host_address_option_wins(inner_runs, pytester, tcp_engine):
    pytester.makepyfile(test_inner=INNER.format(host="127.0.0.1"))
    result = inner_runs.run_subprocess(
        "-p", "no:cacheprovider", "--dockernet-require", "--dockernet-host-address=127.0.0.1"
    )
    result.assert_outcomes(passed=1)


def test_the_host_address_ini_key(inner_runs, pytester, tcp_engine):
    pytester.makeini("[pytest]\ndockernet_host_address = 127.0.0.1\n")
    pytester.makepyfile(test_inner=INNER.format(host="127.0.0.1"))
    result = inner_runs.run_subprocess("-p", "no:cacheprovider", "--dockernet-require")
    result.assert_outcomes(passed=1)


@pytest.mark.parametrize(
    "args, ini, message",
    [
        (["--dockernet-host-address=tcp://docker:2375"], "", "'tcp://docker:2375' is not a host name or IP address"),
        (["--dockernet-host-address=docker:2375"], "", "'docker:2375' is not a host name or IP address"),
        (["--dockernet-host-address=0.0.0.0"], "", "'0.0.0.0' is the any-address"),
        ([], "dockernet_host_address = two words", "'two words' is not a host name or IP address"),
    ],
    ids=["url", "port", "any-address", "ini"],
)
def test_bad_host_addresses_are_usage_errors(pytester, args, ini, message):
    if ini:
        pytester.makeini(f"[pytest]\n{ini}\n")
    pytester.makepyfile("def test_nothing(): pass")
    result = pytester.runpytest(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: --dockernet-host-address (ini dockernet_host_address): {message}*"])
    result.stdout.no_fnmatch_line("*passed*")
