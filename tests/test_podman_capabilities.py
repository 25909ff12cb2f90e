"""Capabilities Podman 4.3 (netavark 1.4) lacks, as the probe finds them, and the skips,
the --dockernet-require rule and the summary they give.

Collected only by .ci/run's Podman part (DOCKERNET_TEST_ENGINE=podman, see conftest.py),
with DOCKER_HOST at scripts/ensure-podman's socket: each inner run talks to Podman.
"""

from __future__ import annotations

import os

import pytest

from pytest_dockernet import assert_reachable, assert_resolves

DOCKER_HOST = os.environ.get("DOCKER_HOST", "")
# The inner runs' subnets: neither the default engine's pool (10.213/16) nor the outer run's.
OWN_POOL = ("--dockernet-subnet-pool", "10.216.0.0/16", "-p", "no:cacheprovider")
# (Internal networks depend on the host's FORWARD rules beside Docker's: not listed either way.)
MISSING = ("hermetic-dns", "links", "connect-disconnect", "warm-pool-joins", "warm-pool-parking", "swarm")
PRESENT = ("aliases", "ipv6", "net-admin", "host-network", "bind-mounts")


@pytest.fixture(autouse=True)
def on_podman():
    assert DOCKER_HOST.startswith("unix://") and "podman" in DOCKER_HOST, f"DOCKER_HOST={DOCKER_HOST!r} is not Podman's"


def test_the_table_names_podman_and_what_it_lacks(pytester):
    result = pytester.runpytest_subprocess("--dockernet-capabilities")
    assert result.ret == 0
    result.stdout.fnmatch_lines(
        [f"Podman 4.* at {DOCKER_HOST} (API *, linux/*, network backend netavark)", "  this machine's host: yes; *"]
    )
    for name in MISSING:
        result.stdout.fnmatch_lines([f"  {name} * MISSING  *"])
    for name in PRESENT:
        result.stdout.fnmatch_lines([f"  {name} * present  *"])
    result.stdout.fnmatch_lines(["  hermetic-dns * MISSING  hermetic DNS unavailable (netavark): *"])


HERMETIC = """
import pytest

@pytest.mark.dockernet(needs=["hermetic-dns"])
def test_marked(dockernet):
    dockernet.container("a")

def test_unmarked(dockernet):
    dockernet.container("a")
"""


def test_hermetic_dns_skips_naming_podman_and_passes_under_require_only_when_marked(pytester):
    pytester.makepyfile(HERMETIC)
    result = pytester.runpytest(*OWN_POOL, "--dockernet-require", "-rs")
    result.assert_outcomes(skipped=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*test_unmarked: skipped by the plugin under --dockernet-require, * marked as needing "
            "(@pytest.mark.dockernet(needs=[[]'hermetic-dns'[]])): Podman 4.*: hermetic DNS unavailable (netavark): *",
        ]
    )
    result.stdout.fnmatch_lines(["SKIPPED [[]1[]] *: Podman 4.*: hermetic DNS unavailable (netavark): *"])
    result.stdout.fnmatch_lines([f"engine: Podman 4.* at {DOCKER_HOST} (missing: *hermetic-dns*)"])


FEATURES = """
import pytest

def test_links(dockernet):
    net = dockernet.network("n")
    dockernet.container("a", networks=[net])
    dockernet.container("b", networks=[net], links={"a": "db"})

def test_overlay(dockernet):
    dockernet.network("o", driver="overlay")

def test_connect(dockernet):
    one, two = dockernet.network("one"), dockernet.network("two")
    a = dockernet.container("a", networks=[one])
    dockernet.connect(a, two)
"""


def test_each_feature_skips_naming_the_capability_it_lacks(pytester):
    pytester.makepyfile(FEATURES)
    result = pytester.runpytest(*OWN_POOL, "--dockernet-dns", "host", "-rs")
    result.assert_outcomes(skipped=3)
    for reason in [
        "links unavailable (netavark): * [[]capability 'links'[]]",
        "no swarm mode: the engine does not serve GET /swarm * [[]capability 'swarm'[]]",
        "connect/disconnect unavailable (netavark): * [[]capability 'connect-disconnect'[]]",
    ]:
        result.stdout.fnmatch_lines([f"SKIPPED [[]1[]] *: Podman 4.*: {reason}"])


