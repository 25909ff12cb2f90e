"""Topologies reused whole (issue 26): a topology of the warm pool's waits in the pool with its
containers still on its network (parked), and a later test of the same shape gets it with no
network join or leave; any other shape gets exactly what it asked for."""

from __future__ import annotations

import json
import signal

import pytest

# Counts the engine's network joins and leaves per test, on the real engine: DockerEngine's
# methods wrapped (they still make their calls), the counts written at the session's end.
COUNTING = """
import json
from pathlib import Path

import pytest

from pytest_dockernet.engine.docker_engine import DockerEngine

CALLS = {}
CURRENT = ["(none)"]


def counting(name, original):
    def wrapped(self, *args, **kwargs):
        CALLS.setdefault(CURRENT[0], []).append(name)
        return original(self, *args, **kwargs)

    return wrapped


for _name in ("connect_container_to_network", "disconnect_container_from_network"):
    setattr(DockerEngine, _name, counting(_name.split("_")[0], getattr(DockerEngine, _name)))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    CURRENT[0] = item.name
    yield
    CURRENT[0] = "(after " + item.name + ")"


def pytest_sessionfinish(session):
    Path(__file__).with_name("calls.json").write_text(json.dumps(CALLS))
"""

COMMON = """
from pytest_dockernet.timings import POOL_WHOLE

seen = {}


def shape(dockernet, names=("a", "b", "c"), net_name="net"):
    net = dockernet.network(net_name)
    specs = {n: {"networks": {net: ["web"]} if n == "a" else [net]} for n in names}
    return net, dockernet.containers(specs)


def whole(dockernet):
    return dockernet.context.timings.counts.get(POOL_WHOLE, 0)


def attached(api, net):
    return set(api.inspect_network(net.id)["Containers"] or {})


def check(dockernet, api, net, cs):
    \"\"\"Names (logical, alias, engine), reachability, nothing of an earlier test resolves, and
    exactly these containers on the network.\"\"\"
    first, *others = cs.values()
    a = cs.get("a")
    for c in others:
        for name in (first.name, first.docker_name):
            dockernet.assert_resolves(c, name, to=first)
    if a is not None:
        dockernet.assert_resolves(others[0] if a is first else first, "web", to=a)
    assert not dockernet.reachability(list(cs.values()), list(cs.values())).unreachable()
    for old in seen.get("names", []):
        dockernet.assert_not_resolves(first, old)
    assert attached(api, net) == {c.id for c in cs.values()}
    assert all(c.pooled and [n.name for n in c.networks] == [net.name] for c in cs.values())
    seen["names"] = [c.docker_name for c in cs.values()]
    seen["ids"] = {n: c.id for n, c in cs.items()}
"""

ONE_SHAPE = (
    COMMON
    + """
import pytest


@pytest.mark.parametrize("i", range(5))
def test_shape(dockernet, dockernet_client, i):
    before = whole(dockernet)
    net, cs = shape(dockernet)
    if "ids" in seen:  # not this process's first test (an xdist worker's first may be any)
        assert whole(dockernet) == before + 3 and seen["ids"] == {n: c.id for n, c in cs.items()}
        assert all(c.logs() == "" for c in cs.values())  # earlier tests' probes are not this test's output
    check(dockernet, dockernet_client.api, net, cs)
"""
)


def test_one_shape_is_reused_whole_with_no_network_joins_from_the_second_test_on(inner_runs, pytester):
    pytester.makeconftest(COUNTING)
    pytester.makepyfile(test_one_shape=ONE_SHAPE)
    result = inner_runs.run_subprocess("--dockernet-require", "-p", "no:xdist", "--dockernet-pool", "4")
    result.assert_outcomes(passed=5)
    result.stdout.fnmatch_lines(
        ["warm pool: 12 of the containers and 4 of the networks * (12 of them with no network join*"]
    )
    calls = json.loads((pytester.path / "calls.json").read_text())
    assert [calls.get(f"test_shape[{i}]", []) for i in range(1, 5)] == [[]] * 4, calls
    assert inner_runs.resources() == []


