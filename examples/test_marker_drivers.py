"""The dockernet marker: the default network driver of a test, or one run per driver."""

import pytest

from pytest_dockernet import assert_reachable


# Runs as test_runs_once_per_driver[bridge] and [overlay]. Overlay networks need a swarm:
# pass --dockernet-swarm auto (or --dockernet-lab N); without one the [overlay] run is skipped
# with that reason, or fails under --dockernet-require. An engine without swarm mode
# (needs=["swarm"]: Podman) skips both runs, naming the capability, under it too. The [overlay]
# run needs the capability "overlay" as well (rootless Docker lacks it): skipped, naming it.
@pytest.mark.dockernet(drivers=["bridge", "overlay"], needs=["swarm"])
def test_runs_once_per_driver(dockernet):
    net = dockernet.network("app")  # driver= defaults to this run's driver
    assert net.driver == dockernet.default_driver
    client = dockernet.container("client", networks=[net])
    dockernet.container("server", networks=[net])
    assert_reachable(client, "server")


@pytest.mark.dockernet(driver="bridge")
def test_with_a_default_driver(dockernet):
    assert dockernet.network("app").driver == "bridge"
