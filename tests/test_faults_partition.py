"""Partitions (issue 12): between containers and groups, one way, overlapping, healed, over
IPv4 and IPv6 (issue 20); from and to images with no shell; verified in each member's
namespace; nothing left in the containers, on the engine or the host."""

from __future__ import annotations

import pytest
from faults_support import NO_SHELL, helper_of, host_rules, ipv6_of, link_local_of, run_in_helper

from pytest_dockernet import (
    DockernetError,
    Partition,
    assert_reachable,
    assert_resolves,
    assert_unreachable,
    reachability,
)
from pytest_dockernet.labels import ROLE

pytestmark = pytest.mark.dockernet


def test_a_partition_cuts_two_containers_apart_and_heal_restores_them(dockernet, three):
    a, b, c = three
    before = host_rules()
    partition = dockernet.partition(a, b)
    assert isinstance(partition, Partition) and dockernet.faults == [partition]
    assert_unreachable(a, b)
    assert_unreachable(b, a, port=80)
    assert_reachable(a, c)
    assert_reachable(b, c, port=80)
    assert_resolves(a, "b", to=b)  # still on the network: the name resolves
    assert "partition #1 [a] | [b], drop, since " in dockernet.describe()
    partition.heal()
    assert partition.healed and dockernet.faults == []
    assert "faults in force" not in dockernet.describe()
    assert "partition #1 [a] | [b], drop, since " in dockernet.describe()  # lifted during the test
    assert ", lifted after " in dockernet.describe()
    assert reachability(three, three).unreachable() == []
    assert host_rules() == before == []  # faults never touch the host's own rules


def test_one_way_drops_what_a_starts_towards_b_only(dockernet, three):
    """b can still open connections to a (and ping it): a's replies belong to connections
    b started, which the rule lets pass."""
    a, b, _ = three
    with dockernet.partition([a], [b], one_way=True):
        assert_unreachable(a, b, port=80)
        assert_unreachable(a, b)
        assert_reachable(b, a, port=80)
        assert_reachable(b, a)
        assert "[a] -> [b]" in dockernet.describe()
    assert_reachable(a, b, port=80)


def test_overlapping_group_partitions_heal_one_at_a_time(dockernet):
    net = dockernet.network("n")
    a, b, c, d = dockernet.containers({n: {"networks": [net]} for n in "abcd"}).values()
    first = dockernet.partition([a, b], [c])
    second = dockernet.partition([c], [d])
    matrix = reachability([a, b, c, d], [a, b, c, d])
    assert sorted(matrix.unreachable()) == [("a", "c"), ("b", "c"), ("c", "a"), ("c", "b"), ("c", "d"), ("d", "c")]
    first.heal()
    assert sorted(reachability([a, b, c, d], [a, b, c, d]).unreachable()) == [("c", "d"), ("d", "c")]
    dockernet.heal()  # everything
    assert second.healed and reachability([a, b, c, d], [a, b, c, d]).unreachable() == []
    first.heal()  # healed already: nothing to do


def test_containers_without_a_shell_are_partitioned_and_probe_as_before(dockernet, tmp_path):
    (tmp_path / "Dockerfile").write_text(NO_SHELL)
    image = dockernet.build(tmp_path, buildargs={"PROBE": dockernet.probe_image})
    net = dockernet.network("n")
    web = dockernet.container("web", image=image, networks=[net])
    api = dockernet.container("api", image=image, networks=[net])
    other = dockernet.container("other", networks=[net])
    with dockernet.partition(web, api):
        assert_unreachable(web, api, port=80)
        assert_unreachable(api, web)
        assert_reachable(web, other)
        assert_reachable(other, api, port=80)
    assert_reachable(web, api, port=80)
    with dockernet.degrade(api, loss=1.0):
        assert dockernet.measure(web, api, count=10).loss == 1.0  # measured from a shell-less source
    assert dockernet.measure(web, api, count=10).loss == 0.0
    assert dockernet.throughput(web, other, seconds=1) > 1e6


def test_a_container_on_two_networks_is_cut_off_on_both(dockernet):
    front, back = dockernet.network("front"), dockernet.network("back")
    both = dockernet.container("both", networks=[front, back])
    a = dockernet.container("a", networks=[front, back])
    with dockernet.partition(a, both):
        for net in (front, back):
            assert_unreachable(a, both.ip(net))
            assert_unreachable(both, a.ip(net))


