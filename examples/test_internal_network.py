"""An internal network: its containers reach each other, but nothing outside it.

Docker 20.10 still lets containers of an internal network reach the host's own addresses
(e.g. their gateway); what it blocks is traffic forwarded anywhere else. So "outside" is
played by a server on another network, published on a port of the host.
"""

import pytest

from pytest_dockernet import assert_reachable, assert_unreachable


# An engine without them skips it, naming the capability: its positive control reaches a
# published port at a network's gateway (not on rootless Docker).
@pytest.mark.dockernet(needs=["internal-dns", "gateway-ports"])
def test_internal_network_keeps_its_containers_in(dockernet, dockernet_client):
    internal = dockernet.network("internal", internal=True)
    app = dockernet.container("app", networks=[internal])
    dockernet.container("cache", networks=[internal])

    outside = dockernet.network("outside")
    server = dockernet.container(
        "server",
        networks=[outside],
        command=["httpd", "-f", "-p", "8080"],
        ports={"8080/tcp": None},
    )
    published = int(dockernet_client.api.port(server.id, 8080)[0]["HostPort"])

    assert_reachable(app, "cache")
    assert_unreachable(app, server, port=8080)  # directly
    # Through the published port
    assert_unreachable(app, internal.gateway, port=published)

    # The same published port, seen from a container of an ordinary bridge network.
    lan = dockernet.network("lan")
    visitor = dockernet.container("visitor", networks=[lan])
    assert_reachable(visitor, lan.gateway, port=published)
