"""A container in the host's network namespace serves on a port of the host."""

import socket

import pytest

from pytest_dockernet import assert_reachable


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# The test connects to 127.0.0.1 itself: the engine must share this machine's network.
@pytest.mark.dockernet(needs=["host-network"])
def test_host_mode_server_is_reachable_from_host_and_bridge(dockernet):
    port = free_port()
    web = dockernet.container(
        "web", network_mode="host", command=["httpd", "-f", "-p", str(port)]
    )
    net = dockernet.network("app")
    client = dockernet.container("client", networks=[net])

    # From a bridge container, the host is its network's gateway address.
    assert_reachable(client, net.gateway, port=port)  # retries until httpd listens
    # The same: a host-mode container means the gateway
    assert_reachable(client, web, port=port)

    # From the test itself.
    with socket.create_connection(("127.0.0.1", port), timeout=5):
        pass
