"""Test the topology you ship: the application's own Compose file, in the test's own
networks.

compose() brings the file up under names of the test's own (so parallel runs never
collide), starts each service once what it depends on is healthy, and hands back its
services as containers for every helper.
"""

from pathlib import Path

import pytest

from pytest_dockernet import assert_http, assert_isolated, assert_resolves, reachability

COMPOSE_FILE = Path(__file__).parent / "compose" / "compose.yaml"
# Made by scripts/app-base-image (no registry here)
LOCAL_BASE = "pytest-dockernet/app-base:bookworm"


@pytest.fixture(scope="module")
def shop(dockernet_module, dockernet_client):
    # Without a registry, the image builds FROM the local Debian base; with one, the
    # file's default.
    local = dockernet_client.images.list(name=LOCAL_BASE)
    env = {"APP_BASE": LOCAL_BASE} if local else {}
    return dockernet_module.compose(COMPOSE_FILE, env=env)


def test_the_api_answers_healthy_through_the_web_tier(shop):
    assert_http(shop["web"], "http://api:8080/health", status=200, contains="ok")


def test_the_api_reaches_the_database_and_the_cache_by_the_names_in_the_file(shop):
    assert_resolves(shop["api"], "database", to=shop["db"])
    matrix = reachability([shop["api"]], [("database", 5432), ("cache", 6379)])
    assert not matrix.unreachable(), str(matrix)


def test_the_web_tier_cannot_reach_the_data_tier(shop):
    assert_isolated([shop["web"]], [shop["db"], shop["cache"]])


def test_the_api_alone_brings_up_what_it_depends_on(dockernet, dockernet_client):
    local = dockernet_client.images.list(name=LOCAL_BASE)
    env = {"APP_BASE": LOCAL_BASE} if local else {}
    stack = dockernet.compose(COMPOSE_FILE, services=["api"], env=env)
    assert sorted(stack) == ["api", "cache", "db"]
    assert stack["db"].status() == "running (healthy)"
