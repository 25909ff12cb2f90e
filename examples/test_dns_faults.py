"""What my service does when DNS misbehaves: the database's name stops resolving,
resolves to the wrong host, or the resolver fails. The API (examples/app) looks its
database and cache up on every /health request, answers 503 naming what it cannot
reach, and recovers by itself once names resolve again. Only the API's lookups are
faulted: the other containers, and the API's other names, resolve as before.
The `stack` fixture is in examples/conftest.py.
"""

import pytest

from pytest_dockernet import assert_http, assert_resolves


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
