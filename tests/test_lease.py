"""A run's lease (pytest_dockernet.lease): how a lease tells a live run from a dead one, and
a lease held over the engine's attach stream. Leases across pid namespaces: test_liveness.py."""

from __future__ import annotations

import os
import subprocess
import time

import pytest

from pytest_dockernet.engine import remove_container
from pytest_dockernet.engine.docker_engine import DockerEngine
from pytest_dockernet.labels import BOOT, PID, SESSION, STARTED, RunIdentity
from pytest_dockernet.lease import ENDED, Lease, lease_states
from pytest_dockernet.lease import LEASE_ROLE as ROLE
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


def test_a_lease_not_started_yet_is_alive_unless_its_run_ended_or_its_maker_is_gone(dockernet_client, pytestconfig):
    """A run's lease starts a moment after it is made (lease.START_WITHIN). Until then it is
    read as alive for the grace period, unless its run has ended (the lease is renamed
    ``...-ended``) or the process that made it is known to be gone (this host, this pid
    namespace): a run killed before its lease started is dead at once to runs beside it."""
    image = pytestconfig.stash[STATE].probe_image()
    api = dockernet_client.api
    me = RunIdentity()
    gone = subprocess.Popen(["true"])
    gone.wait()  # its pid names no process now
    made = []
    try:
        for run, name, owner, boot in [
            ("dn-t-ended", f"dn-t-ended-lease{ENDED}", os.getpid(), me.boot),
            ("dn-t-gone", "dn-t-gone-lease", gone.pid, me.boot),
            ("dn-t-alive", "dn-t-alive-lease", os.getpid(), me.boot),
            # Another machine of the same host name (another boot id): its pids are not ours.
            ("dn-t-elsewhere", "dn-t-elsewhere-lease", gone.pid, "another-boot-id"),
        ]:
            labels = {**me.labels(), SESSION: run, PID: str(owner), BOOT: boot, "pytest-dockernet.role": ROLE}
            if owner != os.getpid():
                labels.pop(STARTED)
            made.append(api.create_container(image, ["sh", "-c", "exit 0"], name=name, labels=labels)["Id"])
        judged = lease_states(dockernet_client, owner_gone=me.maker_is_gone)
        assert {run: judged[run] for run in ("dn-t-ended", "dn-t-gone", "dn-t-alive", "dn-t-elsewhere")} == {
            "dn-t-ended": False,
            "dn-t-gone": False,
            "dn-t-alive": True,
            "dn-t-elsewhere": True,
        }
        unjudged = lease_states(dockernet_client)  # no way to tell its maker is gone: alive for now
        assert (unjudged["dn-t-ended"], unjudged["dn-t-gone"]) == (False, True)
    finally:
        for container_id in made:
            api.remove_container(container_id, force=True)


def test_a_run_that_ends_before_its_lease_started_leaves_it_renamed_as_ended(dockernet_client, pytestconfig):
    identity = RunIdentity()
    lease = Lease(DockerEngine(dockernet_client), identity, pytestconfig.stash[STATE].probe_image(), start_after=60)
    try:
        assert dockernet_client.api.inspect_container(lease.id)["State"]["Status"] == "created"
        assert lease_states(dockernet_client)[identity.run_id] is True
        assert not lease.running
        lease.close(remove=False)  # as a run does that hands its end over, or keeps resources
        state = dockernet_client.api.inspect_container(lease.id)
        assert (state["Name"], state["State"]["Status"]) == (f"/dn-{identity.run_id}-lease{ENDED}", "created")
        assert lease_states(dockernet_client)[identity.run_id] is False
        lease.close()  # as a run does when the hand-over failed: removed now
        assert identity.run_id not in lease_states(dockernet_client)
    finally:
        remove_container(dockernet_client, lease.id)


def test_a_run_lease_starts_by_itself_a_moment_after_it_is_made(dockernet_client, pytestconfig):
    identity = RunIdentity()
    lease = Lease(DockerEngine(dockernet_client), identity, pytestconfig.stash[STATE].probe_image(), start_after=0.5)
    try:
        lease.wait_started()
        assert lease.running
        assert dockernet_client.api.inspect_container(lease.id)["State"]["Running"]
        lease.close()
        assert identity.run_id not in lease_states(dockernet_client)
    finally:
        remove_container(dockernet_client, lease.id)


def test_a_run_that_ends_while_its_lease_starts_leaves_it_ended(dockernet_client, pytestconfig):
    """Closed (as a run's end does) at any moment of its start, without waiting for the start:
    the lease ends up read as ended (exited with code 0, or renamed if it never started)."""
    image = pytestconfig.stash[STATE].probe_image()
    for delay in (0.0, 0.001, 0.01, 0.05, 0.1):
        identity = RunIdentity()
        lease = Lease(DockerEngine(dockernet_client), identity, image)  # starts at once
        try:
            time.sleep(delay)  # somewhere in its attach and start
            lease.close(remove=False)
            deadline = time.monotonic() + 30  # the deadline only ends a hang
            while lease_states(dockernet_client).get(identity.run_id) is not False:
                assert time.monotonic() < deadline, dockernet_client.api.inspect_container(lease.id)["State"]
                time.sleep(0.05)
        finally:
            lease.wait_started()
            remove_container(dockernet_client, lease.id)
