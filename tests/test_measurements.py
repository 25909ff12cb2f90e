"""measure() and throughput() (issue 20): from either side of a fault, with no helper process
left behind (a probe's deadline from its own duration: test_probes.py)."""

from __future__ import annotations

import pytest

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
