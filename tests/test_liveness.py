"""A live run is never reaped, whatever pid namespace it runs in; a dead one always is.

Runs are told apart by their leases (pytest_dockernet.lease): a run started under
``unshare --pid`` has pids of its own, so its pid says nothing to a run outside, and the
other way round.
"""

from __future__ import annotations

import random
import shutil
import signal
import subprocess
import time

import pytest
from test_teardown import SLEEPER

from pytest_dockernet.labels import SESSION

pytestmark = pytest.mark.skipif(shutil.which("unshare") is None, reason="needs unshare (util-linux)")

IN_PID_NAMESPACE = ["unshare", "--pid", "--fork", "--mount-proc", "--kill-child=SIGKILL"]


def start_in_pid_namespace(inner_runs, pytester, *args: str) -> tuple[subprocess.Popen, str]:
    """A background run in a pid namespace of its own: (the unshare process, its run id)."""
    before = set(inner_runs.run_ids())
    log = open(pytester.path / "namespaced.log", "w")  # noqa: SIM115 - closed with the process
    proc = subprocess.Popen(
        [*IN_PID_NAMESPACE, *inner_runs.pytest_command("-s", *args)],
        cwd=pytester.path,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    inner_runs.processes.append(proc)
    deadline = time.monotonic() + 60
    while not list(pytester.path.glob("ready-*")) or not set(inner_runs.run_ids()) - before:
        if proc.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"the namespaced run did not get ready:\n{(pytester.path / 'namespaced.log').read_text()}")
        time.sleep(0.1)
    (run_id,) = set(inner_runs.run_ids()) - before
    return proc, run_id


def test_a_prune_in_a_pid_namespace_never_reaps_a_live_run_outside(inner_runs, pytester):
    pytester.makepyfile(SLEEPER)
    proc = inner_runs.start()
    run_id = inner_runs.run_id_of(proc)
    before = sorted(inner_runs.resources(run_id))

    result = pytester.run(*IN_PID_NAMESPACE, *inner_runs.pytest_command("--dockernet-prune"), timeout=120)
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    assert run_id not in result.stdout.str()
    # Nor does a plain run there, which prunes when it starts.
    pytester.makepyfile(test_other="def test_other(dockernet): dockernet.network('o')")
    result = pytester.run(*IN_PID_NAMESPACE, *inner_runs.pytest_command("test_other.py"), timeout=120)
    result.assert_outcomes(passed=1)
    assert run_id not in result.stdout.str()
    assert sorted(inner_runs.resources(run_id)) == before

    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=60)
    assert inner_runs.resources(run_id) == []


def test_a_live_run_in_a_pid_namespace_is_not_reaped_from_outside(inner_runs, pytester):
    pytester.makepyfile(test_sleeper=SLEEPER)
    proc, run_id = start_in_pid_namespace(inner_runs, pytester, "test_sleeper.py")
    before = sorted(inner_runs.resources(run_id))
    assert len(before) == 3  # a network, a container, its lease

    result = inner_runs.run("--dockernet-prune")
    assert run_id not in result.stdout.str()
    assert sorted(inner_runs.resources(run_id)) == before

    # Killed, it is dead to everyone: its lease ended with its connection.
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    result = inner_runs.run("--dockernet-prune")
    # (Any other run's prune on this engine may take a share of it first: counts are not judged.)
    result.stdout.fnmatch_lines([f"dockernet: removed * left by 1 dead run ({run_id})*"])
    assert inner_runs.resources(run_id) == []


def test_a_lease_is_running_while_its_run_lives_and_gone_after(inner_runs, pytester, dockernet_client):
    pytester.makepyfile(SLEEPER)
    proc = inner_runs.start()
    run_id = inner_runs.run_id_of(proc)
    leases = dockernet_client.api.containers(filters={"label": [f"{SESSION}={run_id}", "pytest-dockernet.role=lease"]})
    assert [c["State"] for c in leases] == ["running"]
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=60)
    assert inner_runs.resources(run_id) == []  # once its end-of-run removal is done


QUICK_AND_FAILING = """
    import pytest_dockernet.lease

    pytest_dockernet.lease.START_WITHIN = 600  # this run ends long before its lease would start

    def test_fails(dockernet):
        dockernet.container("c", networks=[dockernet.network("n")])
        assert False
"""


def test_a_run_that_ended_before_its_lease_started_is_dead_at_once_to_runs_outside(inner_runs, pytester):
    """A run shorter than lease.START_WITHIN never starts its lease: at its end it renames
    it ``...-ended``, which runs in other pid namespaces (or on other hosts) read as ended.
    Kept resources (``--dockernet-keep``) stay beside it, for the next prune to remove."""
    pytester.makepyfile(test_quick=QUICK_AND_FAILING)
    before = set(inner_runs.run_ids())
    result = pytester.run(
        *IN_PID_NAMESPACE, *inner_runs.pytest_command("--dockernet-keep", "test_quick.py"), timeout=120
    )
    result.assert_outcomes(failed=1)
    (run_id,) = set(inner_runs.run_ids()) - before
    leases = inner_runs.client.api.containers(
        all=True, filters={"label": [f"{SESSION}={run_id}", "pytest-dockernet.role=lease"]}
    )
    assert [(c["Names"], c["State"]) for c in leases] == [([f"/dn-{run_id}-lease-ended"], "created")]
    assert len(inner_runs.resources(run_id)) == 3  # the kept network and container, the lease

    result = inner_runs.run("--dockernet-prune")  # from outside its pid namespace
    result.stdout.fnmatch_lines([f"dockernet: removed * left by 1 dead run ({run_id})*"])
    assert inner_runs.resources(run_id) == []


