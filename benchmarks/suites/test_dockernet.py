"""The per-test topology with pytest-dockernet, written the way its README shows."""

import pytest
from benchenv import LOOKUPS, NAMES, TESTS

from pytest_dockernet import assert_resolves


@pytest.mark.parametrize("i", range(TESTS))
def test_topology(dockernet, i):
    net = dockernet.network("net")
    cs = dockernet.containers({n: {"networks": [net]} for n in NAMES})

    matrix = dockernet.reachability(list(cs.values()), list(cs.values()))
    assert not matrix.unreachable(), str(matrix)
    for src, dst in LOOKUPS:
        assert_resolves(cs[src], dst, to=cs[dst])
