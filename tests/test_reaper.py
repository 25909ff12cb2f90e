"""Removing what dead runs left (pytest_dockernet.reaper): how a prune reports it. Runs killed
and pruned for real: test_teardown.py, test_liveness.py, test_build.py."""

from __future__ import annotations

from pytest_dockernet.reaper import Pruned


def test_how_a_prune_reports_images():
    pruned = Pruned(containers=["dn-r1-1-c"], images=["pytest-dockernet/build:abc-r1"], runs={"r1"})
    assert pruned.describe() == (
        "removed 1 container and 0 networks left by 1 dead run (r1); removed 1 image that build() made for "
        "dead runs\n  container dn-r1-1-c\n  image pytest-dockernet/build:abc-r1"
    )
    assert Pruned(images=["pytest-dockernet/build:abc-r2"]).describe() == (
        "removed 1 image that build() made for dead runs\n  image pytest-dockernet/build:abc-r2"
    )
