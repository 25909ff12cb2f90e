"""The benchmark runs (on a tiny size, without the peers: figures are for benchmarks/, not tests)."""

import re
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "run.py"
HEADER = re.compile(r"^scenario +tool +n +min \(s\) +median \(s\) +max \(s\) +ratio vs target +result$", re.M)
SCENARIOS = [
    "1 per-test topology",
    "2 reachability 4",
    "3 suite of 2",
    "4 xdist, suite of 2",
    "5 xdist, waiting suite of 2",
]


def bench(script: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run benchmarks/SCRIPT with ``args``, as a user runs it."""
    command = [sys.executable, str(SCRIPT.parent / script), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)


def test_benchmark_runs_on_a_tiny_size(dockernet_client, tmp_path):
    results = tmp_path / "RESULTS.md"
    done = bench("run.py", "--quick", "--no-peers", "--results", str(results))
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert HEADER.search(done.stdout), output
    for scenario in SCENARIOS:
        assert re.search(
            rf"^{re.escape(scenario)} +pytest-dockernet|^{re.escape(scenario)} +\(a\)", done.stdout, re.M
        ), f"no row for scenario {scenario!r}:\n{output}"
    for target in ("target 1", "target 2", "target 5", "suite target"):
        assert re.search(rf"^{target} .*: (PASS|FAIL|n/a)", done.stdout, re.M), output
    assert "peers skipped (--no-peers)" in done.stdout
    assert "left on the engine: nothing" in done.stdout
    assert results.read_text().startswith("# Benchmark results")


def test_the_faults_benchmark_runs(dockernet_client):
    """Every kind of fault is timed (none n/a but ingress rate, whose kernel modules a
    machine may lack), with a verdict per kind and one for all."""
    done = bench("faults.py", "--rounds", "2")
    output = done.stdout + done.stderr
    assert re.search(r"^target \(each kind's apply \+ lift median < 150 ms\): (PASS|FAIL) ", done.stdout, re.M), output
    assert re.search(r"^machine: load average [\d.]+, ", done.stdout, re.M), output
    for kind in ("partition (drop)", "partition (reject)", "partition (ports)", "degrade (loss)", "degrade (rate)"):
        assert re.search(rf"^{re.escape(kind)} +2 +[\d.]+ +[\d.]+ ", done.stdout, re.M), output
        assert re.search(rf"^(PASS|FAIL) {re.escape(kind)}: apply \+ lift median [\d.]+ ms$", done.stdout, re.M), output
    for kind in ("degrade ingress (loss)", "dns_fault (nxdomain)", "dns_fault (answer)"):
        assert re.search(rf"^(PASS|FAIL) {re.escape(kind)}: ", done.stdout, re.M), output
    assert "Traceback" not in output


def test_the_negatives_benchmark_runs(dockernet_client):
    done = bench("negatives.py", "--rounds", "1", "--timeout", "0.5", "--sizes", "1,3")
    output = done.stdout + done.stderr
    assert re.search(r"^target \(each call <= timeout \+ 0.3 s at every size\): (PASS|FAIL)", done.stdout, re.M), output
    for call in ("assert_isolated", "assert_unreachable", "reachability"):
        for size in ("1x1", "3x3"):
            assert re.search(rf"^{call} +{size} +\d+\.\d\d ", done.stdout, re.M), output
    assert "Traceback" not in output
