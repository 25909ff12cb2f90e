"""The facade (pytest_dockernet.topology): what a test calls, and nothing else."""

from __future__ import annotations

import ipaddress

from pytest_dockernet import Topology


def test_the_facade_has_only_what_a_test_calls():
    """Plumbing goes on the run context (``Topology.context``), not on the facade: at most 40
    public members (37 now: issue 21 left 35, issue 25 added dns_fault and nemesis), each
    one a call a test makes."""
    public = sorted(name for name in dir(Topology) if not name.startswith("_"))
    assert len(public) <= 40, public
    assert not {"labels_for", "docker_name_for", "filters", "sidecar_of", "clients", "shells"} & set(public)


def test_a_topology_without_an_allocator_makes_one_in_its_context(dockernet, dockernet_client):
    """The networks part keeps the subnet allocator in the context (one place): made on the
    first network when the caller gave none, and the subnet it gave comes from its range."""
    with Topology(dockernet_client, image=dockernet.probe_image) as topology:
        assert topology.context.allocator is None
        net = topology.network("n")
        allocator = topology.context.allocator
        assert allocator is not None
        assert ipaddress.ip_network(net.subnet).subnet_of(allocator.range)
