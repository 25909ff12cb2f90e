"""Bad input gets a clear error naming the argument, and a call failing half-way leaves nothing."""

import pytest

from pytest_dockernet import DockernetError
from pytest_dockernet.engine import remove_network
from pytest_dockernet.labels import TOPOLOGY


def leftovers(topology):
    """Containers and networks of the topology on the engine that it does not know of."""
    api = topology.client.api
    filters = {"label": f"{TOPOLOGY}={topology.id}"}
    known_containers = {c.id for c in topology.containers_list} | {
        c.sidecar_id for c in topology.containers_list if c.sidecar_id
    }
    known_networks = {n.id for n in topology.networks_list}
    return (
        [c["Names"][0] for c in api.containers(all=True, filters=filters) if c["Id"] not in known_containers],
        [n["Name"] for n in api.networks(filters=filters) if n["Id"] not in known_networks],
    )


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"driver": "macvlan2"}, r"driver='macvlan2' is not supported: use one of bridge, host, overlay"),
        ({"subnet": "10.98.1.0/33"}, r"subnet='10.98.1.0/33' is not a valid IPv4 network"),
        ({"subnet": "10.98.1.7/24"}, r"subnet='10.98.1.7/24' is not a valid IPv4 network"),
        ({"subnet": "10.98.1.0/24", "gateway": "10.98.2.1"}, r"gateway='10.98.2.1' is not a host address of subnet"),
        ({"subnet": "10.98.1.0/24", "gateway": "nonsense"}, r"gateway='nonsense' is not an IPv4 address"),
        ({"gateway": "10.98.1.1"}, r"gateway='10.98.1.1' needs subnet="),
        ({"labels": {"a": 1}}, r"labels must be a dict of str to str"),
        ({"options": ["x"]}, r"options must be a dict of str to str"),
    ],
)
def test_bad_network_arguments(dockernet, kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        dockernet.network("net", **kwargs)
    assert dockernet.networks_list == []
    assert leftovers(dockernet) == ([], [])


def test_bad_names(dockernet):
    with pytest.raises(ValueError, match=r"network name 'no spaces' is not a valid name"):
        dockernet.network("no spaces")
    with pytest.raises(ValueError, match=r"container name '-x' is not a valid name"):
        dockernet.container("-x")
    net = dockernet.network("net")
    with pytest.raises(ValueError, match=r"alias on network 'net' 'bad alias' is not a valid name"):
        dockernet.container("c", networks={net: ["bad alias"]})
    with pytest.raises(TypeError, match=r"give aliases as a list"):
        dockernet.container("c", networks={net: "db"})


def test_logical_names_are_unique_per_factory(dockernet):
    dockernet.network("net")
    with pytest.raises(ValueError, match=r"network name 'net' is already used in this topology"):
        dockernet.network("net")
    dockernet.container("c")
    with pytest.raises(ValueError, match=r"container name 'c' is already used in this topology"):
        dockernet.container("c")
    assert len(dockernet.networks_list) == 2  # net, and the default network of "c"
    assert leftovers(dockernet) == ([], [])


def test_network_of_another_factory(dockernet, dockernet_module):
    foreign = dockernet_module.network("foreign")
    try:
        with pytest.raises(ValueError, match=r"networks: network 'foreign' belongs to another dockernet factory"):
            dockernet.container("c", networks=[foreign])
        mine = dockernet.container("mine")
        with pytest.raises(ValueError, match=r"network: network 'foreign' belongs to another dockernet factory"):
            dockernet.connect(mine, foreign)
        with pytest.raises(TypeError, match=r"networks: expected a Network"):
            dockernet.container("c", networks=["foreign"])
    finally:
        remove_network(dockernet_module.client, foreign.id)
    assert [c.name for c in dockernet.containers_list] == ["mine"]
    assert leftovers(dockernet) == ([], [])


def test_container_of_another_factory(dockernet, dockernet_module):
    foreign = dockernet_module.container("foreign")
    try:
        own = r"container: container 'foreign' belongs to another dockernet factory"
        with pytest.raises(ValueError, match=own):
            dockernet.wait_until(foreign, "running")
        with pytest.raises(ValueError, match=r"discard\(\): container 'foreign' belongs to another dockernet factory"):
            dockernet.discard(foreign)
    finally:
        dockernet_module.discard(foreign)
    assert leftovers(dockernet) == ([], [])


def test_image_that_does_not_exist(dockernet):
    with pytest.raises(
        ValueError, match=r"image 'pytest-dockernet-no-such-image:1' is not on the engine and could not be pulled"
    ):
        dockernet.container("c", image="pytest-dockernet-no-such-image:1")
    assert dockernet.containers_list == []
    assert leftovers(dockernet) == ([], [])


def test_conflicting_network_arguments(dockernet):
    net = dockernet.network("net")
    with pytest.raises(ValueError, match=r"network_mode='host' and networks= exclude each other"):
        dockernet.container("c", network_mode="host", networks=[net])
    with pytest.raises(ValueError, match=r"network_mode='overlay' is not one of"):
        dockernet.container("c", network_mode="overlay")
    with pytest.raises(ValueError, match=r"links: no container named 'x' in this topology"):
        dockernet.container("c", networks=[net], links={"x": "y"})
    with pytest.raises(ValueError, match=r"links= work on the default bridge .* not with network_mode='none'"):
        dockernet.container("c", network_mode="none", links={"x": "y"})
    with pytest.raises(ValueError, match=r"network_mode='container:ghost': no container named 'ghost'"):
        dockernet.container("c", network_mode="container:ghost")
    with pytest.raises(ValueError, match=r"ipv4_address='10.1.2.3' is not an address of that network's subnet"):
        dockernet.container("c", networks={net: {"ipv4_address": "10.1.2.3"}})
    with pytest.raises(ValueError, match=r"unknown keys \['alias'\]"):
        dockernet.container("c", networks={net: {"alias": ["x"]}})
    with pytest.raises(ValueError, match=r"links: no container named 'ghost'"):
        with pytest.warns(DeprecationWarning):
            dockernet.container("c", links={"ghost": "g"})
    with pytest.raises(ValueError, match=r"ports: 'http' is not a container port"):
        dockernet.container("c", networks=[net], ports={"http": 80})
    assert dockernet.containers_list == []
    assert leftovers(dockernet) == ([], [])


def test_container_failing_half_way_leaves_nothing(dockernet):
    one, two = dockernet.network("one"), dockernet.network("two")
    taken = str(two.subnet).rsplit(".", 1)[0] + ".50"
    dockernet.container("first", networks={two: {"ipv4_address": taken}})
    # Created and attached to `one`, then refused on `two` (the address is taken).
    with pytest.raises(DockernetError, match=r"starting container 'second' failed"):
        dockernet.container("second", networks={one: [], two: {"ipv4_address": taken}})
    assert [c.name for c in dockernet.containers_list] == ["first"]
    assert leftovers(dockernet) == ([], [])
    # The name is free again.
    dockernet.container("second", networks=[one])


def test_container_whose_command_cannot_start(dockernet):
    # Created, then refused by the runtime at start: the created container goes too.
    with pytest.raises(DockernetError, match=r"(?s)starting container 'broken' failed: .*no-such-binary"):
        dockernet.container("broken", command=["no-such-binary"])
    assert dockernet.containers_list == []
    assert leftovers(dockernet) == ([], [])


def test_ip_needs_a_network_when_on_several(dockernet):
    one, two = dockernet.network("one"), dockernet.network("two")
    c = dockernet.container("c", networks=[one, two])
    with pytest.raises(ValueError, match=r"container 'c' is on 2 networks \(one, two\): pass network= to ip\(\)"):
        c.ip()
    assert c.ip(one) != c.ip("two")
    with pytest.raises(ValueError, match=r"container 'c' is not on network 'three'"):
        c.ip("three")


def test_closed_factory_refuses_work(dockernet_client):
    from pytest_dockernet import Topology

    with Topology(dockernet_client) as topology:
        topology.container("c")
    with pytest.raises(DockernetError, match="is closed"):
        topology.network("late")
    assert dockernet_client.api.containers(all=True, filters={"label": f"{TOPOLOGY}={topology.id}"}) == []
