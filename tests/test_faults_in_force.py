"""A topology's faults follow its containers (issues 12, 20): put back after a restart,
over networks joined later and not those left, off the networks of stopped members; a
fault that would leave IPv6 uncovered refused whole; gone with a failed or interrupted run.
The rules live in the containers' namespaces: the host's iptables and ip6tables are never
touched."""

from __future__ import annotations

import signal

import pytest
from faults_support import HTTPD, host_rules

from pytest_dockernet import DriverUnavailable, Topology, assert_reachable, assert_unreachable, reachability
from pytest_dockernet.engine.docker_engine import DockerEngine
from pytest_dockernet.faults import image as fault_image

pytestmark = pytest.mark.dockernet


def test_faults_are_put_back_after_a_restart(dockernet, three):
    """A restart gives the container a new network namespace; its partition and its
    degradation are applied there again (and its peers' rules follow its address)."""
    a, b, c = three
    partition = dockernet.partition(a, b)
    degradation = dockernet.degrade(c, loss=1.0, to=[b])
    for restarted in (a, b, c):
        restarted.restart(timeout=1)  # httpd as PID 1 ignores SIGTERM: no need to wait 10 s
        assert_unreachable(a, b, port=80)
        assert_unreachable(b, a)
        assert_unreachable(c, b)
        assert_reachable(a, c, port=80)
    partition.heal()
    degradation.restore()
    assert reachability(three, three).unreachable() == []


def test_a_partition_covers_networks_joined_later_and_not_those_left(dockernet):
    first, second = dockernet.network("first"), dockernet.network("second")
    a, b = (dockernet.container(n, networks=[first, second], command=HTTPD) for n in "ab")
    with dockernet.partition(a, b):
        third = dockernet.network("third")
        dockernet.connect(a, third)
        dockernet.connect(b, third)
        assert dockernet.measure(b, a.ip(third), count=10).loss == 1.0  # covered when connect() returned
        assert_unreachable(b, a.ip(third), port=80)
        assert_unreachable(a, b.ip(third), port=80)
        left = b.ip(second)
        dockernet.disconnect(b, second)
        newcomer = dockernet.container("newcomer", networks=[second])
        assert newcomer.ip(second) == left  # the engine gives the lowest free address: b's old one
        assert_reachable(newcomer, a.ip(second), port=80)  # a's rules no longer name it
        assert_unreachable(b, a.ip(first), port=80)


def test_a_degradation_covers_networks_joined_later_and_not_those_left(dockernet):
    first, second = dockernet.network("first"), dockernet.network("second")
    a, b = (dockernet.container(n, networks=[first], command=HTTPD) for n in "ab")
    watcher = dockernet.container("watcher", networks=[second])
    with dockernet.degrade(a, loss=1.0):
        dockernet.connect(a, second)
        assert dockernet.measure(watcher, a.ip(second), count=10).loss == 1.0  # a's new interface too
    with dockernet.degrade(a, loss=1.0, to=[b]):
        dockernet.connect(b, second)
        assert dockernet.measure(b, a.ip(second), count=10).loss == 1.0  # b's new address too
        assert dockernet.measure(watcher, a.ip(second), count=10).loss == 0.0
    with dockernet.degrade(a, loss=1.0, network=second):
        assert dockernet.measure(watcher, a.ip(second), count=10).loss == 1.0
        dockernet.disconnect(a, second)
        third = dockernet.network("third")
        dockernet.connect(a, third)
        dockernet.connect(watcher, third)
        assert dockernet.measure(watcher, a.ip(third), count=10).loss == 0.0  # not the degraded network
        dockernet.disconnect(a, third)
        dockernet.connect(a, second)  # the degraded network again: covered again
        assert dockernet.measure(watcher, a.ip(second), count=10).loss == 1.0
    assert dockernet.measure(watcher, a.ip(second), count=10).loss == 0.0