POOLED = """
def test_one(dockernet):
    dockernet.container("a", networks=[dockernet.network("n")])

def test_two(dockernet):
    dockernet.container("a", networks=[dockernet.network("n")])
"""


def test_without_warm_pool_joins_the_pool_is_off_and_nothing_skips(pytester):
    pytester.makepyfile(POOLED)
    result = pytester.runpytest(*OWN_POOL, "--dockernet-dns", "host", "--dockernet-require")
    result.assert_outcomes(passed=2)
    # The pool's line, if any (its empty networks still serve): no container was used again.
    assert "warm pool: 1 of the containers" not in result.stdout.str()
    result.stdout.no_fnmatch_line("warm pool: [1-9]* of the containers*")
    result.stdout.fnmatch_lines([f"engine: Podman 4.* at {DOCKER_HOST} (missing: *warm-pool-joins*)"])


SWARM_AUTO = """
import pytest

@pytest.mark.dockernet(drivers=["bridge", "overlay"])
def test_per_driver(dockernet):
    net = dockernet.network("app")
    dockernet.container("a", networks=[net])

@pytest.mark.dockernet(driver="overlay")
def test_overlay_by_default(dockernet):
    raise AssertionError("set up although Podman has no swarm")

@pytest.mark.dockernet(needs=["swarm"])
def test_marked_overlay(dockernet):
    dockernet.network("o", driver="overlay")

def test_unmarked_overlay(dockernet):
    dockernet.network("o", driver="overlay")

def test_bridge(dockernet):
    dockernet.container("a", networks=[dockernet.network("n")])
"""
SWARM_AUTO_ARGS = (*OWN_POOL, "--dockernet-dns", "host", "--dockernet-swarm", "auto")
NO_SWARM = "Podman 4.*: no swarm mode: the engine does not serve GET /swarm * [[]capability 'swarm'[]]"


def test_swarm_auto_makes_no_swarm_and_only_the_overlay_runs_skip(pytester):
    pytester.makepyfile(SWARM_AUTO)
    result = pytester.runpytest(*SWARM_AUTO_ARGS, "--dockernet-require")
    # [overlay] and driver="overlay" need swarm without being marked; only the unmarked
    # test that makes an overlay itself fails under --dockernet-require.
    result.assert_outcomes(passed=2, skipped=3, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*test_unmarked_overlay: skipped by the plugin under --dockernet-require, * marked as needing "
            f"(@pytest.mark.dockernet(needs=[[]'swarm'[]])): {NO_SWARM}"
        ]
    )
    assert "could not make a swarm" not in result.stdout.str()
    result = pytester.runpytest(*SWARM_AUTO_ARGS, "-rs", "-v")
    result.assert_outcomes(passed=2, skipped=4)
    result.stdout.fnmatch_lines(["*test_per_driver?bridge? PASSED*", "*test_per_driver?overlay? SKIPPED*"])
    result.stdout.fnmatch_lines([f"SKIPPED [[]1[]] *: {NO_SWARM}"])


def test_a_name_of_a_containers_second_network_resolves_whichever_resolver_is_first(dockernet):
    # Podman lists one aardvark-dns per network, in random order; the first network's says
    # NXDOMAIN for database.dns.podman (busybox nslookup's only question), though it answers
    # "database", as the container's getaddrinfo asks next. Made until a container lists
    # front's resolver first, the case that failed.
    front, back = dockernet.network("front"), dockernet.network("back")
    db = dockernet.container("db", networks={back: ["database"]})
    for i in range(12):
        api = dockernet.container(f"api{i}", networks=[front, back])
        if api.exec(["sh", "-c", "grep -m1 '^nameserver' /etc/resolv.conf"])[1].split()[1] == front.gateway:
            break
    else:
        pytest.fail("12 containers on front and back all listed back's resolver first")
    assert api.exec(["sh", "-c", "nslookup database"])[0] != 0  # what the probe asked alone
    assert_resolves(api, "database", to=db)
    assert_reachable(api, "database")
