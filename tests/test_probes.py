"""Probes (probes.py) and the resident shells they are written to (shells.py): a probe goes
through the shell where there is one, else one exec; its deadline comes from its own
duration; it is never run twice; what it starts ends with it; a source that cannot run it
is named with the reason; and the parsing of what the probe tools print."""

from __future__ import annotations

import threading
import time

import pytest

from pytest_dockernet import DockernetError, Topology, assert_reachable, assert_resolves
from pytest_dockernet.engine import connect, exec_in
from pytest_dockernet.errors import ProbeFailed
from pytest_dockernet.probes import RESIDENT_PROCESSES, IpAddress, parse_addresses, parse_ip_addresses, run, run_many

pytestmark = pytest.mark.dockernet


@pytest.fixture
def topology(dockernet_client, dockernet):
    """A topology of its own: these tests look at its probe counts and its closing."""
    t = Topology(dockernet_client, image=dockernet.probe_image, allocator=dockernet.context.allocator)
    yield t
    t.close()


def processes(container) -> list[str]:
    return sorted(p[-1] for p in container.client.api.top(container.id)["Processes"])


# -- the resident shell -----------------------------------------------------------------


def test_probes_go_through_the_resident_shell_not_exec(topology):
    a, b = topology.containers({"a": {}, "b": {}}).values()
    assert a.resident and b.resident
    assert_reachable(a, b)
    assert_resolves(b, "a", to=a)
    assert topology.context.timings.counts["probes"] == 2
    assert "probe execs" not in topology.context.timings.counts
    # the shell keeps running commands, with their exit codes and output
    assert (run(a, "echo out; echo err >&2; exit 3").exit_code, run(a, "echo out").output) == (3, "out\n")


def test_a_broken_script_does_not_kill_the_shell(topology):
    a = topology.container("a")
    assert run(a, "if then fi").exit_code != 0
    assert run(a, "echo still here").output == "still here\n"
    assert "probe execs" not in topology.context.timings.counts


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
    assert topology.context.timings.counts["probe execs"] == 1


def test_a_container_with_its_own_command_is_probed_by_exec(topology):
    a = topology.container("a", command=["sleep", "600"])
    assert not a.resident
    assert run_many(a, ["true", "false"]) == [True, False]
    assert topology.context.timings.counts["probe execs"] == 1


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


def test_helpers_a_probe_starts_end_with_it(dockernet):
    net = dockernet.network("n")
    a, b = dockernet.container("a", networks=[net]), dockernet.container("b", networks=[net])
    # a background job, and busybox timeout's watchdog (a session of its own)
    result = run(a, f"sleep 300 & timeout 5 ping -c1 -W1 {b.ip('n')} >/dev/null; echo $?")
    assert result.output.strip() == "0"
    assert processes(a) == sorted(RESIDENT_PROCESSES)


# -- deadlines ----------------------------------------------------------------------------


@pytest.fixture
def impatient(dockernet):
    """A topology whose client reads for 4 s at most: the read deadline the resident shell
    had before issue 20, made short enough to outlive in a test."""
    client = connect(timeout=4)
    with Topology(client, image=dockernet.probe_image, allocator=dockernet.context.allocator) as topology:
        net = topology.network("n")
        yield topology, topology.container("a", networks=[net]), topology.container("b", networks=[net])
    client.close()


def test_a_probe_that_outlives_its_deadline_is_stopped_and_not_run_again(impatient):
    topology, a, _ = impatient
    script = "echo start >> /tmp/starts; sleep 12; echo end >> /tmp/starts"
    with pytest.raises(ProbeFailed, match=r"gave no answer \(no end within 4 s\), so it was stopped; it is not run"):
        run(a, script)
    code, starts = a.exec(["cat", "/tmp/starts"])
    assert (code, starts) == (0, "start\n")  # once, and killed: it never got to its end
    assert "sleep 12" not in processes(a)
    assert topology.context.timings.counts["probe execs"] == 0


