"""A test dominated by waiting, with pytest-dockernet: two networks, a container on each,
and isolation between them asserted (so the test waits out an unreachability timeout)."""

import pytest
from benchenv import TESTS

WAIT = 2.0  # seconds each test waits for answers that must not come


@pytest.mark.parametrize("i", range(TESTS))
def test_waits(dockernet, i):
    front, back = dockernet.network("front"), dockernet.network("back")
    dockernet.containers({"web": {"networks": [front]}, "db": {"networks": [back]}})
    dockernet.assert_isolated(front, back, timeout=WAIT)
