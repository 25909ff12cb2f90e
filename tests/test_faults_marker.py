"""The marker's faults: ``@pytest.mark.dockernet(partition=..., degrade=...)`` applied right
before the test body and lifted right after; bad arguments fail the test, naming them."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.dockernet


def test_the_marker_applies_faults_before_the_body_and_lifts_them_after(inner_runs, pytester):
    pytester.makepyfile(
        """
        import pytest
        from pytest_dockernet import assert_reachable, assert_unreachable

        @pytest.fixture(scope="module")
        def stack(dockernet_module):
            net = dockernet_module.network("n")
            return dockernet_module.containers({n: {"networks": [net]} for n in ("web", "api", "db")})

        @pytest.mark.dockernet(partition=[["web", "api"], ["db"]], degrade={"api": {"loss": 1.0, "to": ["web"]}})
        def test_faulty(stack, dockernet_module):
            assert_unreachable(stack["web"], stack["db"])
            assert_unreachable(stack["db"], stack["api"])
            assert_unreachable(stack["web"], stack["api"])  # api's answers to web are lost
            assert len(dockernet_module.faults) == 2

        def test_healed_afterwards(stack, dockernet_module):
            assert dockernet_module.faults == []
            assert_reachable(stack["web"], stack["db"])
            assert_reachable(stack["web"], stack["api"])

        @pytest.mark.dockernet(partition=[["web"], ["nobody"]])
        def test_unknown_name(stack):
            pass

        @pytest.mark.dockernet(degrade={"api": {"lost": 0.5}})
        def test_unknown_key(stack):
            pass

        @pytest.mark.dockernet(partition=[["web"]])
        def test_one_group(stack):
            pass

        @pytest.mark.dockernet(chaos=True)
        def test_unknown_marker_argument(stack):
            pass
        """
    )
    result = inner_runs.run("-rf")
    result.assert_outcomes(passed=2, failed=3, errors=1)
    output = result.stdout.str()
    for text in (
        "::test_unknown_name: @pytest.mark.dockernet: partition: no container named 'nobody' among those "
        "the test's dockernet fixtures made (api, db, web)",
        "::test_unknown_key: @pytest.mark.dockernet: degrade['api'] has unknown keys ['lost']: "
        "use loss, rate, delay, jitter, duplicate, corrupt, reorder, direction, to, network",
        "::test_one_group: @pytest.mark.dockernet: partition=[['web']] must be a list of two or more groups",
        "::test_unknown_marker_argument: @pytest.mark.dockernet got unknown arguments ['chaos']; "
        "it takes driver=, drivers=, needs=, capture=, partition=, degrade= and dns_faults=",
    ):
        assert text in output, text
    assert inner_runs.resources() == []  # helpers included


def test_faults_applied_before_one_that_fails_are_lifted(inner_runs, pytester):
    """The marker's faults are applied one after the other: when one cannot be (here delay=
    where the kernel has no netem: a skip), those applied before it are lifted, so the
    module's topology goes on to its next test unharmed. Where the kernel has netem, the
    test runs and its faults are lifted after it, as always."""
    pytester.makepyfile(
        """
        import pytest
        from pytest_dockernet import assert_reachable

        @pytest.fixture(scope="module")
        def stack(dockernet_module):
            net = dockernet_module.network("n")
            return dockernet_module.containers({n: {"networks": [net]} for n in ("web", "db")})

        @pytest.mark.dockernet(partition=[["web"], ["db"]], degrade={"db": {"delay": "100ms"}})
        def test_faulty(stack):
            pass

        def test_unharmed_afterwards(stack, dockernet_module):
            assert dockernet_module.faults == []
            assert_reachable(stack["web"], stack["db"])
        """
    )
    result = inner_runs.run("-rs")
    outcomes = {k: v for k, v in result.parseoutcomes().items() if k in ("passed", "skipped", "failed", "errors")}
    assert outcomes in ({"passed": 1, "skipped": 1}, {"passed": 2}), outcomes  # the skip: test_faulty's
    if outcomes.get("skipped"):
        assert "sch_netem" in result.stdout.str()
    assert inner_runs.resources() == []