def test_helpers_go_with_the_topology(dockernet, dockernet_client, three):
    a, b, _ = three
    dockernet.partition(a, b)
    dockernet.partition(a, three[2])
    helpers = dockernet_client.api.containers(
        filters={"label": [f"{ROLE}=fault-helper", f"{dockernet.context.filters()['label']}"]}
    )
    assert len(helpers) == 1  # one per container, reused
    dockernet.close()
    assert dockernet_client.api.containers(all=True, filters=dockernet.context.filters()) == []


BAD = [
    (lambda t, a, b: t.partition(a, a), ValueError, r"\['a'\] in both groups"),
    (lambda t, a, b: t.partition([], b), TypeError, r"a must be a container or a non-empty list of containers"),
    (lambda t, a, b: t.partition(a, "b"), TypeError, r"b must be a container or a non-empty list"),
    (lambda t, a, b: t.partition(a, [b, "c"]), TypeError, r"b: expected containers from dockernet.container\(\)"),
    (lambda t, a, b: t.partition(a, b, one_way=1), TypeError, r"one_way must be True or False"),
]


@pytest.mark.parametrize("call, error, message", BAD, ids=[str(i) for i in range(len(BAD))])
def test_bad_partitions_are_refused(dockernet, call, error, message):
    a, b = dockernet.container("a"), dockernet.container("b")
    with pytest.raises(error, match=message):
        call(dockernet, a, b)
    assert dockernet.faults == []


def test_host_network_containers_cannot_be_partitioned(dockernet):
    host = dockernet.container("h", network_mode="host")
    with pytest.raises(ValueError, match=r"'h' runs in the host's network namespace"):
        dockernet.partition(host, dockernet.container("b"))


def test_a_partition_of_another_topology_is_refused(dockernet, dockernet_client):
    from pytest_dockernet import Topology

    with Topology(dockernet_client, image=dockernet.probe_image) as other:
        stranger = other.container("s")
        with pytest.raises(ValueError, match=r"'s' belongs to another dockernet factory"):
            dockernet.partition(dockernet.container("a"), stranger)


def test_a_partition_cuts_ipv6_too_global_and_link_local(dockernet, three6):
    """Issue 20: on an IPv6 network, the IPv4 loss was 1.0 and the IPv6 loss 0.0."""
    net, (a, b, c) = three6
    a6, b6 = ipv6_of(a, net), ipv6_of(b, net)
    a_local = f"{link_local_of(a, net)}%{b.interface(net)}"
    assert dockernet.measure(b, a6, count=5).loss == 0.0
    with dockernet.partition(a, b):
        assert dockernet.measure(b, a.ip(net), count=10).loss == 1.0
        assert dockernet.measure(b, a6, count=10).loss == 1.0  # from b: the rules are in a
        assert_unreachable(b, [a6, a_local])
        assert_unreachable(b, a6, port=80)
        assert_unreachable(a, b6, port=80)
        assert_unreachable(a, b6)
        assert_reachable(c, a6, port=80)
        assert_reachable(a, ipv6_of(c, net))
        assert host_rules() == []  # in a's namespace, not the host's
    assert dockernet.measure(b, a6, count=10).loss == 0.0
    assert_reachable(b, a_local)
    assert_reachable(a, b6, port=80)


def test_one_way_over_ipv6_drops_what_a_starts_and_lets_b_in(dockernet, three6):
    net, (a, b, _) = three6
    a6, b6 = ipv6_of(a, net), ipv6_of(b, net)
    with dockernet.partition([a], [b], one_way=True):
        assert_unreachable(a, b6, port=80)
        assert_unreachable(a, b6)
        assert_reachable(b, a6, port=80)  # a answers: neighbour discovery and replies pass
        assert_reachable(b, a6)
    assert_reachable(a, b6, port=80)


def test_check_passes_while_the_rules_are_in_force_and_names_a_member_without_them(dockernet, dockernet_client, three):
    """check() looks in each member's namespace: it passes after the partition is applied;
    with one member's rules removed behind the plugin's back, it fails naming that member."""
    a, b, c = three
    partition = dockernet.partition([a, c], b)
    partition.check()
    run_in_helper(
        dockernet_client,
        helper_of(dockernet_client, dockernet, c),
        "iptables -w -D OUTPUT -j DN-P1-o && iptables -w -F DN-P1-o && iptables -w -X DN-P1-o",
    )
    with pytest.raises(
        DockernetError,
        match=r"^partition #1 \[a, c\] \| \[b\], drop: its rules are not in force in 'c''s network namespace: "
        r"iptables: no DN-P1-o from OUTPUT$",
    ):
        partition.check()
    assert_unreachable(a, b)  # a's rules are still there
    partition.heal()
    assert_reachable(c, b)
