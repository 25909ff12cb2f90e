"""Making networks (networks.py): subnets from the subnet allocator on a real engine."""

import ipaddress

from pytest_dockernet import Topology
from pytest_dockernet.subnets import SubnetAllocator


def test_another_process_taking_the_subnet_first(dockernet_client):
    """The engine refuses an overlapping subnet; the factory moves on to the next one."""
    allocator = SubnetAllocator("10.97.0.0/24:26")
    allocator._start = 0  # the first candidate is 10.97.0.0/26 ...
    squatter = dockernet_client.api.create_network(
        "pytest-dockernet-test-squatter",
        ipam={"Driver": "default", "Config": [{"Subnet": "10.97.0.0/26"}]},
        labels={"pytest-dockernet.session": "test-squatter"},
    )  # ... which "another process" takes after the allocator read the engine's networks
    try:
        with Topology(dockernet_client, allocator=allocator) as topology:
            assert topology.network("n").subnet == "10.97.0.64/26"
            assert topology.network("m").subnet == "10.97.0.128/26"
    finally:
        dockernet_client.api.remove_network(squatter["Id"])


def test_more_networks_than_the_engine_default_pools_allow(dockernet):
    """The engine's own pools give out about 29 networks; explicit subnets have no such limit."""
    networks = [dockernet.network(f"n{i}") for i in range(40)]
    subnets = {n.subnet for n in networks}
    assert len(subnets) == 40
    assert all(ipaddress.IPv4Network(s).subnet_of(ipaddress.IPv4Network("10.213.0.0/16")) for s in subnets)
