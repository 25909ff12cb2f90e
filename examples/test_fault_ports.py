"""One port blocked, a firewall that refuses, traffic slowed on the way in. The API
(examples/app) answers /health with 503 while it cannot reach its database or cache.
The `stack` fixture is in examples/conftest.py.
"""

import pytest

from pytest_dockernet import assert_http, assert_reachable


def test_only_the_database_port_is_blocked(stack, dockernet_module):
    api, database = stack["api"], stack["database"]
    with dockernet_module.partition(api, database, ports=[5432]) as cut:
        assert_http(
            stack["client"],
            "http://api:8080/health",
            status=503,
            contains="no database",
        )
        # Ping and the cache's port still pass
        assert_reachable(api, database)
        assert_reachable(api, stack["cache"], port=6379)
        # Proof that it took: TCP connects to 5432 from api, all lost
        assert cut.verify().loss == 1.0
    assert_http(stack["client"], "http://api:8080/health", status=200)


def test_a_firewall_that_refuses(stack, dockernet_module):
    # A TCP reset instead of silence: the API's connect fails at once
    with dockernet_module.partition(
        stack["api"], stack["cache"], mode="reject", ports=[6379]
    ):
        assert_http(
            stack["client"], "http://api:8080/health", status=503, contains="no cache"
        )


@pytest.mark.dockernet(
    partition={"groups": [["api"], ["database"]], "mode": "reject", "ports": [5432]}
)
def test_the_marker_takes_mode_and_ports(stack):
    assert_http(stack["client"], "http://api:8080/health", status=503)


def test_what_the_api_receives_is_slowed(stack, dockernet_module):
    api, client = stack["api"], stack["client"]
    with dockernet_module.degrade(api, rate="1mbit", direction="ingress"):
        received = dockernet_module.throughput(client, api, seconds=1)
        assert 0.5e6 <= received <= 2e6
        # What it sends is not capped
        assert dockernet_module.throughput(api, client, seconds=1) > 10 * received


def test_incoming_loss_is_measured_from_the_sender(stack, dockernet_module):
    api, client = stack["api"], stack["client"]
    with dockernet_module.degrade(api, loss=0.3, direction="ingress", to=[client]):
        measured = dockernet_module.measure(client, api, count=200)
        assert 0.15 <= measured.loss <= 0.45
