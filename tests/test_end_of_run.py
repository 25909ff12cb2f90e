"""The end of a run (issue 26): the last test gives nothing back to the pool, the lease starts
while the first test sets up, and what is left after the summary line is removed by a
detached process (pytest_dockernet.end_of_run) unless the run must wait for it."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from pytest_dockernet import end_of_run
from pytest_dockernet.engine.docker_engine import DockerEngine
from pytest_dockernet.errors import DockernetError
from pytest_dockernet.labels import SESSION, RunIdentity
from pytest_dockernet.lease import Lease, lease_states

pytestmark = pytest.mark.dockernet

# Loaded into the inner runs: after the plugin's own end of the run (trylast), it notes what
# of the run is still on the engine and what its lease says, in the order the test needs.
WITNESS = """
import json
import os
import time
from pathlib import Path

import docker
import pytest

HERE = Path(__file__).parent


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config):
    from pytest_dockernet import end_of_run
    from pytest_dockernet.labels import SESSION
    from pytest_dockernet.lease import lease_states
    from pytest_dockernet.plugin import STATE

    run_id = config.stash[STATE].identity.run_id
    client = docker.from_env()
    left = client.api.containers(all=True, filters={"label": f"{SESSION}={run_id}"})
    seen = {
        "roles": sorted(c["Labels"].get("pytest-dockernet.role", "") for c in left),
        "networks_of": {
            c["Labels"].get("pytest-dockernet.name", ""): sorted(c["NetworkSettings"]["Networks"]) for c in left
        },
        "pending": end_of_run.pending([run_id]) == [run_id],
    }
    if os.environ.get("WITNESS_KILLS_THE_REMOVAL") and seen["pending"]:
        os.kill(int(end_of_run.marker(run_id).read_text()), 9)
        time.sleep(0.5)  # the lease's process exits a moment after its stdin closed
        from pytest_dockernet.engine.docker_engine import DockerEngine
        from pytest_dockernet.labels import RunIdentity
        from pytest_dockernet.reaper import Judge

        judge = Judge(DockerEngine(client), RunIdentity())
        left = client.api.containers(all=True, filters={"label": f"{SESSION}={run_id}"})
        left += client.api.networks(filters={"label": f"{SESSION}={run_id}"})
        seen["left_after_kill"] = len(left)
        seen["judged_dead"] = sum(judge.dead(item["Labels"]) for item in left)
    # Its stdin closed, the lease's process exits a moment later.
    for _ in range(100):
        seen["alive"] = lease_states(client).get(run_id)
        if not seen["alive"]:
            break
        time.sleep(0.05)
    (HERE / "witness.json").write_text(json.dumps(seen))
    client.close()
"""

ONE_TEST = """
    def test_one(dockernet):
        net = dockernet.network("net")
        cs = dockernet.containers({"a": {"networks": [net]}, "b": {"networks": [net]}})
        dockernet.assert_reachable(cs["a"], "b")