def test_stopped_members_leave_networks_and_get_their_faults_back_on_start(dockernet):
    """A stopped container has no address: the partition follows it off a network all the
    same (nothing to put in its own stopped namespace), and a start puts everything back."""
    first, second = dockernet.network("first"), dockernet.network("second")
    a, b = (dockernet.container(n, networks=[first, second], command=HTTPD) for n in "ab")
    with dockernet.partition(a, b):
        b.stop(timeout=0)
        dockernet.disconnect(b, second)
        a.stop(timeout=0)
        dockernet.disconnect(a, second)
        a.start()
        b.start()
        assert_unreachable(a, b, port=80)
        assert_unreachable(b, a, port=80)
    assert_reachable(b, a, port=80)


def test_without_ip6tables_a_fault_that_needs_it_is_refused_whole(dockernet_client, dockernet, monkeypatch):
    """A machine without ip6tables (made here by hiding it from the image build): what would
    leave IPv6 uncovered raises naming ip6tables, and nothing of it is applied; IPv4-only
    faults and rate caps (a queueing discipline: every family) still work. A join that
    would need it is undone."""
    monkeypatch.setattr(fault_image, "ip6tables_for", lambda iptables: None)
    built = fault_image.fault_image(DockerEngine(dockernet_client), dockernet.probe_image)
    assert not built.ipv6
    try:
        with Topology(dockernet_client, image=dockernet.probe_image, allocator=dockernet.context.allocator) as topology:
            v4, v6 = topology.network("v4"), topology.network("v6", ipv6=True)
            a, b = (topology.container(n, networks=[v4], command=HTTPD) for n in "ab")
            c, d = (topology.container(n, networks=[v6], command=HTTPD) for n in "cd")
            with pytest.raises(
                DriverUnavailable,
                match=r"^partition #1: \[d\] have IPv6 addresses, which needs ip6tables: .*"
                r"apt-get install iptables\); nothing was applied$",
            ):
                topology.partition(c, d)
            with pytest.raises(
                DriverUnavailable, match=r"^degrade 'c': loss= applies to IPv6 traffic on eth\d+.*ip6tables"
            ):
                topology.degrade(c, loss=1.0)
            assert topology.faults == []
            assert topology.measure(d, c.ip(v6), count=5).loss == 0.0  # not half a fault: IPv4 neither
            cap = topology.degrade(c, rate="10mbit")
            partition = topology.partition(a, b)
            assert_unreachable(b, a)
            with pytest.raises(DriverUnavailable, match=r"^partition #4: \[b\] have IPv6 addresses.*ip6tables"):
                topology.connect(b, v6)  # a's rules would have to name b's IPv6 addresses
            assert v6.docker_name not in b.endpoints  # the join was undone
            assert_unreachable(b, a)
            assert topology.faults == [partition, cap]
    finally:
        dockernet_client.images.remove(built.tag)


def test_faults_go_with_a_failed_and_an_interrupted_run(inner_runs, pytester):
    """The rules live in the containers' namespaces and the helpers carry the topology's
    labels: a failing test, and a run stopped by SIGTERM while a partition is in force,
    leave nothing (no container, helper or network; the host's rules untouched)."""
    before = host_rules()
    pytester.makepyfile(
        test_faulty="""
        import time

        from inner_run_spy import ready, record

        def test_fails(dockernet):
            a, b = dockernet.container("a"), dockernet.container("b")
            dockernet.partition(a, b)
            dockernet.degrade(a, rate="1mbit")
            record(a, b)
            assert False, "the application did not cope"

        def test_interrupted(dockernet):
            a, b = dockernet.container("a"), dockernet.container("b")
            dockernet.partition([a], [b], one_way=True)
            record(a, b)
            ready()
            time.sleep(60)
        """
    )
    result = inner_runs.run("-k", "fails")
    result.assert_outcomes(failed=1)
    assert "partition #1 [a] | [b], drop, since " in result.stdout.str()  # the report shows the faults
    proc = inner_runs.start("-k", "interrupted")
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=90)
    assert inner_runs.existing(inner_runs.made()) == []
    assert inner_runs.resources() == []
    assert host_rules() == before == []
