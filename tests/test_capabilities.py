"""Capabilities on the default engine: the table, needs= on the marker, the
--dockernet-require rule for a skip of a missing capability, the summary's engine line.

A missing capability is made honestly: the inner run's process is put in a network
namespace of its own (``unshare --net``) while it reaches the default engine through its
socket, so a host-mode container would not share its network ("host-network") and the
lab could not join its host ("lab"), as for a test process in a dev container. What
other engines lack (Podman, a remote engine) is tested by their own CI parts.
"""

from __future__ import annotations

import sys

import pytest

from pytest_dockernet.capabilities import CAPABILITIES


def in_own_netns(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    """An inner pytest run in a network namespace of its own (the engine still at its socket)."""
    return pytester.run("unshare", "--net", sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args)


def test_the_table_shows_every_capability_of_the_default_engine_present(pytester):
    pytester.makepyfile("def test_never_runs():\n    raise AssertionError('--dockernet-capabilities runs no test')\n")
    result = pytester.runpytest_subprocess("--dockernet-capabilities")
    assert result.ret == 0
    result.stdout.fnmatch_lines(["Docker * at unix://*docker.sock (API *, linux/*)", "  this machine's host: yes; *"])
    for name in CAPABILITIES:
        result.stdout.fnmatch_lines([f"  {name} * present  *"])
    assert "MISSING" not in result.stdout.str()
    assert "never_runs" not in result.stdout.str()


def test_the_table_in_another_network_namespace_says_what_is_missing_and_why(pytester):
    result = in_own_netns(pytester, "--dockernet-capabilities")
    assert result.ret == 0
    result.stdout.fnmatch_lines(
        [
            "  this machine's host: yes; *docker.sock is served by pid * on this machine, in another network namespace",
            "  host-network * MISSING  the engine at unix://*docker.sock: *in another network namespace",
            "  lab * MISSING  the engine at unix://*docker.sock is not in this process's network namespace *",
        ]
    )
    for present in ("hermetic-dns", "bind-mounts"):
        result.stdout.fnmatch_lines([f"  {present} * present  *"])


@pytest.mark.parametrize(
    ("needs", "said"),
    [
        ('"hermetic-dns"', "got 'hermetic-dns'; give a list of capabilities among: hermetic-dns, aliases, *"),
        ('["hermetic-dns", "no-such"]', "names no capability: 'no-such'; the capabilities are: hermetic-dns, *, lab"),
    ],
    ids=["not-a-list", "unknown-name"],
)
def test_needs_takes_a_list_of_known_capabilities(pytester, needs, said):
    pytester.makepyfile(
        f"""
        import pytest

        @pytest.mark.dockernet(needs={needs})
        def test_bad():
            pass

        def test_other():
            pass
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines([f"*test_bad: @pytest.mark.dockernet(needs=...) {said}"])


NEEDS_LAB = """
import pytest

@pytest.mark.dockernet(needs=["lab"])
def test_marked(dockernet_lab):
    pass

def test_unmarked(dockernet_lab):
    pass
"""


LAB_MISSING = (
    "Docker 20.10.*: the engine at unix://*docker.sock is not in this process's network namespace (*) "
    "[[]capability 'lab'[]]"
)


def test_under_require_a_missing_capability_skips_only_a_test_marked_as_needing_it(pytester):
    pytester.makepyfile(NEEDS_LAB)
    result = in_own_netns(pytester, "--dockernet-require", "--dockernet-lab", "2", "-rs")
    # The marked test is skipped by its marker before set-up; the other at its fixture's, as an error.
    result.assert_outcomes(skipped=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*test_unmarked: skipped by the plugin under --dockernet-require, which allows its skips only for a "
            "missing kernel feature (IPVS, netem, CONFIG_IFB, sch_ingress, act_mirred) or a capability the test is "
            "marked as needing "
            f"(@pytest.mark.dockernet(needs=[[]'lab'[]])): dockernet: no lab (--dockernet-lab): {LAB_MISSING}",
        ]
    )
    result.stdout.fnmatch_lines([f"SKIPPED [[]1[]] test_under_require*.py:*: {LAB_MISSING}"])
    # What the run found missing (the probe that answered "lab" answered "host-network" too), with the engine.
    result.stdout.fnmatch_lines(["engine: Docker 20.10.* at unix://*docker.sock (missing: host-network, lab)"])


def test_without_require_both_skip_naming_the_engine_and_the_capability(pytester):
    pytester.makepyfile(NEEDS_LAB)
    result = in_own_netns(pytester, "--dockernet-lab", "2", "-rs")
    result.assert_outcomes(skipped=2)
    result.stdout.fnmatch_lines(
        [
            f"SKIPPED [[]1[]] *.py:3: {LAB_MISSING}",
            f"SKIPPED [[]1[]] *.py:7: dockernet: no lab (--dockernet-lab): {LAB_MISSING}",
        ]
    )


def test_a_test_marked_as_needing_a_missing_capability_skips_before_it_sets_up(pytester):
    pytester.makepyfile(
        """
        import pytest

        @pytest.fixture
        def made():
            raise AssertionError("set up although the test cannot run")

        @pytest.mark.dockernet(needs=["host-network", "bind-mounts"])
        def test_host_mode(made, dockernet):
            pass

        @pytest.mark.dockernet(needs=["bind-mounts"])
        def test_present(dockernet):
            pass
        """
    )
    result = in_own_netns(pytester, "--dockernet-require", "-rs")
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(
        [
            "SKIPPED [[]1[]] *: Docker 20.10.*: the engine at unix://*: *another network namespace "
            "[[]capability 'host-network'[]]"
        ]
    )
    result.stdout.fnmatch_lines(["engine: Docker 20.10.* at unix://*docker.sock (missing: host-network, lab)"])


def test_the_summary_names_the_engine_when_nothing_is_missing(pytester):
    pytester.makepyfile(
        """
        def test_two(dockernet):
            net = dockernet.network("n")
            dockernet.container("a", networks=[net])
        """
    )
    result = pytester.runpytest("--dockernet-require")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        ["*- dockernet -*", "engine: Docker 20.10.* at unix://*docker.sock (no capability found missing)"]
    )
