"""Bad input, found before anything is made: every public call and option with wrong types,
empty values, NaN and infinities, names the engine cannot take, unusable subnets. Each gets
an error naming the argument, and nothing is left on the engine."""

import math
import re

import pytest

from pytest_dockernet import (
    DockernetError,
    assert_isolated,
    assert_not_resolves,
    assert_reachable,
    assert_resolves,
    assert_unreachable,
    reachability,
)
from pytest_dockernet.labels import TOPOLOGY


def engine_leftovers(topology):
    """Containers and networks of the topology on the engine that it does not know of."""
    api = topology.client.api
    filters = {"label": f"{TOPOLOGY}={topology.id}"}
    known = {c.id for c in topology.containers_list} | {c.sidecar_id for c in topology.containers_list}
    nets = {n.id for n in topology.networks_list}
    return (
        [c["Names"][0] for c in api.containers(all=True, filters=filters) if c["Id"] not in known],
        [n["Name"] for n in api.networks(filters=filters) if n["Id"] not in nets],
    )


NETWORK_CASES = [
    ({"name": "web\n"}, ValueError, r"network name 'web\\n' is not a valid name"),
    ({"name": "n" * 64}, ValueError, r"is 64 characters long: .* at most 63"),
    ({"name": 5}, ValueError, r"network name 5 is not a valid name"),
    ({"internal": "no"}, TypeError, r"internal must be True or False, got 'no'"),
    ({"ipv6": "no"}, TypeError, r"ipv6 must be True or False, got 'no'"),
    ({"encrypted": 1}, TypeError, r"encrypted must be True or False"),
    ({"subnet": 5}, TypeError, r"subnet=5 must be a string"),
    ({"subnet": "10.98.1.0/31"}, ValueError, r"subnet='10.98.1.0/31' is too small"),
    ({"subnet": "10.98.1.1/32"}, ValueError, r"subnet='10.98.1.1/32' is too small"),
    ({"subnet": "127.98.0.0/24"}, ValueError, r"cannot be used for containers: it is a loopback range"),
    ({"subnet": "169.254.7.0/24"}, ValueError, r"it is a link-local range"),
    ({"subnet": "0.0.0.0/24"}, ValueError, r"it is in 0.0.0.0/8"),
    ({"subnet": "224.1.0.0/24"}, ValueError, r"it is a multicast range"),
    ({"subnet": "10.98.1.0/24", "gateway": 7}, TypeError, r"gateway=7 must be a string"),
]


@pytest.mark.parametrize("kwargs, kind, match", NETWORK_CASES, ids=[str(c[0]) for c in NETWORK_CASES])
def test_bad_network_arguments(dockernet, kwargs, kind, match):
    kwargs = {"name": "net", **kwargs}
    with pytest.raises(kind, match=match):
        dockernet.network(kwargs.pop("name"), **kwargs)
    assert dockernet.networks_list == []
    assert engine_leftovers(dockernet) == ([], [])


CONTAINER_CASES = [
    ({"name": "c" * 300}, ValueError, r"is 300 characters long"),
    ({"image": ""}, ValueError, r"image='' is not an image reference"),
    ({"image": 5}, ValueError, r"image=5 is not an image reference"),
    ({"image": "UPPER/Case:x"}, ValueError, r"image='UPPER/Case:x' is not an image reference the engine takes"),
    ({"command": 123}, TypeError, r"command=123 must be a string or a non-empty list of strings"),
    ({"command": []}, TypeError, r"command=\[\] must be a string or a non-empty list"),
    ({"ports": [8080]}, TypeError, r"ports must be a dict"),
    ({"ports": {"8080/xyz": None}}, ValueError, r"ports: '8080/xyz' is not a container port .*tcp, udp, sctp"),
    ({"ports": {70000: None}}, ValueError, r"ports: 70000 is not a container port"),
    ({"ports": {8080: -1}}, ValueError, r"ports\[8080\]=-1 is not a host port"),
    ({"environment": "A=1"}, TypeError, r"environment must be a dict \{'NAME': 'value'\} or a list"),
    ({"environment": {"A": 1}}, TypeError, r"environment must map names to strings"),
    ({"privileged": "yes"}, TypeError, r"privileged must be True or False"),
    ({"cap_add": "NET_ADMIN"}, TypeError, r"cap_add must be a list of capability names"),
    ({"cap_add": 5}, TypeError, r"cap_add must be a list of capability names, got 5"),
]


@pytest.mark.parametrize("kwargs, kind, match", CONTAINER_CASES, ids=[str(c[0])[:40] for c in CONTAINER_CASES])
def test_bad_container_arguments_are_refused_before_anything_is_made(dockernet, kwargs, kind, match):
    kwargs = {"name": "c", **kwargs}
    with pytest.raises(kind, match=match):
        dockernet.container(kwargs.pop("name"), **kwargs)
    # Not even the default network is made for a container refused up front.
    assert dockernet.containers_list == [] and dockernet.networks_list == []
    assert engine_leftovers(dockernet) == ([], [])


