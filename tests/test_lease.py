"""A run's lease (pytest_dockernet.lease): how a lease tells a live run from a dead one, and
a lease held over the engine's attach stream. Leases across pid namespaces: test_liveness.py."""

from __future__ import annotations

import pytest

from pytest_dockernet.engine import remove_container
from pytest_dockernet.engine.docker_engine import DockerEngine
from pytest_dockernet.labels import SESSION, RunIdentity
from pytest_dockernet.lease import LEASE_ROLE as ROLE
from pytest_dockernet.lease import Lease, lease_states
from pytest_dockernet.plugin import STATE

pytestmark = pytest.mark.dockernet


def test_how_a_lease_is_read(dockernet_client, pytestconfig):
    """Exit code 0: the run's connection closed, so it is dead. Stopped by a signal (as the
    engine stops it when it stops or restarts): alive for the grace period. Created but not
    yet started: alive for the grace period too."""
    image = pytestconfig.stash[STATE].probe_image()
    api = dockernet_client.api
    made = []
    try:
        for run, command, start in [
            ("dn-t-ended", "exit 0", True),
            ("dn-t-killed", "exit 137", True),
            ("dn-t-starting", "exit 0", False),
        ]:
            labels = {SESSION: run, "pytest-dockernet.role": ROLE}
            made.append(api.create_container(image, ["sh", "-c", command], labels=labels)["Id"])
            if start:
                api.start(made[-1])
                api.wait(made[-1], timeout=30)
        states = lease_states(dockernet_client)
        assert (states["dn-t-ended"], states["dn-t-killed"], states["dn-t-starting"]) == (False, True, True)
    finally:
        for container_id in made:
            api.remove_container(container_id, force=True)


def test_a_lease_runs_while_held_and_goes_when_closed(dockernet_client, pytestconfig):
    """Held over Engine.attach, the lease runs and says its run is alive; closed, it is
    removed. (Its exit when the run's process dies: test_liveness.py.)"""
    identity = RunIdentity()  # a run of its own, not this one
    lease = Lease(DockerEngine(dockernet_client), identity, pytestconfig.stash[STATE].probe_image())
    try:
        assert lease_states(dockernet_client)[identity.run_id] is True  # created: alive already
        lease.wait_started()  # started in its thread
        assert dockernet_client.api.inspect_container(lease.id)["State"]["Running"]
        assert lease_states(dockernet_client)[identity.run_id] is True
        lease.close()
        assert identity.run_id not in lease_states(dockernet_client)
    finally:
        remove_container(dockernet_client, lease.id)  # gone already unless an assert failed
