"""What my service does when DNS misbehaves: the database's name stops resolving,
resolves to the wrong host, or the resolver fails. The API (examples/app) looks its
database and cache up on every /health request, answers 503 naming what it cannot
reach, and recovers by itself once names resolve again. Only the API's lookups are
faulted: the other containers, and the API's other names, resolve as before.
"""

from pathlib import Path

import pytest

from pytest_dockernet import Listening, assert_http, assert_resolves

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


def test_the_database_name_stops_resolving(stack, dockernet_module):
    api, client = stack["api"], stack["client"]
    with dockernet_module.dns_fault(api, "database", nxdomain=True) as fault:
        # Proof that it took: a lookup from the API's namespace, as its resolver does
        assert fault.verify().rcode == "nxdomain"
        assert_http(
            client, "http://api:8080/health", status=503, contains="no database"
        )
        # Other containers resolve the name as before
        assert_resolves(client, "database", to=stack["database"])
    assert_http(client, "http://api:8080/health", status=200)


def test_the_database_name_points_at_the_wrong_host(stack, dockernet_module):
    api, client = stack["api"], stack["client"]
    # answer= a container: its address (nothing listens on 5432 there)
    with dockernet_module.dns_fault(api, "database", answer=client):
        assert_http(
            client, "http://api:8080/health", status=503, contains="no database"
        )
    assert_http(client, "http://api:8080/health", status=200)


@pytest.mark.dockernet(dns_faults={"api": {"cache": "servfail"}})
def test_the_marker_fails_the_cache_lookup_for_the_test_body_only(stack):
    assert_http(
        stack["client"], "http://api:8080/health", status=503, contains="no cache"
    )