# -- a fixed subnet held by another run ------------------------------------------------------

HOLDER = """
    import time

    from inner_run_spy import ready

    def test_holds(dockernet):
        dockernet.network("held", subnet="{subnet}")
        ready()
        time.sleep(60)
"""

WAITER = """
    import ipaddress

    import pytest_dockernet.networks
    from inner_run_spy import ready

    pytest_dockernet.networks.SUBNET_WAIT = {wait}

    def test_waits(dockernet):
        ready()  # this run's start-up prune is over: the holder was alive then
        net = dockernet.network("mine", subnet="{subnet}")
        address = dockernet.container("c", networks=[net]).ip(net)
        assert ipaddress.ip_address(address) in ipaddress.ip_network(net.subnet)
"""


def a_subnet() -> str:
    return f"10.218.{random.randrange(256)}.0/24"


def test_a_fixed_subnet_held_by_a_run_killed_meanwhile_is_pruned_and_taken(inner_runs, pytester):
    """The holder is killed after this run's start-up prune (as an xdist worker that crashes),
    while this run waits for the subnet: the wait finds it dead, prunes it and goes on."""
    subnet, host = a_subnet(), inner_runs.own_host()
    pytester.makepyfile(test_holder=HOLDER.replace("{subnet}", subnet))
    holder = inner_runs.start("test_holder.py", host=host)
    held_by = inner_runs.run_id_of(holder)
    pytester.makepyfile(test_waiter=WAITER.replace("{subnet}", subnet).replace("{wait}", "60"))
    waiter = inner_runs.start("test_waiter.py", host=host)

    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=10)
    assert waiter.wait(timeout=120) == pytest.ExitCode.OK, inner_runs.log(waiter)
    assert "1 passed" in inner_runs.log(waiter)
    assert inner_runs.resources(held_by) == []


def test_a_fixed_subnet_held_by_a_live_run_names_it_and_the_prune_command(inner_runs, pytester):
    subnet, host = a_subnet(), inner_runs.own_host()
    pytester.makepyfile(test_holder=HOLDER.replace("{subnet}", subnet))
    holder = inner_runs.start("test_holder.py", host=host)
    held_by = inner_runs.run_id_of(holder)
    pytester.makepyfile(test_waiter=WAITER.replace("{subnet}", subnet).replace("{wait}", "2"))

    result = inner_runs.run_on(host, "test_waiter.py")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            f"E * creating network 'mine' failed: subnet {subnet} is still held after 2 s by dn-{held_by}-*-held "
            f"(run {held_by}), of a run that is alive *`pytest --dockernet-prune`*"
        ]
    )
    assert inner_runs.resources(held_by)  # untouched
    holder.send_signal(signal.SIGTERM)
    holder.wait(timeout=60)
    assert inner_runs.resources(held_by) == []


POOL_HOLDER = """
    import time
    from pathlib import Path

    from inner_run_spy import ready

    def test_makes_a_network(dockernet):
        net = dockernet.network("n")  # no options: from the warm pool, and back to it after
        (Path(__file__).parent / "pooled-subnet").write_text(net.subnet)

    def test_stays(dockernet):
        ready()
        time.sleep(60)
"""


def test_a_fixed_subnet_kept_by_another_live_runs_warm_pool_fails_at_once_saying_so(inner_runs, pytester):
    """Another live run's (an xdist worker's) warm pool keeps its empty networks until it
    ends: waiting for them is no use, so the error comes at once, with the ways out."""
    host = inner_runs.own_host()
    pytester.makepyfile(test_holder=POOL_HOLDER)
    holder = inner_runs.start("test_holder.py", host=host)
    held_by = inner_runs.run_id_of(holder)
    subnet = (pytester.path / "pooled-subnet").read_text()
    # With a wait of 60 s: an error saying "still held after 60 s" would mean it waited.
    pytester.makepyfile(test_waiter=WAITER.replace("{subnet}", subnet).replace("{wait}", "60"))
    try:
        result = inner_runs.run_on(host, "test_waiter.py")
        result.assert_outcomes(failed=1)
        result.stdout.fnmatch_lines(
            [
                f"E * creating network 'mine' failed: subnet {subnet} overlaps dn-{held_by}-*net* (run {held_by}), "
                "kept by the warm pool of another run that is alive * until that run ends: give this network a "
                "subnet outside the plugin's subnet pool *, or run with --dockernet-pool 0"
            ]
        )
        result.stdout.no_fnmatch_line("*still held after*")
        assert inner_runs.resources(held_by)  # untouched
    finally:
        holder.send_signal(signal.SIGTERM)
        holder.wait(timeout=60)
    assert inner_runs.resources(held_by) == []
