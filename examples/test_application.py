"""Testing your own application: an API in front of PostgreSQL and redis, two networks.

The image is built from examples/app (a Dockerfile, the API's code, a start script),
once per run. Each server is waited for the way it tells that it is ready: PostgreSQL by
a healthcheck, redis by a line of its log, the API by its image's own HEALTHCHECK.
"""

from pathlib import Path

import pytest

from pytest_dockernet import (
    LogLine,
    assert_http,
    assert_isolated,
    assert_unreachable,
    http_get,
    reachability,
)

APP = Path(__file__).parent / "app"
# Made by scripts/app-base-image (no registry here)
LOCAL_BASE = "pytest-dockernet/app-base:bookworm"
NO_HEALTHCHECK = {"test": ["NONE"]}  # the image's HEALTHCHECK is the API's


@pytest.fixture(scope="module")
def stack(dockernet_module, dockernet_client):
    # Without a registry, build FROM the local Debian base; with one, the Dockerfile's
    # default.
    local = dockernet_client.images.list(name=LOCAL_BASE)
    buildargs = {"BASE": LOCAL_BASE} if local else {}
    image = dockernet_module.build(APP, buildargs=buildargs)

    front = dockernet_module.network("front")
    back = dockernet_module.network("back")
    return dockernet_module.containers(
        {
            "db": {
                "image": image,
                "command": ["/app/start-postgres"],
                "user": "postgres",
                "networks": {back: ["database"]},
                "healthcheck": {
                    "test": "pg_isready -q -h 127.0.0.1",
                    "interval": 0.5,
                    "retries": 120,
                },
                "ready": "healthy",
            },
            "cache": {
                "image": image,
                "command": ["redis-server", "--protected-mode", "no"],
                "networks": [back],
                "healthcheck": NO_HEALTHCHECK,
                "ready": LogLine("Ready to accept connections"),
            },
            "api": {"image": image, "networks": [front, back], "ready": "healthy"},
            "web": {"networks": [front]},  # stands in for the web tier: the probe image
        }
    )


def test_the_api_answers_healthy_from_the_web_tier(stack):
    assert_http(stack["web"], "http://api:8080/health", status=200, contains="ok")
    response = http_get(stack["web"], "http://api:8080/")
    assert response.status == 200 and response.body.startswith("hello from")


def test_the_api_reaches_the_database_and_the_cache_on_their_ports(stack):
    matrix = reachability([stack["api"]], [(stack["db"], 5432), (stack["cache"], 6379)])
    assert not matrix.unreachable(), str(matrix)


def test_the_web_tier_cannot_reach_the_data_tier(stack):
    assert_unreachable(stack["web"], stack["db"], port=5432)
    assert_isolated([stack["web"]], [stack["db"], stack["cache"]])


# An engine without it skips it, naming the capability
@pytest.mark.dockernet(needs=["connect-disconnect"])
def test_the_api_reports_a_lost_cache_and_recovers(stack, dockernet_module):
    cache, back = stack["cache"], dockernet_module.get_network("back")
    dockernet_module.disconnect(cache, back)
    assert_http(stack["web"], "http://api:8080/health", status=503, contains="no cache")
    dockernet_module.connect(cache, back)
    assert_http(stack["web"], "http://api:8080/health", status=200)