SHAPES = (
    COMMON
    + """
import docker.errors


def test_first(dockernet, dockernet_client):
    before = whole(dockernet)
    net, cs = shape(dockernet)
    assert whole(dockernet) == before  # nothing was parked yet
    check(dockernet, dockernet_client.api, net, cs)


def test_same(dockernet, dockernet_client):
    before, ids = whole(dockernet), seen["ids"]
    net, cs = shape(dockernet)
    assert whole(dockernet) == before + 3 and {n: c.id for n, c in cs.items()} == ids
    check(dockernet, dockernet_client.api, net, cs)


def test_fewer(dockernet, dockernet_client):
    api, ids, before = dockernet_client.api, seen["ids"], whole(dockernet)
    net, cs = shape(dockernet, ("a", "b"))
    assert whole(dockernet) == before + 2 and {n: c.id for n, c in cs.items()} == {"a": ids["a"], "b": ids["b"]}
    dockernet.assert_not_resolves(cs["a"], "c")  # the one not asked for left before the call went on
    check(dockernet, api, net, cs)
    seen["c"] = ids["c"]


def test_extra(dockernet, dockernet_client):
    api, ids, before = dockernet_client.api, seen["ids"], whole(dockernet)
    net, cs = shape(dockernet, ("a", "b", "c", "d"))
    assert whole(dockernet) == before + 2 and cs["a"].id == ids["a"] and cs["b"].id == ids["b"]
    assert seen["c"] in {cs["c"].id, cs["d"].id}  # the one evicted waited idle, and joined again
    check(dockernet, api, net, cs)


def test_a_container_with_options(dockernet, dockernet_client):
    api, ids, before = dockernet_client.api, seen["ids"], whole(dockernet)
    net = dockernet.network("net")
    a = dockernet.container("a", networks=[net], environment={"OWN": "1"})
    assert not a.pooled and a.id not in ids.values() and whole(dockernet) == before
    assert attached(api, net) == {a.id}  # the parked ones left before it started
    for name in ("b", "web", *seen["names"]):
        dockernet.assert_not_resolves(a, name)
    seen.pop("names")


def test_again(dockernet, dockernet_client):
    net, cs = shape(dockernet)
    check(dockernet, dockernet_client.api, net, cs)


def test_a_network_with_options(dockernet, dockernet_client):
    api, before, parked = dockernet_client.api, whole(dockernet), seen["ids"]
    net = dockernet.network("net", internal=True)
    a = dockernet.container("a", networks=[net])
    assert whole(dockernet) == before and attached(api, net) == {a.id} and a.id not in parked.values()
    dockernet.assert_not_resolves(a, "b")
    dockernet.assert_not_resolves(a, "web")


def test_a_second_network(dockernet, dockernet_client):
    api, before, ids = dockernet_client.api, whole(dockernet), seen["ids"]
    net, cs = shape(dockernet)
    assert whole(dockernet) == before + 3 and {n: c.id for n, c in cs.items()} == ids
    lone = dockernet.network("lone")
    z = dockernet.container("z", networks=[lone])
    dockernet.assert_isolated([z], list(cs.values()))
    dockernet.assert_not_resolves(z, "web")
    check(dockernet, api, net, cs)


def test_again_after_two_networks(dockernet, dockernet_client):
    net, cs = shape(dockernet)
    check(dockernet, dockernet_client.api, net, cs)


def test_exec(dockernet, dockernet_client):
    before = whole(dockernet)
    net, cs = shape(dockernet)
    assert whole(dockernet) == before + 3
    assert cs["a"].exec(["true"])[0] == 0
    seen["changed"] = cs["a"].id


def test_after_exec(dockernet, dockernet_client):
    before = whole(dockernet)
    net, cs = shape(dockernet)
    assert whole(dockernet) == before  # not parked: the exec'd one was removed, the others left the network
    assert seen["changed"] not in {c.id for c in cs.values()}
    check(dockernet, dockernet_client.api, net, cs)


def test_process_left_running(dockernet, dockernet_client):
    api, before = dockernet_client.api, whole(dockernet)
    net, cs = shape(dockernet)
    assert whole(dockernet) == before + 3
    api.exec_start(api.exec_create(cs["a"].id, ["sleep", "300"]), detach=True)  # behind the handle's back
    seen["changed"] = cs["a"].id


def test_after_process_left_running(dockernet, dockernet_client):
    api, before = dockernet_client.api, whole(dockernet)
    net, cs = shape(dockernet)
    assert whole(dockernet) == before and seen["changed"] not in {c.id for c in cs.values()}
    assert api.containers(all=True, filters={"id": seen["changed"]}) == []
    check(dockernet, api, net, cs)


def test_other_names(dockernet, dockernet_client):
    api, before, ids = dockernet_client.api, whole(dockernet), seen["ids"]
    net, cs = shape(dockernet, ("x", "y"))
    assert whole(dockernet) == before and set(ids.values()) >= {c.id for c in cs.values()}
    for name in ("a", "web", "c"):
        dockernet.assert_not_resolves(cs["x"], name)
    check(dockernet, api, net, cs)


def test_last(dockernet, dockernet_client):
    net, cs = shape(dockernet)
    check(dockernet, dockernet_client.api, net, cs)
"""
)


