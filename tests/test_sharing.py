"""container() options that Compose files use: another container's network namespace,
links on user-defined networks, exposed ports; and discard() (one-shot jobs: test_readiness.py)."""

import pytest


def test_a_container_joins_anothers_network_namespace(dockernet):
    net = dockernet.network("net")
    api = dockernet.container("api", command="httpd -f -p 8080", image=dockernet.probe_image, networks=[net])
    sidecar = dockernet.container("sidecar", network_mode="container:api")

    assert sidecar.network_mode == "container:api"
    assert sidecar.ip() == api.ip(net)
    assert sidecar.exec(["nc", "-w", "2", "127.0.0.1", "8080"])[0] == 0
    client = dockernet.container("client", networks=[net])
    dockernet.assert_reachable(client, "api", port=8080)
    dockernet.assert_not_resolves(client, "sidecar")  # it has no endpoint of its own
    with pytest.raises(ValueError, match=r"hostname= cannot be set .* another container's network namespace"):
        dockernet.container("named", network_mode="container:api", hostname="x")
    with pytest.raises(ValueError, match=r"ports= cannot be published .* publish them on 'api'"):
        dockernet.container("published", network_mode="container:api", ports={80: None})


def test_a_link_on_a_user_defined_network_is_an_alias_for_the_linking_container_only(dockernet):
    net = dockernet.network("net")
    db = dockernet.container("db", networks=[net])
    reports = dockernet.container("reports", networks=[net], links={"db": "warehouse"})
    other = dockernet.container("other", networks=[net])

    dockernet.assert_resolves(reports, "warehouse", to=db)
    dockernet.assert_not_resolves(other, "warehouse")
    lonely = dockernet.network("lonely")
    with pytest.raises(ValueError, match=r"links: 'db' shares no network with this container"):
        dockernet.container("far", networks=[lonely], links={"db": "x"})


def test_exposed_ports_are_exposed_not_published(dockernet):
    c = dockernet.container("c", expose=[9100, "53/udp"])
    config = dockernet.client.api.inspect_container(c.id)
    assert {"9100/tcp", "53/udp"} <= set(config["Config"]["ExposedPorts"])
    assert not config["HostConfig"]["PortBindings"]
    with pytest.raises(TypeError, match=r"expose must be a list of ports"):
        dockernet.container("d", expose=9100)


def test_discard_removes_containers_and_networks_now(dockernet):
    net = dockernet.network("net")
    a = dockernet.container("a", networks=[net])
    dockernet.discard(a, net)
    assert (dockernet.containers_list, dockernet.networks_list) == ([], [])
    api = dockernet.client.api
    assert not api.containers(all=True, filters={"id": a.id}) and not api.networks(ids=[net.id])
    dockernet.container("a", networks=[dockernet.network("net")])  # the names are free again
    with pytest.raises(TypeError, match=r"discard\(\): expected a Container"):
        dockernet.discard("a")
