"""Directions and netem's extras (issue 25): ``degrade(direction="ingress"|"both")`` for loss
(an INPUT chain) and rate (an IFB device per interface, the interface's ingress traffic
redirected to it), narrowed by ``to=`` to what comes from those peers, measured with
``measure()`` and ``throughput()`` from either side, checked, verified, kept across a
restart, gone after restore(); ``duplicate=``, ``corrupt=``, ``reorder=`` beside ``delay=``,
refused naming netem where the kernel has none; bad input refused before anything."""

from __future__ import annotations

import pytest
from faults_support import fault_helpers, helper_of, run_in_helper

from pytest_dockernet import DockernetError, DriverUnavailable, Topology, assert_reachable, assert_unreachable
from pytest_dockernet.faults.rules import degrade_script
from pytest_dockernet.snapshot import snapshot

pytestmark = pytest.mark.dockernet


def shaping_left(dockernet_client, dockernet, container) -> str:
    """What a degradation may leave in ``container``'s namespace: IFB devices, an ingress
    qdisc, its chains (none once restored)."""
    helper = helper_of(dockernet_client, dockernet, container)
    script = "ip -o link | grep -o 'dn-ifb[^:@]*'; /usr/sbin/tc qdisc show | grep -i ingress; "
    script += "iptables -w -S | grep DN-D; true"
    return run_in_helper(dockernet_client, helper, script).strip()


def test_ingress_loss_is_measured_from_the_other_side(dockernet, three):
    a, b, c = three
    with dockernet.degrade(a, loss=0.3, direction="ingress") as degradation:
        from_b = dockernet.measure(b, a, count=200)  # b's requests are lost as they reach a
        assert 0.15 <= from_b.loss <= 0.45, from_b
        from_a = dockernet.measure(a, b, count=200)  # b's answers are lost as they reach a
        assert 0.15 <= from_a.loss <= 0.45, from_a
        assert "degrade #1 a: loss 0.3, ingress" in dockernet.describe()
        assert degradation.direction == "ingress"
    assert dockernet.measure(b, a, count=50).loss == 0.0


def test_ingress_loss_cuts_what_comes_in_and_to_narrows_it_to_those_peers(dockernet, three):
    a, b, c = three
    with dockernet.degrade(a, loss=1.0, direction="ingress", to=[b]):
        assert_unreachable(b, a)
        assert_unreachable(a, b)  # a's requests leave, b's answers are lost on the way in
        assert_reachable(c, a)
        assert_reachable(a, c, port=80)


def test_an_ingress_rate_cap_is_measured_by_what_the_container_receives(dockernet, dockernet_client, three):
    a, b, _ = three
    with dockernet.degrade(a, rate="1mbit", direction="ingress") as cap:
        received = dockernet.throughput(b, a, seconds=2)
        assert 0.5e6 <= received <= 2e6, received
        sent = dockernet.throughput(a, b, seconds=2)
        assert sent > 10 * received, (sent, received)  # what a sends is not capped
        cap.check()
        left = shaping_left(dockernet_client, dockernet, a)
        assert "dn-ifb-eth0" in left and "qdisc ingress ffff:" in left and "-A INPUT -j DN-D-i" in left, left
        measured = cap.verify()  # throughput from the peer to a: the capped direction
        assert 0.5e6 <= measured <= 2e6, measured
        assert "degrade #1 a: rate 1mbit, ingress, since " in dockernet.describe()
        assert "measured rate " in dockernet.describe()
    assert shaping_left(dockernet_client, dockernet, a) == ""
    assert dockernet.throughput(b, a, seconds=2) > 10 * received


def test_both_directions_cap_and_lose_both_ways(dockernet, three):
    a, b, _ = three
    with dockernet.degrade(a, rate="1mbit", direction="both"):
        for src, dst in ((a, b), (b, a)):
            measured = dockernet.throughput(src, dst, seconds=2)
            assert 0.5e6 <= measured <= 2e6, (src.name, dst.name, measured)
    with dockernet.degrade(a, loss=0.3, direction="both") as both:
        # a request or its answer: 1 - 0.7 * 0.7 = 0.51 of the round trips are lost
        measured = dockernet.measure(b, a, count=200)
        assert 0.35 <= measured.loss <= 0.67, measured
        assert both.title() == "degrade #2 a: loss 0.3, both"


def test_an_ingress_rate_cap_from_some_peers_leaves_the_others_free(dockernet, three):
    a, b, c = three
    with dockernet.degrade(a, rate="1mbit", direction="ingress", to=[b]) as cap:
        capped = dockernet.throughput(b, a, seconds=2)
        assert 0.5e6 <= capped <= 2e6, capped
        assert dockernet.throughput(c, a, seconds=2) > 10 * capped
        assert cap.title() == "degrade #1 a: rate 1mbit, ingress, to [b]"


def test_check_names_a_missing_ingress_piece_and_a_restart_puts_it_back(dockernet, dockernet_client, three):
    a, b, _ = three
    interface = a.interface(a.networks[0])
    with dockernet.degrade(a, rate="1mbit", direction="ingress") as cap:
        helper = helper_of(dockernet_client, dockernet, a)
        run_in_helper(dockernet_client, helper, f"/usr/sbin/tc qdisc del dev {interface} ingress")
        with pytest.raises(DockernetError, match=rf"in 'a''s network namespace: no ingress qdisc on {interface}$"):
            cap.check()
        a.restart()  # a new namespace: the degradation is put there again
        cap.check()
        assert 0.5e6 <= dockernet.throughput(b, a, seconds=2) <= 2e6
        run_in_helper(dockernet_client, helper_of(dockernet_client, dockernet, a), "iptables -w -D INPUT -j DN-D-i")
        with pytest.raises(DockernetError, match=r"iptables: no DN-D-i from INPUT$"):
            cap.check()
    assert shaping_left(dockernet_client, dockernet, a) == ""


