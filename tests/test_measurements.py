"""measure() and throughput() (issue 20): from either side of a fault, with no helper process
left behind, and a probe's deadline from its own duration (never run twice)."""

from __future__ import annotations

import pytest

from pytest_dockernet import Topology
from pytest_dockernet.engine import connect
from pytest_dockernet.errors import ProbeFailed
from pytest_dockernet.probes import RESIDENT_PROCESSES
from pytest_dockernet.probes import run as run_probe

pytestmark = pytest.mark.dockernet


@pytest.fixture
def pair(dockernet):
    net = dockernet.network("n")
    return dockernet.container("a", networks=[net]), dockernet.container("b", networks=[net])


def processes(container) -> list[str]:
    return sorted(p[-1] for p in container.client.api.top(container.id)["Processes"])


def test_what_the_source_s_own_rules_drop_is_measured_as_lost(dockernet, pair):
    a, b = pair
    with dockernet.degrade(a, loss=0.3):
        from_faulted = dockernet.measure(a, b, count=200)
        assert from_faulted.sent == 200 and 0.15 <= from_faulted.loss <= 0.45, from_faulted
        assert from_faulted.rtt_min <= from_faulted.rtt_avg <= from_faulted.rtt_max
    with dockernet.partition(a, b):
        for src, dst in ((a, b), (b, a)):  # a's rules drop what a sends, and what b sends to it
            cut = dockernet.measure(src, dst, count=20)
            assert (cut.sent, cut.received, cut.loss, cut.rtt_avg) == (20, 0, 1.0, None), cut
        assert dockernet.measure(a, "b", count=5).loss == 1.0  # a name too, resolved once
    assert dockernet.measure(a, "b", count=20).loss == 0.0


def test_throughput_reports_what_got_through_from_either_side(dockernet, pair):
    a, b = pair
    with dockernet.partition(a, b):
        assert dockernet.throughput(a, b, seconds=1) == 0.0  # nothing reached b
        assert dockernet.throughput(b, a, seconds=1) == 0.0
    assert dockernet.throughput(a, b, seconds=1) > 1e6
    assert processes(b) == sorted(RESIDENT_PROCESSES)  # its receiver ended with the call


def test_a_failed_throughput_leaves_no_receiver_behind(dockernet, pair):
    a, b = pair
    a.stop(timeout=0)
    with pytest.raises(ProbeFailed, match="cannot probe from 'a'"):
        dockernet.throughput(a, b, seconds=1)
    assert processes(b) == sorted(RESIDENT_PROCESSES)
    c = dockernet.container("c", networks=list(b.networks))
    assert dockernet.throughput(c, b, seconds=1) > 1e6  # the port is b's next receiver's


def test_a_port_in_use_in_dst_is_refused_naming_it(dockernet, pair):
    a, b = pair
    run_probe(b, "DN_PROBE= setsid nc -l -p 4000 </dev/null >/dev/null 2>&1 & sleep 0.5")  # one of its own
    with pytest.raises(Exception, match=r"something in 'b' already listens on port 4000; pass another port="):
        dockernet.throughput(a, b, seconds=1, port=4000)
    with pytest.raises(ValueError, match=r"port=0 must be a TCP port number"):
        dockernet.throughput(a, b, port=0)


def test_helpers_a_probe_starts_end_with_it(dockernet, pair):
    a, b = pair
    # a background job, and busybox timeout's watchdog (a session of its own)
    result = run_probe(a, f"sleep 300 & timeout 5 ping -c1 -W1 {b.ip('n')} >/dev/null; echo $?")
    assert result.output.strip() == "0"
    assert processes(a) == sorted(RESIDENT_PROCESSES)


@pytest.fixture
def impatient(dockernet):
    """A topology whose client reads for 4 s at most: the read deadline the resident shell
    had before issue 20, made short enough to outlive in a test."""
    client = connect(timeout=4)
    with Topology(client, image=dockernet.probe_image, allocator=dockernet.allocator) as topology:
        net = topology.network("n")
        yield topology, topology.container("a", networks=[net]), topology.container("b", networks=[net])
    client.close()


def test_a_probe_that_outlives_its_deadline_is_stopped_and_not_run_again(impatient):
    topology, a, _ = impatient
    script = "echo start >> /tmp/starts; sleep 12; echo end >> /tmp/starts"
    with pytest.raises(ProbeFailed, match=r"gave no answer \(no end within 4 s\), so it was stopped; it is not run"):
        run_probe(a, script)
    code, starts = a.exec(["cat", "/tmp/starts"])
    assert (code, starts) == (0, "start\n")  # once, and killed: it never got to its end
    assert "sleep 12" not in processes(a)
    assert topology.timings.counts["probe execs"] == 0


def test_a_probe_is_read_for_as_long_as_it_says_it_runs(impatient):
    topology, a, b = impatient
    result = run_probe(a, "echo start >> /tmp/starts; sleep 6; echo end", seconds=6)
    assert result.output == "end\n"
    measured = topology.measure(a, b, count=300, interval=0.02)  # about 6 s, beyond the client's 4
    assert measured.sent == 300 and measured.loss == 0.0
    assert topology.timings.counts["probe execs"] == 0  # no second run through an exec
    assert a.exec(["cat", "/tmp/starts"]) == (0, "start\n")
