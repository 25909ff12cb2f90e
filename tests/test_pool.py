"""The warm pool (issue 15): containers started ahead of need and handed to container()
calls that ask for nothing of their own, with what must stay true of them."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).parent.parent / "examples"
# Examples whose containers the pool can serve (the probe image with no options of its own).
POOLABLE_EXAMPLES = [
    "test_bridge_by_name.py",
    "test_isolation.py",
    "test_aliases.py",
    "test_connect_disconnect.py",
    "test_reachability_matrix.py",
    "test_start_together.py",
    "test_hermetic_dns.py",
    "test_fixture_scopes.py",
]

POOLED = """
import ipaddress
import inner_run_spy


def test_pooled(dockernet):
    assert dockernet.pool.wait_filled(timeout=60)
    net = dockernet.network("net")
    a = dockernet.container("a", networks={net: ["alias-a"]})
    b = dockernet.container("b", networks=[net])
    inner_run_spy.record(a, b)
    assert a.pooled and b.pooled
    assert a.logs() == ""  # nothing of its time in the pool shows
    assert a.docker_name == dockernet.docker_name_for("a")
    assert ipaddress.ip_address(a.ip(net)) in ipaddress.ip_network(net.subnet)
    dockernet.assert_resolves(b, "a", to=a)
    dockernet.assert_resolves(b, "alias-a", to=a)
    dockernet.assert_reachable(a, "b")
    code, hostname = a.exec(["cat", "/etc/hostname"])
    assert code == 0 and hostname.startswith("dn-") and "-pool-" in hostname  # the pool's, as documented
    assert [n.name for n in a.networks] == ["net"]  # it left the pool's network
    other = dockernet.network("other")
    dockernet.connect(a, other)
    dockernet.disconnect(a, net)
    dockernet.assert_not_resolves(b, "a")
    a.restart(timeout=0)
    assert a.status() == "running"


def test_not_pooled_when_it_asks_for_something(dockernet):
    assert dockernet.pool.wait_filled(timeout=60)
    net = dockernet.network("net")
    c = dockernet.container("c", networks=[net], environment={"X": "1"})
    d = dockernet.container("d", networks=[net], command=["sleep", "60"], image=dockernet.probe_image)
    e = dockernet.container("e", networks=[net], hostname="e-host")
    inner_run_spy.record(c, d, e)
    assert not any(x.pooled for x in (c, d, e))
"""


def test_a_pooled_container_is_what_container_makes(inner_runs, pytester):
    pytester.makepyfile(test_pooled=POOLED)
    result = inner_runs.run_subprocess("--dockernet-require", "-p", "no:xdist", "--dockernet-pool", "3")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["time: *; made: *2 pooled containers*"])
    assert inner_runs.existing(inner_runs.made()) == []


def test_the_pool_is_off_with_0_and_with_keep(inner_runs, pytester):
    pytester.makepyfile(
        """
        def test_unpooled(dockernet):
            assert dockernet.pool is None
            a = dockernet.container("a")
            assert not a.pooled
        """
    )
    for args in (["--dockernet-pool", "0"], ["--dockernet-keep"]):
        result = inner_runs.run_subprocess("--dockernet-require", "-p", "no:xdist", *args)
        result.assert_outcomes(passed=1)
        assert "pooled" not in result.stdout.str()


@pytest.mark.parametrize("value", ["-1", "many", "33"])
def test_a_bad_pool_size_is_a_usage_error(pytester, value):
    result = pytester.runpytest("--dockernet-pool", value)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*--dockernet-pool (ini dockernet_pool) is '{value}'*0 to 32*"])


def test_the_examples_give_the_same_results_with_the_pool_on_and_off(inner_runs, pytester):
    for name in POOLABLE_EXAMPLES:
        shutil.copy(EXAMPLES / name, pytester.path / name)
    outcomes = {}
    for size in ("0", "3"):
        result = inner_runs.run_subprocess("--dockernet-require", "-p", "no:xdist", "--dockernet-pool", size)
        outcomes[size] = result.parseoutcomes()
        assert result.ret == pytest.ExitCode.OK, result.stdout.str()
        assert ("pooled containers" in result.stdout.str()) == (size != "0")
    assert outcomes["0"]["passed"] == outcomes["3"]["passed"] > 0
    assert not {"failed", "errors", "skipped"} & (set(outcomes["0"]) | set(outcomes["3"]))


def test_the_pool_network_and_containers_go_at_the_end_of_the_run(inner_runs, pytester, dockernet_client):
    pytester.makepyfile(
        """
        def test_fills(dockernet):
            assert dockernet.pool.wait_filled(timeout=60)
        """
    )
    result = inner_runs.run_subprocess("--dockernet-require", "-p", "no:xdist", "--dockernet-pool", "2")
    result.assert_outcomes(passed=1)
    assert inner_runs.resources() == []  # the pool's two containers and its network too


def test_a_pooled_container_takes_the_address_the_test_pins(dockernet):
    if dockernet.pool is not None:  # on unless this run says --dockernet-pool 0 or --dockernet-keep
        assert dockernet.pool.wait_filled(timeout=60)
    net = dockernet.network("mine", subnet="10.77.9.0/24")
    a = dockernet.container("a", networks={net: {"ipv4_address": "10.77.9.23"}})
    assert a.ip(net) == "10.77.9.23"
    assert a.pooled == (dockernet.pool is not None)