def test_netems_extras_work_where_the_kernel_has_netem_and_name_it_where_not(dockernet_client, dockernet):
    """As for delay=: this kernel has no netem, so each is refused naming it (outside the
    plugin DriverUnavailable, which is why the test uses a Topology of its own); on a kernel
    with netem, each is in the interface's netem qdisc."""
    with Topology(dockernet_client, image=dockernet.probe_image, allocator=dockernet.context.allocator) as topology:
        net = topology.network("n")
        a, b = topology.container("a", networks=[net]), topology.container("b", networks=[net])
        for arguments, shown in (
            ({"duplicate": 0.01}, "duplicate 1%"),
            ({"corrupt": 0.001}, "corrupt 0.1%"),
            ({"delay": "10ms", "reorder": 0.25}, "reorder 25%"),
        ):
            try:
                degradation = topology.degrade(a, **arguments)
            except DriverUnavailable as exc:
                assert f"{next(iter(arguments))}= needs the kernel's netem queueing discipline (sch_netem)" in str(exc)
                assert topology.faults == []
                assert topology.measure(b, a, count=20).loss == 0.0  # nothing was applied
            else:
                with degradation:
                    code, output = a.exec(["sh", "-c", "tc qdisc show"])
                    assert shown in output, output


def test_netems_extras_script():
    """What a kernel with netem gets (this one has none to run it on)."""
    settings = {"loss": None, "rate": "1mbit", "delay": "10ms", "jitter": "2ms"}
    settings |= {"duplicate": 0.01, "corrupt": 0.001, "reorder": 0.25, "direction": "both"}
    script = degrade_script(settings, ["eth0"], ["eth0"], None, False).split(" && ")
    netem = "netem delay 10ms 2ms duplicate 1% corrupt 0.1% reorder 25% rate 1mbit"
    assert f"tc qdisc replace dev eth0 root {netem}" in script
    assert f"tc qdisc replace dev dn-ifb-eth0 root {netem}" in script  # what eth0 receives, on its IFB


BAD = [
    ({"loss": 0.1, "direction": "inbound"}, r"direction='inbound' must be 'egress' \(what the container sends"),
    ({"duplicate": 2}, r"duplicate=2 must be a fraction from 0.0 to 1.0"),
    ({"corrupt": "some"}, r"corrupt='some' must be a fraction"),
    ({"reorder": 0.25}, r"reorder= needs delay="),
    ({"direction": "ingress"}, r"degrade\(\) needs at least one of loss=, rate=, delay=, duplicate=, corrupt="),
]


@pytest.mark.parametrize("arguments, message", BAD, ids=[str(i) for i in range(len(BAD))])
def test_bad_directions_and_extras_are_refused_before_anything(dockernet, dockernet_client, three, arguments, message):
    a, b, _ = three
    with pytest.raises(ValueError, match=message):
        dockernet.degrade(a, **arguments)
    assert dockernet.faults == [] and fault_helpers(dockernet_client, dockernet) == []


def test_netems_extras_towards_some_peers_are_refused_before_netem_is_looked_for(dockernet, dockernet_client, three):
    a, b, _ = three
    with pytest.raises(ValueError, match=r"^duplicate= with to= is not supported: netem would duplicate everything"):
        dockernet.degrade(a, duplicate=0.1, to=[b])
    assert dockernet.faults == [] and fault_helpers(dockernet_client, dockernet) == []


@pytest.fixture(scope="module")
def pair(dockernet_module):
    net = dockernet_module.network("n")
    return dockernet_module.containers({n: {"networks": [net]} for n in ("web", "db")})


@pytest.mark.dockernet(degrade={"db": {"loss": 1.0, "direction": "ingress", "to": ["web"]}})
def test_the_markers_degrade_takes_a_direction(pair, dockernet_module):
    (degradation,) = dockernet_module.faults
    assert degradation.title() == "degrade #1 db: loss 1, ingress, to [web]"
    assert_unreachable(pair["web"], pair["db"])


def test_the_markers_degradation_is_lifted_afterwards(pair, dockernet_module):
    assert dockernet_module.faults == []
    assert_reachable(pair["web"], pair["db"])


def test_an_ingress_cap_follows_a_network_left_and_joined_again(dockernet, dockernet_client):
    """The IFB device of an interface that went with its network goes too: when the
    container joins that network again, its interface gets the cap afresh."""
    front, back = dockernet.network("front"), dockernet.network("back")
    a = dockernet.container("a", networks=[front, back])
    b = dockernet.container("b", networks=[back])
    with dockernet.degrade(a, rate="1mbit", direction="ingress") as cap:
        dockernet.disconnect(a, back)
        dockernet.connect(a, back)
        cap.check()
        assert 0.5e6 <= dockernet.throughput(b, a, seconds=2) <= 2e6
    assert shaping_left(dockernet_client, dockernet, a) == ""


def test_the_snapshot_draws_an_ingress_link_from_the_peer_and_a_port_partitions_ports(dockernet, three):
    a, b, c = three
    dockernet.degrade(a, loss=0.2, direction="ingress", to=[b])
    dockernet.partition(b, c, mode="reject", ports=[5432])
    doc = snapshot([dockernet.context])
    cut, degraded = doc["faults"]
    assert (cut["mode"], cut["ports"]) == ("reject", [5432])
    assert (degraded["direction"], degraded["duplicate"]) == ("ingress", None)
    (link,) = [link for link in doc["links"] if link["kind"] == "degraded"]
    assert (link["from"], link["to"], link["one_way"]) == ("b", "a", True)  # what a receives from b