def test_strings_are_not_lists(dockernet):
    net = dockernet.network("net")
    with pytest.raises(TypeError, match=r"networks\['net'\] aliases must be a list of names such as \['db'\]"):
        dockernet.container("c", networks={net: {"aliases": "database"}})
    c = dockernet.container("c", networks=[net])
    other = dockernet.network("other")
    with pytest.raises(TypeError, match=r"aliases must be a list of names such as \['db'\], got 'db'"):
        dockernet.connect(c, other, aliases="db")
    with pytest.raises(TypeError, match=r"targets must be a list such as .*, got 'web'"):
        reachability([c], "web")
    with pytest.raises(TypeError, match=r"sources must be a list"):
        reachability("c", [c])
    with pytest.raises(TypeError, match=r"b must be a list"):
        assert_isolated([c], "web")
    assert [n.name for n in c.networks] == ["net"]
    assert engine_leftovers(dockernet) == ([], [])


def test_pinned_address_must_be_a_host_address(dockernet):
    net = dockernet.network("net", subnet="10.97.31.0/24", gateway="10.97.31.1")
    for address, what in [
        ("10.97.31.0", "the network's own"),
        ("10.97.31.1", "its gateway's"),
        ("10.97.31.255", "its broadcast"),
    ]:
        with pytest.raises(ValueError, match=rf"ipv4_address='{re.escape(address)}' is {what} address"):
            dockernet.container("c", networks={net: {"ipv4_address": address}})
    assert dockernet.containers_list == []
    assert engine_leftovers(dockernet) == ([], [])


@pytest.mark.parametrize("timeout", [math.nan, math.inf, -math.inf, -1, 0, "1", True])
def test_timeouts_must_be_finite_and_positive(dockernet, timeout):
    a = dockernet.container("a")
    for helper, args in [
        (assert_reachable, (a, "a")),
        (assert_unreachable, (a, "10.97.0.1")),
        (assert_resolves, (a, "a")),
        (assert_not_resolves, (a, "nobody")),
    ]:
        with pytest.raises(ValueError, match=r"timeout=.* must be a positive number of seconds"):
            helper(*args, timeout=timeout)
    with pytest.raises(ValueError, match=r"timeout=.* must be a positive number of seconds"):
        assert_isolated([a], [a], timeout=timeout)
    with pytest.raises(ValueError, match=r"timeout=.* must be a positive number of seconds"):
        reachability([a], [a], timeout=timeout)


def test_no_vacuous_helper(dockernet):
    a = dockernet.container("a")
    with pytest.raises(ValueError, match=r"to=\[\] expects no address at all: use assert_not_resolves"):
        assert_resolves(a, "no-such-name", to=[])
    for name in (None, "", "  ", 5):
        with pytest.raises(ValueError, match=r"name=.* must be a non-empty host name"):
            assert_not_resolves(a, name)
        with pytest.raises(ValueError, match=r"name=.* must be a non-empty host name"):
            assert_resolves(a, name)
    with pytest.raises(TypeError, match=r"to: <Network default .*> is neither a Container nor an IP address"):
        assert_resolves(a, "a", to=[dockernet.get_network("default")])
    with pytest.raises(TypeError, match=r"to must be a list"):
        assert_resolves(a, "a", to=dockernet.get_network("default"))


def test_an_explicit_subnet_never_takes_from_the_pool(dockernet, pytestconfig):
    """A subnet the engine refused leaves the pool as it was; one it took is the pool's
    again once its network is removed."""
    from pytest_dockernet.plugin import STATE

    pool = pytestconfig.stash[STATE].settings.subnet_pool.split(":")[0]
    dockernet.network("first")  # a pool subnet, so the engine refuses the whole pool below
    with pytest.raises(DockernetError, match=r"creating network 'big' failed: .*overlap"):
        dockernet.network("big", subnet=pool)
    assert dockernet.network("plain").subnet  # the pool is not used up


def test_a_network_with_the_whole_pool_gives_it_back(dockernet_client, pytestconfig):
    from pytest_dockernet import Topology
    from pytest_dockernet.plugin import STATE
    from pytest_dockernet.subnets import SubnetAllocator

    image = pytestconfig.stash[STATE].probe_image()
    allocator = SubnetAllocator("10.97.200.0/22", 24)
    with Topology(dockernet_client, image=image, allocator=allocator) as one:
        one.network("big", subnet="10.97.200.0/22")
        with pytest.raises(DockernetError, match=r"no free /24 left in the subnet pool 10.97.200.0/22"):
            one.network("plain")  # while "big" exists, all of the pool overlaps it
    with Topology(dockernet_client, image=image, allocator=allocator) as two:
        assert two.network("plain").subnet.startswith("10.97.2")


def test_host_driver_marker_puts_default_containers_on_the_host_network(pytester):
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.dockernet(driver="host")
        def test_host(dockernet):
            c = dockernet.container("c")
            assert c.network_mode == "host" and c.ip() is None
            assert dockernet.get_network("default").driver == "host"
        """
    )
    pytester.runpytest("--dockernet-require").assert_outcomes(passed=1)


def test_bad_yes_no_ini_value_names_the_key(pytester):
    pytester.makeini("[pytest]\ndockernet_keep = maybe\n")
    pytester.makepyfile("def test_x(): pass")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*ini dockernet_keep: *maybe*; use true or false*"])


@pytest.mark.parametrize(
    "pool, why",
    [
        ("127.213.0.0/24:24", "it is a loopback range"),
        ("169.254.0.0/16", "it is a link-local range"),
        ("0.0.0.0/8", "it is in 0.0.0.0/8"),
    ],
)
def test_unusable_subnet_pools_are_usage_errors(pytester, pool, why):
    pytester.makepyfile("def test_x(): pass")
    result = pytester.runpytest(f"--dockernet-subnet-pool={pool}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*--dockernet-subnet-pool*cannot be used for containers: {why}*"])
