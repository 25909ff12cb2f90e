"""What my service does when the network misbehaves: the database partitioned away, lost
packets, a slow link. The API (examples/app) answers /health with 503 while it cannot
reach its database or cache, and recovers by itself: each request tries them afresh.
The `stack` fixture is in examples/conftest.py.
"""

import pytest

from pytest_dockernet import (
    assert_http,
    assert_reachable,
    assert_resolves,
    assert_unreachable,
)


def test_the_api_reports_the_database_partitioned_away_and_recovers(
    stack, dockernet_module
):
    api, database = stack["api"], stack["database"]
    with dockernet_module.partition(api, database):
        assert_unreachable(api, database, port=5432)
        # Still on the network: only traffic is cut
        assert_resolves(api, "database", to=database)
        assert_http(
            stack["client"],
            "http://api:8080/health",
            status=503,
            contains="no database",
        )
    # Healed on leaving the block
    assert_http(stack["client"], "http://api:8080/health", status=200)


@pytest.mark.dockernet(partition=[["api"], ["cache"]])
def test_the_marker_partitions_for_the_test_body_only(stack):
    assert_http(
        stack["client"], "http://api:8080/health", status=503, contains="no cache"
    )


def test_lost_packets_are_measured(stack, dockernet_module):
    with dockernet_module.degrade(stack["api"], loss=0.3, to=[stack["client"]]):
        measured = dockernet_module.measure(stack["client"], stack["api"], count=200)
        assert 0.15 <= measured.loss <= 0.45
        # Only what goes to client is lost
        assert_reachable(stack["api"], stack["database"])


def test_a_slow_link_is_measured(stack, dockernet_module):
    with dockernet_module.degrade(stack["api"], rate="1mbit"):
        rate = dockernet_module.throughput(stack["api"], stack["client"], seconds=1)
        assert 0.5e6 <= rate <= 2e6