"""


@pytest.fixture
def witnessed(inner_runs, pytester, monkeypatch):
    monkeypatch.delenv("CI", raising=False)  # under CI a run waits for its own removal
    monkeypatch.delenv("BUILD_NUMBER", raising=False)
    pytester.makepyfile(witness=WITNESS)
    pytester.makepyfile(ONE_TEST)
    return inner_runs


def witness(pytester):
    import json

    return json.loads((pytester.path / "witness.json").read_text())


def test_the_end_of_a_run_is_removed_after_pytest_exits_and_nothing_is_left(witnessed, pytester):
    result = witnessed.run_subprocess("-p", "witness")
    result.assert_outcomes(passed=1)
    seen = witness(pytester)
    # After the summary: the lease has ended (the run is a dead one's to every prune) and was
    # left, with the pool's containers, to the detached removal.
    assert seen["alive"] is not True  # False: exited; None: removed already
    assert seen["pending"]
    assert "lease" in seen["roles"] and seen["roles"].count("pooled") == 2
    # The last test gave nothing back: its containers are still on its network.
    assert all(len(networks) == 1 for name, networks in seen["networks_of"].items() if name != "")
    assert witnessed.resources() == []  # once the detached removal is done


@pytest.mark.parametrize("how", [("--dockernet-teardown", "wait"), ("CI", "true")])
def test_a_run_told_to_wait_removes_its_end_itself(witnessed, pytester, monkeypatch, how):
    option, value = how
    if option == "CI":
        monkeypatch.setenv("CI", value)
        result = witnessed.run_subprocess("-p", "witness")
    else:
        result = witnessed.run_subprocess("-p", "witness", f"{option}={value}")
    result.assert_outcomes(passed=1)
    seen = witness(pytester)
    assert seen == {"roles": [], "networks_of": {}, "alive": None, "pending": False}
    assert witnessed.resources() == []


def test_a_killed_removal_leaves_a_dead_run_s_resources_which_the_next_run_prunes(witnessed, pytester, monkeypatch):
    monkeypatch.setenv("WITNESS_KILLS_THE_REMOVAL", "1")
    first = witnessed.run_subprocess("-p", "witness")
    first.assert_outcomes(passed=1)
    seen = witness(pytester)
    # Killed at once, it removed nothing; what is left is a dead run's to any prune (another
    # run's on this engine may take some of it before the next one here does).
    assert seen["pending"]
    assert seen["judged_dead"] == seen["left_after_kill"]
    monkeypatch.delenv("WITNESS_KILLS_THE_REMOVAL")
    second = witnessed.run_subprocess("--dockernet-prune")  # what every run does first, reported
    assert second.ret == 0
    assert witnessed.resources() == []


def test_a_pooled_container_on_a_network_of_its_own_topology_is_removed_in_the_last_test(witnessed, pytester):
    """A network with options is the topology's, not the pool's: its removal needs the pooled
    container off it, so the last test removes that container rather than leave it joined."""
    pytester.makepyfile(
        test_one="""
        def test_one(dockernet):
            net = dockernet.network("net", internal=True)
            assert dockernet.container("a", networks=[net]).pooled
        """
    )
    witnessed.run_subprocess("-p", "witness", "test_one.py").assert_outcomes(passed=1)  # no teardown error
    assert witnessed.resources() == []


def test_the_lease_exists_before_the_first_test_makes_anything(inner_runs, pytester):
    """Created at once (alive for prunes from then on), started a moment later by itself."""
    pytester.makepyfile(
        """
        import time

        from pytest_dockernet.labels import SESSION
        from pytest_dockernet.lease import START_WITHIN, lease_states

        def test_first(dockernet, dockernet_client):
            run_id = dockernet.context.identity.run_id
            assert lease_states(dockernet_client)[run_id] is True
            leases = dockernet_client.api.containers(
                all=True, filters={"label": [f"{SESSION}={run_id}", "pytest-dockernet.role=lease"]}
            )
            assert len(leases) == 1
            dockernet.network("n")

        def test_second(dockernet, dockernet_client):
            run_id = dockernet.context.identity.run_id
            deadline = time.monotonic() + START_WITHIN + 30  # the deadline only ends a hang
            while True:
                lease = dockernet_client.api.containers(
                    filters={"label": [f"{SESSION}={run_id}", "pytest-dockernet.role=lease"]}
                )
                if [c["State"] for c in lease] == ["running"]:
                    break
                assert time.monotonic() < deadline, lease
                time.sleep(0.1)
        """
    )
    inner_runs.run().assert_outcomes(passed=2)
    assert inner_runs.resources() == []


def test_a_lease_that_cannot_start_says_why_and_leaves_nothing(dockernet_client, tmp_path):
    """Started in its thread: the failure comes from wait_started(), and the lease is gone."""
    (tmp_path / "Dockerfile").write_text("FROM scratch\nCOPY Dockerfile /nothing\n")
    tag = f"dn-test-no-shell:{os.getpid()}"
    image, _ = dockernet_client.images.build(path=str(tmp_path), tag=tag, rm=True)
    identity = RunIdentity()
    try:
        lease = Lease(DockerEngine(dockernet_client), identity, tag)
        assert lease.id  # created at once
        with pytest.raises(DockernetError, match="starting the run's lease failed"):
            lease.wait_started()
        assert not lease.running
        assert identity.run_id not in lease_states(dockernet_client)
        assert dockernet_client.api.containers(all=True, filters={"label": f"{SESSION}={identity.run_id}"}) == []
    finally:
        dockernet_client.images.remove(image.id, force=True)


def test_pending_knows_a_removal_by_its_lock_and_forgets_one_that_ended(tmp_path, monkeypatch):
    """The lock of a marker is held as long as the removal's process lives, however it ends."""
    monkeypatch.setattr(end_of_run.tempfile, "gettempdir", lambda: str(tmp_path))
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, os, sys; fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT); "
            "fcntl.flock(fd, fcntl.LOCK_EX); print(flush=True); sys.stdin.read()",
            str(end_of_run.marker("dn-run-a")),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        holder.stdout.readline()  # it holds the lock now
        end_of_run.marker("dn-run-b").write_text("")  # its process has ended: nobody holds it
        assert end_of_run.pending() == ["dn-run-a"]
        assert not end_of_run.marker("dn-run-b").exists()
        assert not end_of_run.wait(["dn-run-a"], timeout=0.2)
        holder.kill()  # however it ends, its lock goes with it
        assert end_of_run.wait(["dn-run-a"], timeout=30)
        assert end_of_run.pending() == []
    finally:
        holder.kill()
        holder.wait()
