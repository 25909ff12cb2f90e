"""Two containers on a user-defined bridge network reach each other by name."""

from pytest_dockernet import assert_reachable, assert_resolves


def test_containers_reach_each_other_by_name(dockernet):
    net = dockernet.network("app")
    # Without image=, a container runs the probe image (busybox), so busybox httpd
    # serves.
    web = dockernet.container(
        "web", networks=[net], command=["httpd", "-f", "-p", "8080"]
    )
    client = dockernet.container("client", networks=[net])

    assert_reachable(client, "web")  # ICMP echo
    assert_reachable(client, "web", port=8080)  # TCP connect
    assert_reachable(web, "client")

    # A logical name resolves to the container's address on the shared network.
    assert_resolves(client, "web", to=web)
    assert_resolves(web, "client", to=client.ip(net))