def test_a_probe_is_read_for_as_long_as_it_says_it_runs(impatient):
    topology, a, b = impatient
    result = run(a, "echo start >> /tmp/starts; sleep 6; echo end", seconds=6)
    assert result.output == "end\n"
    measured = topology.measure(a, b, count=300, interval=0.02)  # about 6 s, beyond the client's 4
    assert measured.sent == 300 and measured.loss == 0.0
    assert topology.context.timings.counts["probe execs"] == 0  # no second run through an exec
    assert a.exec(["cat", "/tmp/starts"]) == (0, "start\n")


# -- a source that cannot run a probe -------------------------------------------------------


def test_probing_from_a_container_that_exited_fails_at_once(dockernet):
    a = dockernet.container("a")
    b = dockernet.container("b", command=["sh", "-c", "sleep 1; echo boom >&2; exit 3"])
    b_shell = dockernet.container("bs")  # resident shell, attached before it stops
    assert_reachable(b_shell, "a")
    dockernet.client.api.wait(b.id, timeout=30)
    dockernet.client.api.kill(b_shell.id)
    for source in (b, b_shell):
        with pytest.raises(DockernetError, match=rf"cannot probe from '{source.name}': .*not running \(exited"):
            assert_reachable(source, a, timeout=30)


def test_probing_a_removed_container_names_it(dockernet_client):
    with Topology(dockernet_client) as topology:
        a = topology.container("a", command=["sleep", "300"], image=topology.probe_image)
    with pytest.raises(DockernetError, match=r"cannot probe from 'a': .*no longer exists"):
        assert_reachable(a, "a")


# -- what the probe tools print --------------------------------------------------------------


def test_parse_nslookup_output():
    output = (
        "Server:\t\t127.0.0.11\nAddress:\t127.0.0.11:53\n\nNon-authoritative answer:\n"
        "Name:\tdb\nAddress: 10.213.5.3\nName:\tdb\nAddress: 10.213.5.4\n\n"
        "Non-authoritative answer:\nName:\tdb\nAddress: fd0d:e7e7:213:5::3\n"
    )
    assert parse_addresses(output) == ["10.213.5.3", "10.213.5.4", "fd0d:e7e7:213:5::3"]


def test_parse_hosts_and_empty_answers():
    assert parse_addresses("hosts 172.17.0.2\nhosts 172.17.0.2\n") == ["172.17.0.2"]
    empty = "Server:\t\t127.0.0.11\nAddress:\t127.0.0.11:53\n\nNon-authoritative answer:\n\n"
    assert parse_addresses(empty) == []
    assert parse_addresses(";; connection timed out; no servers could be reached\n") == []


def test_parse_ip_addresses():
    """``ip -o addr show`` as busybox prints it: a veth's peer after ``@``, prefixes cut."""
    output = (
        "1: lo    inet 127.0.0.1/8 scope host lo\\       valid_lft forever preferred_lft forever\n"
        "52: eth0@if53    inet 10.213.5.3/24 brd 10.213.5.255 scope global eth0\\       valid_lft forever\n"
        "52: eth0@if53    inet6 fd0d:e7e7:213:5::3/64 scope global flags 02 \\       valid_lft forever\n"
        "\n"
    )
    assert parse_ip_addresses(output) == [
        IpAddress("lo", "inet", "127.0.0.1"),
        IpAddress("eth0", "inet", "10.213.5.3"),
        IpAddress("eth0", "inet6", "fd0d:e7e7:213:5::3"),
    ]


def test_interface_is_found_by_address_on_each_network(dockernet):
    """interface() parses the probe's ``ip -o -4 addr show`` (the engine numbers interfaces
    in the order the container joined its networks)."""
    one, two = dockernet.network("one"), dockernet.network("two")
    a = dockernet.container("a", networks=[one, two])
    names = {a.interface(one), a.interface(two)}
    assert len(names) == 2 and all(n.startswith("eth") for n in names)
    for network in (one, two):
        code, shown = a.exec(["ip", "-o", "-4", "addr", "show", a.interface(network)])
        assert code == 0 and f" {a.ip(network)}/" in shown
