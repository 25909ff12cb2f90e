"""The dockernet marker: the default network driver of a test, or one run per driver."""

import pytest

from pytest_dockernet import assert_reachable


# Runs as test_runs_once_per_driver[bridge] and [overlay]. Overlay networks need a
# swarm: pass --dockernet-swarm auto (or --dockernet-lab N); without one the [overlay]
# run is skipped with that reason, or fails under --dockernet-require. The [overlay] run
# needs the capabilities "swarm" and "overlay" without being marked: an engine without
# swarm mode (Podman) or whose overlays carry nothing (rootless Docker) skips it, naming
# the capability, under --dockernet-require too, and runs the [bridge] run.
@pytest.mark.dockernet(drivers=["bridge", "overlay"])
def test_runs_once_per_driver(dockernet):
    net = dockernet.network("app")  # driver= defaults to this run's driver
    assert net.driver == dockernet.default_driver
    client = dockernet.container("client", networks=[net])
    dockernet.container("server", networks=[net])
    assert_reachable(client, "server")


@pytest.mark.dockernet(driver="bridge")
def test_with_a_default_driver(dockernet):
    assert dockernet.network("app").driver == "bridge"
