"""What my service does when the network misbehaves: the database partitioned away, lost
packets, a slow link. The API (examples/app) answers /health with 503 while it cannot
reach its database or cache, and recovers by itself: each request tries them afresh.
"""

from pathlib import Path

import pytest

from pytest_dockernet import (
    Listening,
    assert_http,
    assert_reachable,
    assert_resolves,
    assert_unreachable,
)

APP = Path(__file__).parent / "app"
# Made by scripts/app-base-image (no registry here)
LOCAL_BASE = "pytest-dockernet/app-base:bookworm"


@pytest.fixture(scope="module")
def stack(dockernet_module, dockernet_client):
    local = dockernet_client.images.list(name=LOCAL_BASE)
    buildargs = {"BASE": LOCAL_BASE} if local else {}
    # The same build as test_application's
    image = dockernet_module.build(APP, buildargs=buildargs)
    net = dockernet_module.network("app")
    no_healthcheck = {"test": ["NONE"]}
    return dockernet_module.containers(
        {
            "database": {
                "image": image,
                "command": ["/app/start-postgres"],
                "user": "postgres",
                "networks": [net],
                "healthcheck": no_healthcheck,
                "ready": Listening(5432),
            },
            "cache": {
                "image": image,
                "command": ["redis-server", "--protected-mode", "no"],
                "networks": [net],
                "healthcheck": no_healthcheck,
                "ready": Listening(6379),
            },
            "api": {"image": image, "networks": [net], "ready": "healthy"},
            # The probe image: stands in for the API's users
            "client": {"networks": [net]},
        }
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