def test_another_shape_gets_exactly_what_it_asked_for(inner_runs, pytester):
    pytester.makeconftest(COUNTING)
    pytester.makepyfile(test_shapes=SHAPES)
    result = inner_runs.run_subprocess("--dockernet-require", "-p", "no:xdist", "--dockernet-pool", "4", "-rA")
    result.assert_outcomes(passed=15)
    calls = json.loads((pytester.path / "calls.json").read_text())
    assert calls.get("test_same", []) == [], calls
    assert sorted(calls["test_fewer"]) == ["disconnect"], calls  # c evicted, nothing joined
    assert sorted(calls["test_extra"]) == ["connect"], calls  # c from the idle ones; d started on it
    assert sorted(calls["test_other_names"]) == ["connect"] * 2 + ["disconnect"] * 3, calls
    assert inner_runs.resources() == []


SCOPES = (
    COMMON
    + """
import pytest


@pytest.fixture(scope="module")
def module_shape(dockernet_module):
    return dockernet_module, *shape(dockernet_module)


@pytest.mark.parametrize("i", range(2))
def test_module_scoped(module_shape, dockernet_client, i):
    dockernet, net, cs = module_shape
    check(dockernet, dockernet_client.api, net, cs)
    seen.pop("names")
"""
)

SCOPES_NEXT = (
    COMMON
    + """
import pytest


@pytest.fixture(scope="session")
def session_shape(dockernet_session):
    return dockernet_session, *shape(dockernet_session, net_name="session-net")


def test_module_topology_reused_whole(dockernet, dockernet_client):
    before = whole(dockernet)
    net, cs = shape(dockernet)
    assert whole(dockernet) == before + 3
    check(dockernet, dockernet_client.api, net, cs)


def test_session_scoped(session_shape, dockernet, dockernet_client):
    topology, net, cs = session_shape
    seen.pop("names")
    check(topology, dockernet_client.api, net, cs)
    net2, cs2 = shape(dockernet)  # the function-scoped one's beside it
    check(dockernet, dockernet_client.api, net2, cs2)
    for c in cs.values():
        dockernet.assert_not_resolves(cs2["a"], c.docker_name)


def test_session_scoped_again(session_shape, dockernet_client):
    topology, net, cs = session_shape
    seen.pop("names")
    check(topology, dockernet_client.api, net, cs)
"""
)


def test_module_and_session_scoped_topologies(inner_runs, pytester):
    pytester.makepyfile(test_a_module=SCOPES, test_b_next=SCOPES_NEXT)
    result = inner_runs.run_subprocess("--dockernet-require", "-p", "no:xdist", "--dockernet-pool", "4")
    result.assert_outcomes(passed=5)
    assert inner_runs.resources() == []


def test_xdist_workers_reuse_topologies_whole(inner_runs, pytester):
    pytester.makepyfile(test_one_shape=ONE_SHAPE.replace("range(5)", "range(6)"))
    result = inner_runs.run_subprocess("--dockernet-require", "-n", "2", "--dockernet-pool", "4", timeout=240)
    result.assert_outcomes(passed=6)
    result.stdout.fnmatch_lines(["warm pool: * (* of them with no network join: parked whole)"])
    assert inner_runs.resources() == []


INTERRUPTED = (
    COMMON
    + """
import time

from inner_run_spy import ready


def test_parks(dockernet, dockernet_client):
    net, cs = shape(dockernet)
    check(dockernet, dockernet_client.api, net, cs)


def test_sleeps(dockernet, dockernet_client):
    if {how!r} == "provisional":
        net = dockernet.network("net")  # the parked one's containers on it, provisional
        assert len(dockernet_client.api.inspect_network(net.id)["Containers"]) == 3
    ready()
    time.sleep(60)
"""
)


@pytest.mark.parametrize("how", ["parked", "provisional"])
def test_a_run_stopped_mid_run_leaves_nothing(inner_runs, pytester, how):
    pytester.makepyfile(test_interrupted=INTERRUPTED.replace("{how!r}", repr(how)))
    proc = inner_runs.start("--dockernet-pool", "4")
    run_id = inner_runs.run_id_of(proc)
    left = inner_runs.resources(run_id)
    assert sum(r.startswith("container ") and "-pool-" in r for r in left) == 3, left  # the parked ones
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == pytest.ExitCode.INTERRUPTED, inner_runs.log(proc)
    assert inner_runs.resources(run_id) == []
