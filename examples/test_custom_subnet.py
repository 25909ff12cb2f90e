"""A network with its own subnet and gateway; ipv4_address pins a container's
address."""

import ipaddress

from pytest_dockernet import assert_reachable, assert_resolves


def test_custom_subnet_and_pinned_address(dockernet):
    lab = dockernet.network("lab", subnet="10.98.57.0/24", gateway="10.98.57.254")
    db = dockernet.container(
        "db", networks={lab: {"aliases": ["database"], "ipv4_address": "10.98.57.10"}}
    )
    api = dockernet.container("api", networks=[lab])

    assert (lab.subnet, lab.gateway) == ("10.98.57.0/24", "10.98.57.254")
    assert db.ip(lab) == "10.98.57.10"
    assert ipaddress.ip_address(api.ip(lab)) in ipaddress.ip_network(lab.subnet)

    assert_resolves(api, "database", to="10.98.57.10")
    assert_reachable(api, "10.98.57.10")
    assert_reachable(db, lab.gateway)
