"""The mechanisms behind the speed: the resident probe shell and background removal (the
engine gate that keeps network removal apart from creation: test_gate.py)."""

from __future__ import annotations

import threading
import time

import pytest

from pytest_dockernet import Remover, Topology, assert_reachable, assert_resolves
from pytest_dockernet.engine import exec_in
from pytest_dockernet.probes import run, run_many

pytestmark = pytest.mark.dockernet


@pytest.fixture
def topology(dockernet_client, dockernet):
    """A topology of its own: these tests look at its probe counts and its closing."""
    t = Topology(dockernet_client, image=dockernet.probe_image, allocator=dockernet.allocator)
    yield t
    t.close()


def test_probes_go_through_the_resident_shell_not_exec(topology):
    a, b = topology.containers({"a": {}, "b": {}}).values()
    assert a.resident and b.resident
    assert_reachable(a, b)
    assert_resolves(b, "a", to=a)
    assert topology.timings.counts["probes"] == 2
    assert "probe execs" not in topology.timings.counts
    # the shell keeps running commands, with their exit codes and output
    assert (run(a, "echo out; echo err >&2; exit 3").exit_code, run(a, "echo out").output) == (3, "out\n")


def test_a_broken_script_does_not_kill_the_shell(topology):
    a = topology.container("a")
    assert run(a, "if then fi").exit_code != 0
    assert run(a, "echo still here").output == "still here\n"
    assert "probe execs" not in topology.timings.counts


def test_concurrent_probes_of_one_source_do_not_wait_for_each_other(topology):
    """A busy shell makes the other probe exec instead of queueing behind it."""
    a = topology.container("a")
    results = []
    threads = [threading.Thread(target=lambda: results.append(run(a, "sleep 2; echo done"))) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [r.output for r in results] == ["done\n", "done\n"]
    assert topology.timings.counts["probe execs"] == 1


def test_a_container_with_its_own_command_is_probed_by_exec(topology):
    a = topology.container("a", command=["sleep", "600"])
    assert not a.resident
    assert run_many(a, ["true", "false"]) == [True, False]
    assert topology.timings.counts["probe execs"] == 1


def test_a_kept_container_keeps_running_after_its_shell_is_closed(topology, dockernet_client):
    started = time.time()
    a = topology.container("a")
    assert run(a, "true").ok
    topology.close(keep=True)
    # The shell's ``sh -s`` stays (the container's stdin is not closed with the attach).
    # A command run after the close proves that the engine has seen it and the
    # container still runs its shell; no "die" event came in the meantime.
    assert exec_in(dockernet_client, a.id, ["sh", "-c", "ps -o args | grep -cx 'sh -s'"]) == (0, "1\n")
    died = dockernet_client.api.events(
        since=started, until=time.time(), filters={"container": a.id, "event": "die"}, decode=True
    )
    assert list(died) == []
    assert dockernet_client.api.inspect_container(a.id)["State"]["Running"]
    topology.close()


def test_a_host_bound_topology_is_removed_at_once(dockernet_client, dockernet):
    remover = Remover()
    t = Topology(dockernet_client, image=dockernet.probe_image, allocator=dockernet.allocator)
    c = t.container("c", ports={8080: None})
    assert t.host_bound
    t.close(later=remover)
    assert not remover.pending
    assert dockernet_client.api.containers(all=True, filters={"id": c.id}) == []
