"""One reachability matrix across ports: ``(target, port)`` targets beside plain ICMP ones (issue 11)."""

from __future__ import annotations

import time

import pytest
from test_http import REDIS, SERVICE, ensure_app_base

from pytest_dockernet import ReachabilityMatrix, assert_http, assert_reachable, reachability


@pytest.fixture(scope="session")
def app_base(dockernet_client) -> str:
    return ensure_app_base(dockernet_client)


def test_one_matrix_mixes_redis_http_a_closed_port_and_icmp(dockernet, app_base):
    net = dockernet.network("app")
    cache = dockernet.container("cache", image=app_base, command=REDIS, networks=[net])
    api = dockernet.container("api", image=app_base, command=["python3", "-c", SERVICE], networks=[net])
    client = dockernet.container("client", networks=[net])
    stranger = dockernet.container("stranger", networks=[dockernet.network("elsewhere")])
    assert_reachable(client, cache, port=6379, timeout=15)  # the servers listen
    assert_http(client, "http://api:8080/hello", timeout=15)

    targets = [(cache, 6379), (api, 8080), (cache, 6380), (cache.ip(net), 6379), api]
    matrix = reachability([client, stranger], targets)

    assert matrix[client, (cache, 6379)] is True
    assert matrix[client, (api, 8080)] is True
    assert matrix[client, (cache, 6380)] is False  # nothing listens there
    assert matrix[client, ("api", 8080)] is True  # the same column, by logical name
    assert matrix[client, (cache.ip(net), 6379)] is True  # an address and a port
    assert matrix[client, api] is True  # plain target: ICMP
    assert matrix[client, "cache:6379"] is True  # a column by its label
    assert not any(matrix[stranger, t] for t in targets)  # another network: nothing answers
    assert sorted(label for src, label in matrix.reachable()) == sorted(
        ["cache:6379", "api:8080", f"{cache.ip(net)}:6379", "api"]
    )

    drawn = str(matrix)
    assert drawn.splitlines()[0] == "reachability (ICMP, or TCP to the port a column names):"
    header = drawn.splitlines()[1].split()
    assert header[3:] == ["cache:6379", "api:8080", "cache:6380", f"{cache.ip(net)}:6379", "api"]
    assert drawn.splitlines()[2].split() == ["client", "yes", "yes", "no", "yes", "yes"]
    assert drawn.splitlines()[3].split() == ["stranger", "no", "no", "no", "no", "no"]


def test_a_tuple_port_overrides_the_port_argument(dockernet, app_base):
    net = dockernet.network("app")
    cache = dockernet.container("cache", image=app_base, command=REDIS, networks=[net])
    api = dockernet.container("api", image=app_base, command=["python3", "-c", SERVICE], networks=[net])
    client = dockernet.container("client", networks=[net])
    assert_reachable(client, cache, port=6379, timeout=15)
    assert_http(client, "http://api:8080/hello", timeout=15)

    matrix = reachability([client], [cache, api, (api, 8080)], port=6379)
    assert matrix == {("client", "cache"): True, ("client", "api"): False, ("client", "api:8080"): True}
    assert str(matrix).splitlines()[0] == "reachability (TCP 6379, or TCP to the port a column names):"

    only_ports = reachability([client], [(cache, 6379), (api, 8080)])
    assert isinstance(only_ports, ReachabilityMatrix)
    assert only_ports.reachable() == [("client", "cache:6379"), ("client", "api:8080")]
    assert str(only_ports).splitlines()[0] == "reachability (TCP to each column's port):"


def test_ports_of_one_source_are_probed_at_once_within_one_timeout(dockernet):
    client = dockernet.container("client", networks=[dockernet.network("app")])
    far = dockernet.container("far", networks=[dockernet.network("elsewhere")])  # its packets are dropped
    started = time.monotonic()
    matrix = reachability([client], [(far, p) for p in (81, 82, 83, 84, 85)], timeout=1)
    assert time.monotonic() - started < 3  # not 5 one-second waits in a row
    assert matrix.reachable() == []


@pytest.mark.parametrize(
    "target, error, message",
    [
        (("cache", "6379"), ValueError, r"targets: the port of \('cache', '6379'\) is not a TCP port number"),
        (("cache", 0), ValueError, r"is not a TCP port number \(1-65535\)"),
        (("cache", True), ValueError, r"is not a TCP port number"),
        (("cache",), TypeError, r"targets: \('cache',\) is not a \(target, port\) pair such as \(db, 5432\)"),
        ((5432, "cache"), TypeError, r"is not a \(target, port\) pair"),
    ],
)
def test_a_bad_target_tuple_is_refused(dockernet, target, error, message):
    client = dockernet.container("client")
    with pytest.raises(error, match=message):
        reachability([client], [target])
